"""Accounts in real headless Chromium (Debian's, driven by Playwright) against the bundled
OpenID Connect provider (npm oidc-provider, its development interactions): a person signs
up, sees the profile with the session, signs in from a second browser, revokes that
session from the first, signs out (at the provider too: RP-initiated logout), and the
copied cookie is refused after sign-out.
Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from browser import ARTIFACTS, MISSING, WHY_MISSING

from warmpool.sim.oidc_provider import OidcProvider, missing, start_provider

pytestmark = [
    pytest.mark.skipif(MISSING, reason=WHY_MISSING),
    pytest.mark.skipif(missing() is not None, reason=str(missing())),
]


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    running = start_provider(
        redirect_uris=["http://127.0.0.1/auth/callback"], application_type="native"
    )
    try:
        yield running
    finally:
        running.stop()


def oidc(provider: OidcProvider) -> dict[str, Any]:
    return {
        "studio_auth": "oidc",
        "studio_oidc_issuer": provider.issuer,
        "studio_oidc_client_id": provider.client_id,
        "studio_oidc_client_secret": provider.client_secret,
        "studio_oidc_scopes": "openid email profile groups",
    }


def sign_in_at_provider(page: Any, login: str) -> None:
    """The provider's development login form, then its consent form."""
    from playwright.sync_api import expect

    expect(page.locator("input[name=login]")).to_be_visible()
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    expect(page.locator("button[type=submit]")).to_have_text("Continue")
    page.click("button[type=submit]")


def test_sign_up_profile_sessions_sign_out(
    served: Any, browser: Any, provider: OidcProvider
) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    stack = served(**oidc(provider))
    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))

    # --- sign up: the studio's dialog sends the person to the provider and back
    page.goto(stack.url + "/#create")
    link = page.locator("#signin-oidc")
    expect(link).to_be_visible()
    expect(page.locator("#signin-form [name=token]")).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "accounts-signin.png"))
    link.click()
    assert page.url.startswith(provider.issuer)
    sign_in_at_provider(page, "grace")
    expect(page.locator("#who")).to_have_text("grace@example.test")
    assert page.url.startswith(stack.url) and page.url.endswith("#create")
    expect(page.locator("#account-link")).to_be_visible()

    # --- a second browser signs in to the same account
    laptop = browser.new_context().new_page()
    laptop.goto(stack.url)
    laptop.click("#signin-oidc")
    sign_in_at_provider(laptop, "grace")
    expect(laptop.locator("#who")).to_have_text("grace@example.test")

    # --- the profile lists both sessions; the other one is revoked from here
    page.click("#account-link")
    expect(page.locator("#main")).to_have_attribute("data-ready", "true")
    expect(page.locator("#profile-email")).to_have_text("grace@example.test")
    rows = page.locator("#sessions tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#sessions tr[data-current=true]")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "accounts-profile.png"), full_page=True)
    page.locator("#sessions tr[data-current=false] button").click()
    expect(rows).to_have_count(1)
    assert laptop.evaluate("fetch('/api/v1/me').then(r => r.status)") == 401

    # --- sign out; the session cookie, copied before, is refused afterwards
    cookie = next(c for c in context.cookies() if c["name"] == "warmpool_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.goto(stack.url)
    expect(page.locator("#signout")).to_be_visible()
    ends: list[str] = []
    end_session = provider.issuer + "/session/end"
    page.on("request", lambda r: ends.append(r.url) if r.url.startswith(end_session) else None)
    page.click("#signout")
    # RP-initiated logout: the provider asks, then sends the browser back to the studio
    page.get_by_role("button", name="Yes, sign me out").click()
    expect(page.locator("#signin-oidc")).to_be_visible()
    assert page.url.split("#")[0] == stack.url + "/"
    sent = parse_qs(urlsplit(ends[0]).query)
    assert sent["post_logout_redirect_uri"] == [stack.url + "/"]
    assert sent["client_id"] == [provider.client_id]
    assert sent["id_token_hint"][0].count(".") == 2  # the ID token of that sign-in
    assert page.evaluate("fetch('/api/v1/me').then(r => r.status)") == 401
    thief = browser.new_context()
    thief.add_cookies([{k: cookie[k] for k in ("name", "value", "domain", "path")}])
    response = thief.request.get(stack.url + "/api/v1/me")
    assert response.status == 401
    page.screenshot(path=str(ARTIFACTS / "accounts-signed-out.png"))
    # The provider's session ended too: signing in again asks for the login.
    page.click("#signin-oidc")
    expect(page.locator("input[name=login]")).to_be_visible()
    assert errors == []


def test_an_admin_sets_a_limit_and_the_header_shows_what_is_left(
    served: Any, browser: Any, provider: OidcProvider
) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    stack = served(**oidc(provider), studio_spend_daily_limit=1.0)
    errors: list[str] = []
    page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack.url)
    page.click("#signin-oidc")
    sign_in_at_provider(page, "henry")
    expect(page.locator("#who")).to_have_text("henry@example.test")
    expect(page.locator("#spend")).to_have_text("today $0.0000 · $1.00 left")

    admin = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    admin.on("pageerror", lambda e: errors.append(str(e)))
    admin.goto(stack.url + "/admin")  # 401: the console needs a session first
    admin.goto(stack.url)
    admin.click("#signin-oidc")
    sign_in_at_provider(admin, "admin-eve")
    expect(admin.locator("#who")).to_have_text("admin-eve@example.test · admin")
    admin.click("#admin-link")
    expect(admin.locator("body")).to_have_attribute("data-ready", "true")
    admin.click('[data-view="usage"]')
    expect(admin.locator("#limits-defaults")).to_contain_text("$1.00 a day")
    admin.fill("#limits-form [name=owner]", "henry@example.test")
    admin.fill("#limits-form [name=daily]", "0")
    admin.click("#limits-form [type=submit]")
    row = admin.locator('#limits tr[data-owner="henry@example.test"]')
    expect(row).to_contain_text("$0.00")
    admin.screenshot(path=str(ARTIFACTS / "accounts-admin-limits.png"), full_page=True)
    admin.context.close()  # its live fleet stream ends before the studio stops

    # henry's next submission is refused with what is left and when it resets.
    page.reload()
    expect(page.locator("#who")).to_have_text("henry@example.test")
    expect(page.locator("#spend")).to_have_text("today $0.0000 · $0.0000 left")
    page.fill("#prompt", "a lighthouse at dusk")
    page.click("#generate")
    expect(page.locator("#gen-error")).to_contain_text("would cross your daily limit of $0.00")
    expect(page.locator("#gen-error")).to_contain_text("left until")
    page.screenshot(path=str(ARTIFACTS / "accounts-limit-refused.png"))
    assert errors == []
