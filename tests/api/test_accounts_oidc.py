"""Accounts through a real OpenID Connect provider (npm oidc-provider, started here with
its development interactions), driven over httpx: sign-up, sign-in, sessions, sign-out,
and the callback's refusals (another browser, a replayed state, a wrong nonce, an
expired ID token). The studio runs in-process (ASGI)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from oidcflow import sign_in_at_provider
from sqlalchemy import select, update

from warmpool.api.records.tables import OidcLogin
from warmpool.sim.oidc_provider import OidcProvider, missing, start_provider

pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))

# A native client: its loopback redirect URI matches on any port (RFC 8252 7.3).
REDIRECT = "http://127.0.0.1:8000/auth/callback"


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    running = start_provider(
        redirect_uris=["http://127.0.0.1/auth/callback"], application_type="native"
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def oidc(provider: OidcProvider) -> dict[str, Any]:
    return {
        "studio_auth": "oidc",
        "studio_oidc_issuer": provider.issuer,
        "studio_oidc_client_id": provider.client_id,
        "studio_oidc_client_secret": provider.client_secret,
        "studio_oidc_redirect_url": REDIRECT,
        "studio_oidc_scopes": "openid email profile groups",
    }


def client_like(http: httpx.AsyncClient, session: str | None = None) -> httpx.AsyncClient:
    """Another browser on the same studio (its own cookies)."""
    cookies = {"warmpool_session": session} if session else None
    return httpx.AsyncClient(transport=http._transport, base_url=http.base_url, cookies=cookies)


async def start(http: httpx.AsyncClient, login: str) -> tuple[str, str]:
    """/auth/login, then the provider's forms: the code and state it sends back."""
    r = await http.get("/auth/login", params={"next": "/#gallery"})
    assert r.status_code == 303, r.text
    async with httpx.AsyncClient() as browser:
        back = await sign_in_at_provider(browser, r.headers["location"], login, stop_at=REDIRECT)
    q = parse_qs(urlsplit(back).query)
    return q["code"][0], q["state"][0]


async def sign_in(http: httpx.AsyncClient, login: str) -> httpx.Response:
    code, state = await start(http, login)
    return await http.get("/auth/callback", params={"code": code, "state": state})


async def test_sign_up_sign_in_sessions_and_sign_out(studio: Any, oidc: dict[str, Any]) -> None:
    http = await studio(**oidc)
    assert (await http.get("/api/v1/me")).status_code == 401
    config = (await http.get("/auth/config")).json()
    assert config == {"mode": "oidc", "loginUrl": "/auth/login"}

    r = await sign_in(http, "ada")
    assert r.status_code == 200, r.text
    assert 'content="0;url=/#gallery"' in r.text  # on to where the person was
    cookie = r.cookies.get("warmpool_session")
    assert cookie and "httponly" in r.headers["set-cookie"].lower()
    assert "samesite=strict" in r.headers["set-cookie"].lower()
    me = (await http.get("/api/v1/me")).json()
    assert me["name"] == "ada@example.test" and me["admin"] is False and me["auth"] == "oidc"

    # A second device: the same account, a second session.
    profile = (await http.get("/api/v1/account")).json()
    assert profile["email"] == "ada@example.test" and profile["issuer"].startswith("http://127")
    assert [s["current"] for s in profile["sessions"]] == [True]
    laptop = client_like(http)
    r2 = await sign_in(laptop, "ada")
    await laptop.aclose()
    assert r2.status_code == 200
    profile = (await http.get("/api/v1/account")).json()
    assert sorted(s["current"] for s in profile["sessions"]) == [False, True]
    second = next(s for s in profile["sessions"] if not s["current"])

    # Revoking the other device's session ends it there.
    device = client_like(http, r2.cookies["warmpool_session"])
    assert (await device.get("/api/v1/me")).status_code == 200
    assert (await http.delete(f"/api/v1/account/sessions/{second['id']}")).status_code == 204
    assert (await device.get("/api/v1/me")).status_code == 401
    assert (await http.delete(f"/api/v1/account/sessions/{second['id']}")).status_code == 404
    await device.aclose()

    # Sign-out ends the session: the cookie, even copied, is refused afterwards.
    assert (await http.delete("/api/v1/session")).status_code == 204
    assert (await http.get("/api/v1/me")).status_code == 401
    replay = client_like(http, cookie)
    assert (await replay.get("/api/v1/me")).status_code == 401
    assert (await replay.post("/api/v1/generations", json={})).status_code == 401
    await replay.aclose()

    audit = http.app.state.records.audit  # type: ignore[attr-defined]
    from warmpool.api.records.audit import Filter

    rows, _ = await audit.page(Filter(actor="ada@example.test"))
    actions = [row.action for row in rows]
    assert "account.sign_up" in actions and "session.sign_in" in actions


