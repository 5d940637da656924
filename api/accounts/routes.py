"""Sign-up and sign-in through OpenID Connect, and the profile's API.

``GET /auth/config`` (public): the auth mode, for the page's sign-in dialog.
``GET /auth/login?next=/path``: starts the authorization code flow (PKCE, state, nonce);
the state also goes into a ``warmpool_login`` cookie (HttpOnly, SameSite=Lax, path
``/auth``), so a callback started in another browser (login CSRF) is refused.
``GET /auth/callback``: checks state, exchanges the code, verifies the ID token, creates
the account on the first sign-in, opens a server-side session (the ``warmpool_session``
cookie: HttpOnly, SameSite=Strict, ``Secure`` by the usual rule) and sends the browser on
with a same-origin refresh (a SameSite=Strict cookie is not sent on a redirect chain that
began at the provider). ``GET /api/v1/account``: the profile with its live sessions;
``DELETE /api/v1/account/sessions/{id}`` revokes one. Sign-out is ``DELETE
/api/v1/account/session``: it ends the studio session and, when the provider's discovery
document has an ``end_session_endpoint``, answers the URL of RP-initiated logout there (with
the session's ID token as ``id_token_hint`` and ``post_logout_redirect_uri``) for the page
to go to; ``DELETE /api/v1/session`` ends the studio session alone.
"""

from __future__ import annotations

import hmac
from datetime import UTC, timedelta
from html import escape
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from warmpool.api.accounts.oidc import OidcError, OidcTokenError
from warmpool.api.accounts.schemas import AccountOut, AuthConfigOut, SessionOut, SignedOutOut
from warmpool.api.accounts.service import Accounts, NameTakenError
from warmpool.api.accounts.store import Pending
from warmpool.api.auth import SESSION_COOKIE
from warmpool.api.deps import RecorderDep, StudioDep, UserDep
from warmpool.api.state import Studio

router = APIRouter(tags=["accounts"])
LOGIN_COOKIE = "warmpool_login"
CALLBACK_PATH = "/auth/callback"


def accounts_of(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


def _secure(studio: Studio, request: Request) -> bool:
    secure = studio.settings.studio_secure_cookies
    return studio.auth.peers.scheme(request) == "https" if secure is None else secure


def redirect_uri(studio: Studio, request: Request) -> str:
    configured = studio.settings.studio_oidc_redirect_url
    if configured:
        return configured
    peers = studio.auth.peers
    return f"{peers.scheme(request)}://{peers.host(request)}{CALLBACK_PATH}"


def post_logout_uri(studio: Studio, request: Request) -> str:
    """Where the provider sends the browser after its sign-out: the configured URL, else
    the studio's front page (the origin of the redirect URI)."""
    configured = studio.settings.studio_oidc_post_logout_url
    if configured:
        return configured
    return "/".join(redirect_uri(studio, request).split("/")[:3]) + "/"


def local_path(value: str | None) -> str:
    """Where to go after sign-in: a path of this studio only (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value[:512]


def _page(status_code: int, title: str, text: str, *, refresh: str | None = None) -> HTMLResponse:
    meta = f'<meta http-equiv="refresh" content="0;url={escape(refresh)}">' if refresh else ""
    body = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}'
        f'<title>{escape(title)}</title><link rel="stylesheet" href="/app.css"></head>'
        f'<body><main class="account-page"><h1>{escape(title)}</h1><p id="auth-message">'
        f'{escape(text)}</p><p><a href="/">Back to the studio</a></p></main></body></html>'
    )
    return HTMLResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})


async def limit_anonymous(studio: Studio, request: Request) -> None:
    """Sign-in starts and callbacks are anonymous (each start writes a row): limited per
    client address like any user's requests (429 with Retry-After)."""
    wait = await studio.limiter.hit("sign-in:" + studio.auth.peers.client(request))
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many sign-in attempts; try again later",
            headers={"Retry-After": str(wait)},
        )


@router.get("/auth/config", summary="How to sign in (public)")
async def auth_config(studio: StudioDep) -> AuthConfigOut:
    oidc = studio.settings.studio_auth == "oidc"
    return AuthConfigOut(
        mode=studio.settings.studio_auth, login_url="/auth/login" if oidc else None
    )


@router.get("/auth/login", summary="Sign up or sign in at the OpenID Connect provider")
async def login(
    studio: StudioDep,
    request: Request,
    next: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    accounts = accounts_of(request)
    if accounts.provider is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="accounts are not enabled")
    await limit_anonymous(studio, request)
    try:
        started = await accounts.provider.authorization_url(redirect_uri(studio, request))
    except OidcError as e:
        return _page(503, "The sign-in service is unavailable", str(e))
    ttl = studio.settings.studio_oidc_login_seconds
    pending = Pending(nonce=started.nonce, verifier=started.verifier, return_to=local_path(next))
    await accounts.store.start_login(started.state, pending, ttl=timedelta(seconds=ttl))
    response = RedirectResponse(started.url, status_code=status.HTTP_303_SEE_OTHER)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        LOGIN_COOKIE, started.state, max_age=ttl, path="/auth", httponly=True,
        samesite="lax", secure=_secure(studio, request),
    )  # fmt: skip
    return response


