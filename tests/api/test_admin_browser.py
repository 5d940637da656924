"""The admin console in real headless Chromium (Debian's, driven by Playwright).

Token mode, as a small team runs it: a failed sign-in, a non-admin refused, an admin
pausing a pool from the Fleet view (with confirmation), then the audit viewer showing
both. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

from typing import Any

import pytest
from browser import ARTIFACTS, MISSING, WHY_MISSING

from warmpool.operator.adapters import kube

NS = "default"
TOKENS = {  # the studio refuses tokens under 32 characters
    "root": "root-token-0123456789abcdef0123456789",
    "bob": "bob-token-0123456789abcdef0123456789",
}

pytestmark = pytest.mark.skipif(MISSING, reason=WHY_MISSING)


def sign_in(page: Any, url: str, token: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.locator("#signin")).to_be_visible()
    page.fill("#signin-form [name=token]", token)
    page.click("#signin-form [type=submit]")


def test_admin_pauses_a_pool_and_the_audit_shows_it(served: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    stack = served(studio_auth="token", studio_admins=["root"])
    secret = {"metadata": {"name": "warmpool-studio-tokens"}, "stringData": TOKENS}
    stack.run(stack.kube.create(kube.SECRETS, secret, NS))
    errors: list[str] = []

    # --- a failed sign-in
    intruder = browser.new_page()
    sign_in(intruder, stack.url, "not-a-token-at-all")
    expect(intruder.locator("#signin-error")).to_contain_text("not valid")

    # --- a non-admin gets 403 for the console
    bob = browser.new_context().new_page()
    sign_in(bob, stack.url, TOKENS["bob"])
    expect(bob.locator("#who")).to_have_text("bob")
    expect(bob.locator("#admin-link")).to_be_hidden()
    response = bob.goto(f"{stack.url}/admin")
    assert response is not None and response.status == 403

    # --- the admin pauses the pool from the Fleet view
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, stack.url, TOKENS["root"])
    expect(page.locator("#who")).to_have_text("root · admin")
    page.click("#admin-link")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    row = page.locator("#pools tr[data-pool=sdxl]")
    expect(row).to_have_attribute("data-paused", "false")
    expect(page.locator("#fleet-live")).to_contain_text("live")
    page.screenshot(path=str(ARTIFACTS / "admin-fleet.png"), full_page=True)
    row.locator("button[data-act=pause]").click()
    expect(page.locator("#confirm")).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text("Pause pool sdxl")
    page.screenshot(path=str(ARTIFACTS / "admin-confirm.png"))
    page.click("#confirm-yes")
    # the row turns paused through the shared watch (SSE), not a reload
    expect(row).to_have_attribute("data-paused", "true")
    pool = stack.run(stack.kube.get(kube.GPUPOOLS, "sdxl", NS))
    assert pool["spec"]["paused"] is True
    assert pool["metadata"]["annotations"]["warmpool.dev/last-admin"] == "root"

    # --- the audit viewer: the pause with the admin's name, the failed sign-in with its address
    page.click("[data-view=audit]")
    pause = page.locator("#audit tr[data-action='pool.pause']")
    expect(pause).to_have_count(1)
    expect(pause.locator(".actor")).to_have_text("root")
    failed = page.locator("#audit tr[data-action='session.sign_in']").filter(has_text="denied")
    expect(failed).to_have_count(1)
    expect(failed.locator(".address")).to_have_text("127.0.0.1")
    page.fill("#audit-filter [name=actor]", "root")
    page.click("#audit-filter [type=submit]")
    expect(page.locator("#audit tr[data-action='session.sign_in']")).to_have_count(1)
    page.click("#audit-verify")
    expect(page.locator("#audit-verdict")).to_contain_text("chain intact")
    page.screenshot(path=str(ARTIFACTS / "admin-audit.png"), full_page=True)

    # --- usage renders its chart (empty period is fine), without script errors
    page.click("[data-view=usage]")
    expect(page.locator("#usage-chart text").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "admin-usage.png"), full_page=True)
    assert errors == []