async def test_sign_out_at_the_provider_too(studio: Any, oidc: dict[str, Any]) -> None:
    """RP-initiated logout: sign-out ends the studio session and names the provider's
    end_session_endpoint with the session's ID token as id_token_hint and the studio's
    front page as post_logout_redirect_uri; the provider accepts both (it answers 400 to a
    hint it did not sign or a URI not registered). The session keeps no ID token after."""
    from warmpool.api.records.tables import AccountSession

    http = await studio(**oidc)
    assert (await sign_in(http, "bea")).status_code == 200
    r = await http.delete("/api/v1/account/session")
    assert r.status_code == 200 and "warmpool_session=" in r.headers["set-cookie"]
    url = r.json()["endSessionUrl"]
    assert url.startswith(f"{oidc['studio_oidc_issuer']}/session/end?")
    sent = parse_qs(urlsplit(url).query)
    assert sent["post_logout_redirect_uri"] == ["http://127.0.0.1:8000/"]
    assert sent["client_id"] == [oidc["studio_oidc_client_id"]]
    hint = claims_of(sent["id_token_hint"][0])
    assert hint["sub"] == "bea" and hint["aud"] == oidc["studio_oidc_client_id"]
    assert (await http.get("/api/v1/me")).status_code == 401
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(url)).status_code == 200  # the provider's sign-out form
        forged = url.replace("127.0.0.1%3A8000%2F", "evil.example%2F")
        assert (await browser.get(forged)).status_code == 400
    db = http.app.state.records.db  # type: ignore[attr-defined]
    async with db.session() as s:
        kept = (await s.scalars(select(AccountSession.id_token))).all()
    assert kept == [None]
    # Signed out already: nothing to end.
    assert (await http.delete("/api/v1/account/session")).status_code == 401


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's claims, read without verifying (the provider verifies the hint)."""
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


async def test_the_admin_group_claim_makes_an_admin(studio: Any, oidc: dict[str, Any]) -> None:
    http = await studio(**oidc)
    assert (await sign_in(http, "admin-eve")).status_code == 200
    me = (await http.get("/api/v1/me")).json()
    assert me == {**me, "name": "admin-eve@example.test", "admin": True}
    assert (await http.get("/admin")).status_code == 200
    groups = (await http.get("/api/v1/account")).json()["groups"]
    assert groups == ["warmpool-admins"]


async def test_a_callback_from_another_browser_is_refused(
    studio: Any, oidc: dict[str, Any]
) -> None:
    """Login CSRF: an attacker's code and state, delivered to a victim's browser, do not
    sign the victim in (the state is not in the victim's warmpool_login cookie)."""
    attacker = await studio(**oidc)
    code, state = await start(attacker, "mallory")
    victim = client_like(attacker)
    r = await victim.get("/auth/callback", params={"code": code, "state": state})
    assert r.status_code == 401 and "not started in this browser" in r.text
    assert "warmpool_session" not in r.cookies
    await victim.aclose()


async def test_a_state_is_used_once(studio: Any, oidc: dict[str, Any]) -> None:
    http = await studio(**oidc)
    code, state = await start(http, "ada")
    login_cookie = http.cookies.get("warmpool_login")
    assert (await http.get("/auth/callback", params={"code": code, "state": state})).is_success
    http.cookies.set("warmpool_login", login_cookie or "", domain="studio.test", path="/auth")
    r = await http.get("/auth/callback", params={"code": code, "state": state})
    assert r.status_code == 401 and "already used" in r.text


async def test_a_wrong_nonce_is_refused(studio: Any, oidc: dict[str, Any]) -> None:
    """The ID token must carry the nonce of this sign-in (here the stored one is changed
    after the provider issued the token, as a replayed token would look)."""
    http = await studio(**oidc)
    code, state = await start(http, "ada")
    db = http.app.state.accounts.store.db  # type: ignore[attr-defined]
    async with db.session() as s:
        await s.execute(update(OidcLogin).values(nonce="another-nonce"))
    r = await http.get("/auth/callback", params={"code": code, "state": state})
    assert r.status_code == 401 and "nonce" in r.text
    assert (await http.get("/api/v1/me")).status_code == 401


async def test_an_expired_id_token_is_refused(studio: Any, oidc: dict[str, Any]) -> None:
    """The provider's ID tokens last an hour: two hours later, as the studio's clock
    sees it, the token is expired."""
    http = await studio(**oidc)
    code, state = await start(http, "ada")
    http.app.state.accounts.provider._clock = lambda: time.time() + 7200  # type: ignore[attr-defined]
    r = await http.get("/auth/callback", params={"code": code, "state": state})
    assert r.status_code == 401 and "expired" in r.text


async def test_a_wrong_client_secret_is_refused(studio: Any, oidc: dict[str, Any]) -> None:
    http = await studio(**{**oidc, "studio_oidc_client_secret": "not-the-secret"})
    code, state = await start(http, "ada")
    r = await http.get("/auth/callback", params={"code": code, "state": state})
    assert r.status_code == 502 and "refused the code" in r.text
    assert "not-the-secret" not in r.text


async def test_only_local_paths_are_followed_after_sign_in(
    studio: Any, oidc: dict[str, Any]
) -> None:
    http = await studio(**oidc)
    r = await http.get("/auth/login", params={"next": "//evil.example.test/"})
    code_state = r.headers["location"]
    async with httpx.AsyncClient() as browser:
        back = await sign_in_at_provider(browser, code_state, "ada", stop_at=REDIRECT)
    q = parse_qs(urlsplit(back).query)
    done = await http.get("/auth/callback", params={"code": q["code"][0], "state": q["state"][0]})
    assert 'content="0;url=/"' in done.text


async def test_token_mode_has_no_login(studio: Any) -> None:
    http = await studio(studio_auth="none")
    assert (await http.get("/auth/login")).status_code == 404
    assert (await http.get("/auth/config")).json() == {"mode": "none", "loginUrl": None}


async def test_sign_in_starts_are_limited_per_client(studio: Any, oidc: dict[str, Any]) -> None:
    """Anonymous, and each start writes a pending sign-in: limited like requests (429)."""
    http = await studio(**oidc, studio_requests_per_minute=5)
    codes = [(await http.get("/auth/login")).status_code for _ in range(7)]
    assert codes[:5] == [303] * 5 and codes[5:] == [429, 429]
    r = await http.get("/auth/login")
    assert int(r.headers["retry-after"]) > 0
