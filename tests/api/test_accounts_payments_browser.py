"""Buying credits in real headless Chromium (Debian's, driven by Playwright): a person signs
up through the bundled OpenID Connect provider, buys a pack on the credits page with
localstripe's fake Stripe.js (its Card Element and the test card), sees the balance rise
when localstripe's signed webhook arrives, makes a generation that takes its estimate ×
markup, sees it settled at cost, and reads it all in the payment history. localstripe runs
as its own process, started as ``warmpool-sim dev --payments`` starts it. Screenshots go to
``test-artifacts/``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from browser import ARTIFACTS, MISSING, WHY_MISSING
from stripefake import JS_PATH, register_webhook, running_localstripe

from warmpool.operator.adapters import kube
from warmpool.sim.oidc_provider import OidcProvider, missing, start_provider

pytestmark = [
    pytest.mark.skipif(MISSING, reason=WHY_MISSING),
    pytest.mark.skipif(missing() is not None, reason=str(missing())),
]
HOOK = "whsec_browser0123456789"
NS = "default"
MARKUP = 1.25


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    with running_localstripe() as base:
        yield base


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    running = start_provider(
        redirect_uris=["http://127.0.0.1/auth/callback"], application_type="native"
    )
    try:
        yield running
    finally:
        running.stop()


def settings(provider: OidcProvider, localstripe: str) -> dict[str, Any]:
    return {
        "studio_auth": "oidc",
        "studio_oidc_issuer": provider.issuer,
        "studio_oidc_client_id": provider.client_id,
        "studio_oidc_client_secret": provider.client_secret,
        "studio_oidc_scopes": "openid email profile groups",
        "studio_payments": True,
        "studio_stripe_secret_key": "sk_test_browser0123456789",
        "studio_stripe_publishable_key": "pk_test_browser",
        "studio_stripe_webhook_secret": HOOK,
        "studio_stripe_api_base": localstripe,
        "studio_stripe_js_url": localstripe + JS_PATH,
        "studio_stripe_flow": "card-token",
        "studio_credit_packs": [5.0, 20.0],
        "studio_credit_markup": MARKUP,
    }


def sign_up(page: Any, login: str) -> None:
    from playwright.sync_api import expect

    page.click("#signin-oidc")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    expect(page.locator("button[type=submit]")).to_have_text("Continue")
    page.click("button[type=submit]")
    expect(page.locator("#who")).to_have_text(f"{login}@example.test")


def pay_with_card(page: Any, number: str) -> None:
    """localstripe's Card Element: plain inputs for number, month, year, CVC, postcode."""
    from playwright.sync_api import expect

    expect(page.locator("#pay-form")).to_be_visible()
    inputs = page.locator("#payment-element input")
    for i, value in enumerate([number, "12", "34", "123", "75001"]):
        inputs.nth(i).fill(value)
    page.click("#pay")


