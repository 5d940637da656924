"""Credits over HTTP (payments on): balance and history, a PaymentIntent for a pack, the
Stripe webhook, and the credits page (the Payment Element)."""

from __future__ import annotations

from importlib import resources
from typing import Annotated

import stripe
from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse

from warmpool.api.accounts.credits import Credits, InsufficientCreditError, PaymentError, Stripe
from warmpool.api.accounts.routes import accounts_of
from warmpool.api.accounts.schemas import CreditEntryOut, CreditsOut, IntentOut, IntentRequest
from warmpool.api.deps import StudioDep, UserDep
from warmpool.api.problems import FieldError
from warmpool.api.records.deps import RecorderDep

router = APIRouter(tags=["credits"])
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
    return CreditsOut(
        enabled=True,
        balance=await credits.balance(user.name),
        packs=s.studio_credit_packs,
        markup=s.studio_credit_markup,
        currency=s.studio_currency,
        publishable_key=s.studio_stripe_publishable_key,
        entries=[
            CreditEntryOut(kind=e.kind, amount=e.amount, job=e.job,
                           payment_intent=e.payment_intent, at=e.at)
            for e in await credits.history(user.name)
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


@router.get(BUY_URL, response_class=HTMLResponse, include_in_schema=False)
async def credits_page(studio: StudioDep) -> HTMLResponse:
    """The credits page; its policy also allows Stripe.js (the Payment Element's frames)."""
    page = (resources.files("warmpool.api") / "static" / "credits.html").read_text()
    js = studio.settings.studio_stripe_js_url
    origin = "/".join(js.split("/")[:3])
    csp = (
        f"default-src 'self'; script-src 'self' {origin}; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data: {origin}; connect-src 'self' {origin}; frame-src {origin}; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    page = page.replace("STRIPE_JS_URL", js)
    return HTMLResponse(page, headers={"Content-Security-Policy": csp, "Cache-Control": "no-store"})
