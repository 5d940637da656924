"""Credits over HTTP (payments on): balance and history, a PaymentIntent for a pack, the
Stripe webhook, and the credits page (the Payment Element)."""

from __future__ import annotations

from html import escape
from importlib import resources
from typing import Annotated

import stripe
from fastapi import APIRouter, Header, HTTPException, Path, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse

from warmpool.api.accounts.credits import (
    Credits,
    InsufficientCreditError,
    PaymentDeclinedError,
    PaymentError,
    PaymentNotFoundError,
    Stripe,
)
from warmpool.api.accounts.routes import accounts_of
from warmpool.api.accounts.schemas import (
    ConfirmOut,
    ConfirmRequest,
    CreditEntryOut,
    CreditsOut,
    IntentOut,
    IntentRequest,
)
from warmpool.api.deps import RecorderDep, StudioDep, UserDep
from warmpool.api.problems import FieldError
from warmpool.api.settings import StudioSettings

router = APIRouter(tags=["credits"])
REAL_STRIPE_JS = "https://js.stripe.com"
REAL_STRIPE_API = "https://api.stripe.com"
REAL_STRIPE_HOOKS = "https://hooks.stripe.com"
WEBHOOK_PATH = "/payments/webhook"  # outside /api/: Stripe carries no session
BUY_URL = "/credits"


def _payments(request: Request) -> tuple[Credits, Stripe]:
    accounts = accounts_of(request)
    if accounts.credits is None or accounts.stripe is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="payments are not enabled")
    return accounts.credits, accounts.stripe


async def on_insufficient(request: Request, exc: Exception) -> JSONResponse:
    """402 with the balance and a link to buy more (the app's exception handler)."""
    assert isinstance(exc, InsufficientCreditError)
    return JSONResponse(
        status_code=status.HTTP_402_PAYMENT_REQUIRED,
        content={"detail": str(exc), "balance": exc.balance, "needed": exc.needed,
                 "buyUrl": BUY_URL},
    )  # fmt: skip


@router.get("/api/v1/credits", summary="My credit balance and payment history")
async def my_credits(studio: StudioDep, user: UserDep, request: Request) -> CreditsOut:
    credits = accounts_of(request).credits
    s = studio.settings
    if credits is None:
        return CreditsOut(
            enabled=False, balance=0.0, packs=[], markup=1.0, currency=s.studio_currency
        )
    balance, entries = await credits.statement(user.name)
    return CreditsOut(
        enabled=True,
        balance=balance,
        packs=s.studio_credit_packs,
        markup=s.studio_credit_markup,
        currency=s.studio_currency,
        publishable_key=s.studio_stripe_publishable_key,
        flow=s.studio_stripe_flow,
        entries=[
            CreditEntryOut(kind=e.kind, amount=e.amount, job=e.job,
                           payment_intent=e.payment_intent, at=e.at)
            for e in entries
        ],
    )  # fmt: skip


@router.post(
    "/api/v1/credits/intents",
    status_code=status.HTTP_201_CREATED,
    summary="Start buying a credit pack (a PaymentIntent for the Payment Element)",
)
async def buy(
    studio: StudioDep, user: UserDep, body: IntentRequest, request: Request, audit: RecorderDep
) -> IntentOut:
    _, payments = _payments(request)
    packs = studio.settings.studio_credit_packs
    if body.pack not in packs:
        raise FieldError(["body", "pack"], f"choose one of the packs {packs}", type="unknown_pack")
    try:
        intent, secret = await payments.create_intent(
            user.name, body.pack, studio.settings.studio_currency
        )
    except PaymentError as e:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=str(e)) from e
    await audit(user, "credits.intent", "PaymentIntent", intent, detail={"pack": body.pack})
    return IntentOut(id=intent, client_secret=secret, amount=body.pack)


@router.post(
    "/api/v1/credits/intents/{intent}/confirm",
    summary="Pay my PaymentIntent with a card token (card-token flow: localstripe)",
)
async def confirm(
    studio: StudioDep,
    user: UserDep,
    body: ConfirmRequest,
    request: Request,
    audit: RecorderDep,
    intent: Annotated[str, Path(pattern=r"^pi_[A-Za-z0-9]{1,64}$")],
) -> ConfirmOut:
    """Only in the card-token flow (``WARMPOOL_STUDIO_STRIPE_FLOW=card-token``); with the
    Payment Element, Stripe.js confirms in the browser and this answers 404."""
    _, payments = _payments(request)
    if studio.settings.studio_stripe_flow != "card-token":
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="not in the card-token flow")
    try:
        state, secret = await payments.confirm_with_token(intent, user.name, body.token)
    except PaymentNotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(e)) from e
    except PaymentDeclinedError as e:
        raise HTTPException(status.HTTP_402_PAYMENT_REQUIRED, detail=str(e)) from e
    except PaymentError as e:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=str(e)) from e
    await audit(user, "credits.confirm", "PaymentIntent", intent, detail={"status": state})
    return ConfirmOut(id=intent, status=state, client_secret=secret)


@router.post(WEBHOOK_PATH, include_in_schema=False)
async def webhook(
    request: Request,
    audit: RecorderDep,
    stripe_signature: Annotated[str | None, Header()] = None,
) -> Response:
    """Stripe's events, signature verified by the library; each event is applied once."""
    credits, payments = _payments(request)
    payload = await request.body()
    try:
        event = payments.event(payload, stripe_signature or "")
    except (stripe.SignatureVerificationError, ValueError):
        await audit("stripe", "credits.webhook", outcome="denied", detail={"reason": "signature"})
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="bad signature") from None
    if event.type == "payment_intent.succeeded":
        intent = event.data.object.to_dict()
        owner = str((intent.get("metadata") or {}).get("owner") or "")
        received = intent.get("amount_received") or intent.get("amount") or 0
        currency = str(intent.get("currency") or "")
        if owner and currency == accounts_of(request).settings.studio_currency:
            amount = int(received) / 100
            if await credits.purchase(event.id, owner, amount, str(intent.get("id"))):
                await audit("stripe", "credits.purchase", "User", owner,
                            detail={"amount": amount, "event": event.id})  # fmt: skip
    return Response(status_code=status.HTTP_200_OK)


def _origin(url: str) -> str:
    return "/".join(url.split("/")[:3])


def credits_csp(settings: StudioSettings) -> str:
    """The credits page's policy: the studio's own, plus the configured Stripe.js origin
    (scripts, images, frames) and the Stripe API's (the page's calls), nothing else. Real
    Stripe: js.stripe.com, api.stripe.com, and hooks.stripe.com for 3-D Secure frames;
    localstripe: its one address."""
    js = _origin(settings.studio_stripe_js_url)
    api = _origin(settings.studio_stripe_api_base or REAL_STRIPE_API)
    frames = f"{js} {REAL_STRIPE_HOOKS}" if js == REAL_STRIPE_JS else js
    connect = " ".join(dict.fromkeys(["'self'", js, api]))
    return (
        f"default-src 'self'; script-src 'self' {js}; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data: {js}; connect-src {connect}; frame-src {frames}; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


@router.get(BUY_URL, response_class=HTMLResponse, include_in_schema=False)
async def credits_page(studio: StudioDep) -> HTMLResponse:
    """The credits page; its policy also allows Stripe.js (see :func:`credits_csp`)."""
    page = (resources.files("warmpool.api") / "static" / "credits.html").read_text()
    page = page.replace("STRIPE_JS_URL", escape(studio.settings.studio_stripe_js_url))
    headers = {"Content-Security-Policy": credits_csp(studio.settings), "Cache-Control": "no-store"}
    return HTMLResponse(page, headers=headers)