@router.get(CALLBACK_PATH, summary="The provider's redirect back (authorization code)")
async def callback(
    studio: StudioDep,
    request: Request,
    audit: RecorderDep,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    accounts = accounts_of(request)
    if accounts.provider is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="accounts are not enabled")
    await limit_anonymous(studio, request)

    async def refuse(reason: str, status_code: int = 401) -> HTMLResponse:
        await audit("anonymous", "session.sign_in", outcome="denied", detail={"reason": reason})
        page = _page(status_code, "Sign-in refused", reason)
        page.delete_cookie(LOGIN_COOKIE, path="/auth")
        return page

    if error:
        return await refuse(f"the provider answered: {error}")
    browser_state = request.cookies.get(LOGIN_COOKIE, "")
    if not code or not state or not hmac.compare_digest(browser_state.encode(), state.encode()):
        return await refuse("this sign-in was not started in this browser; start again")
    pending = await accounts.store.take_login(state)
    if pending is None:
        return await refuse("this sign-in has expired or was already used; start again")
    provider = accounts.provider
    try:
        tokens = await provider.exchange(code, pending.verifier, redirect_uri(studio, request))
        claims = await provider.verify(tokens.id_token, pending.nonce)
        who = accounts.identity(claims)
        if who is None and tokens.access_token:
            extra = await provider.userinfo(tokens.access_token)
            if extra.get("sub") == claims["sub"]:
                who = accounts.identity({**extra, **claims})
    except OidcTokenError as e:
        return await refuse(str(e))
    except OidcError as e:
        return await refuse(str(e), 502)
    if who is None:
        claim = studio.settings.studio_oidc_user_claim
        return await refuse(f"the provider did not give a (verified) {claim} claim", 403)
    try:
        account, created = await accounts.store.sign_up_or_in(who)
    except NameTakenError:
        return await refuse(f"{who.name} belongs to another account", 403)
    value = await accounts.store.open_session(
        account.id,
        lifetime=accounts.session_lifetime,
        address=audit.records.address(request),
        user_agent=request.headers.get("user-agent", ""),
        id_token=tokens.id_token,
    )
    action = "account.sign_up" if created else "session.sign_in"
    await audit(account.name, action, "User", account.name, detail={"issuer": who.issuer})
    response = _page(200, "Signed in", f"Welcome, {account.name}.", refresh=pending.return_to)
    response.delete_cookie(LOGIN_COOKIE, path="/auth")
    response.set_cookie(
        SESSION_COOKIE, value, httponly=True, samesite="strict", secure=_secure(studio, request),
        max_age=studio.settings.studio_session_seconds, path="/",
    )  # fmt: skip
    return response


@router.get("/api/v1/account", summary="My profile and my live sessions")
async def account(studio: StudioDep, user: UserDep, request: Request) -> AccountOut:
    accounts = accounts_of(request)
    out = AccountOut(name=user.name, admin=user.admin, auth=studio.settings.studio_auth)
    cookie = request.cookies.get(SESSION_COOKIE)
    found = await accounts.store.session_of(cookie) if cookie else None
    if studio.settings.studio_auth != "oidc" or found is None:
        return out
    acct, current = found
    out.email = acct.email
    out.groups = accounts.groups_of(acct)
    out.issuer = acct.issuer
    out.created = acct.created_at.replace(tzinfo=acct.created_at.tzinfo or UTC)
    out.sessions = [
        SessionOut(
            id=s.id,
            created=s.created_at.replace(tzinfo=s.created_at.tzinfo or UTC),
            last_seen=s.last_seen_at.replace(tzinfo=s.last_seen_at.tzinfo or UTC),
            expires=s.expires_at.replace(tzinfo=s.expires_at.tzinfo or UTC),
            address=s.address,
            user_agent=s.user_agent,
            current=s.id == current.id,
        )
        for s in await accounts.store.sessions(acct.id)
    ]
    return out


@router.delete(
    "/api/v1/account/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke one of my sessions (sign that device out)",
)
async def revoke_session(
    user: UserDep,
    request: Request,
    audit: RecorderDep,
    session_id: Annotated[int, Path(ge=1)],
) -> Response:
    accounts = accounts_of(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    found = await accounts.store.session_of(cookie) if cookie else None
    if found is None or not await accounts.store.revoke(found[0].id, session_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="session not found")
    await audit(user, "session.revoke", "Session", str(session_id))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    if found[1].id == session_id:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.delete(
    "/api/v1/account/session",
    summary="Sign out: end this session, and at the provider when it offers it",
)
async def sign_out(
    studio: StudioDep, user: UserDep, request: Request, response: Response
) -> SignedOutOut:
    """RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the answer names the
    provider's ``end_session_endpoint`` with ``id_token_hint`` and
    ``post_logout_redirect_uri``, or null when the provider has none."""
    accounts = accounts_of(request)
    id_token = await accounts.sign_out(request)
    url = None
    if accounts.provider is not None:
        url = await accounts.provider.end_session_url(
            post_logout_uri(studio, request), id_token_hint=id_token
        )
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    response.headers["Cache-Control"] = "no-store"
    return SignedOutOut(end_session_url=url)