def test_buy_credits_on_the_page_then_spend_them(
    served: Any, browser: Any, provider: OidcProvider, localstripe: str
) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    stack = served(**settings(provider, localstripe))
    register_webhook(localstripe, f"{stack.url}/payments/webhook", HOOK)
    errors: list[str] = []
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack.url)
    sign_up(page, "pat")

    # --- the credits page loads localstripe's Stripe.js, and its policy allows only that
    response = page.goto(stack.url + "/credits")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert f"script-src 'self' {localstripe};" in csp and "stripe.com" not in csp
    expect(page.locator("#main")).to_have_attribute("data-ready", "true")
    expect(page.locator("#balance")).to_have_text("$0.0000")
    page.click('#packs button[data-pack="5"]')
    expect(page.locator("#payment-element input")).to_have_count(5)
    page.screenshot(path=str(ARTIFACTS / "credits-card.png"))
    pay_with_card(page, "4242424242424242")
    # the webhook (signed by localstripe, verified by the studio) brings the credit
    expect(page.locator("#balance")).to_have_text("$5.0000", timeout=20_000)
    expect(page.locator("#pay-status")).to_have_text("Paid: the credit arrives in a moment.")
    expect(page.locator("#history tr[data-kind=purchase]")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "credits-bought.png"), full_page=True)

    # --- a generation takes its estimate × markup from the credit
    page.goto(stack.url + "/#create")
    expect(page.locator("#who")).to_have_text("pat@example.test")
    page.fill("#prompt", "a lighthouse at dusk")
    expect(page.locator("#estimate")).to_contain_text("$")  # the page knows the pool
    page.click("#generate")
    deadline = time.monotonic() + 30
    while not (jobs := stack.run(stack.kube.list(kube.GENERATIONJOBS, NS))):
        error = page.locator("#gen-error").text_content()
        assert time.monotonic() < deadline, f"no generation made in 30 s ({error})"
        page.wait_for_timeout(100)
    (job,) = jobs
    name = job["metadata"]["name"]
    credits = page.request.get(stack.url + "/api/v1/credits").json()
    debit = -next(e["amount"] for e in credits["entries"] if e["kind"] == "debit")
    assert 0 < debit < 5 and credits["balance"] == pytest.approx(5 - debit, abs=1e-6)

    # --- it finishes at a cost below its estimate: settled at cost × markup
    cost = round(debit / MARKUP / 2, 6)
    done = {"phase": "Succeeded", "finishedAt": "2030-01-01T00:00:00Z", "actualCost": cost}
    stack.run(stack.drive.set_status(name, done))
    expected = 5 - cost * MARKUP
    deadline = time.monotonic() + 60  # the studio's job watch settles it
    while True:
        got = page.request.get(stack.url + "/api/v1/credits").json()
        if any(e["kind"] == "settle" for e in got["entries"]):
            break
        assert time.monotonic() < deadline, f"not settled in 60 s: {got}"
        page.wait_for_timeout(1000)  # gently: the studio limits requests per minute
    assert got["balance"] == pytest.approx(expected, abs=2e-6)
    page.goto(stack.url + "/credits")
    expect(page.locator("#main")).to_have_attribute("data-ready", "true")
    # the page keeps the digits of a tiny spend ($4.999167, not $4.9992 or $5.0000)
    expect(page.locator("#balance")).to_have_text(f"${got['balance']:.6f}")
    kinds = page.locator("#history tr").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert kinds == ["settle", "debit", "purchase"]
    page.screenshot(path=str(ARTIFACTS / "credits-history.png"), full_page=True)
    assert errors == []


def test_a_card_asking_for_3d_secure_is_authenticated_in_the_page(
    served: Any, browser: Any, provider: OidcProvider, localstripe: str
) -> None:
    """localstripe's 3-D Secure test card leaves the PaymentIntent in requires_action; the
    page hands it to Stripe.js's confirmCardPayment (localstripe's dialog), then paid."""
    from playwright.sync_api import expect

    stack = served(**settings(provider, localstripe))
    register_webhook(localstripe, f"{stack.url}/payments/webhook", HOOK)
    page = browser.new_context().new_page()
    page.goto(stack.url)
    sign_up(page, "quinn")
    page.goto(stack.url + "/credits")
    expect(page.locator("#main")).to_have_attribute("data-ready", "true")
    page.click('#packs button[data-pack="20"]')
    pay_with_card(page, "4000002760003184")
    page.get_by_role("button", name="Complete authentication").click()
    expect(page.locator("#balance")).to_have_text("$20.0000", timeout=20_000)

    # The intent of one person cannot be paid (or probed) by another.
    intent = page.request.get(stack.url + "/api/v1/credits").json()["entries"][0]["paymentIntent"]
    other = browser.new_context().new_page()
    other.goto(stack.url)
    sign_up(other, "rita")
    r = other.request.post(
        f"{stack.url}/api/v1/credits/intents/{intent}/confirm",
        data={"token": "tok_whatever"},
        headers={"Origin": stack.url},
    )
    assert r.status == 404
    assert httpx.get(f"{stack.url}/api/v1/credits").status_code == 401
