"""The gallery in real headless Chromium: favourite, share a link that opens in a fresh
browser with no cookies and stops after revoke, delete an output from the gallery and
the store. Screenshots at desktop and phone width go to ``test-artifacts/``."""

from __future__ import annotations

import io
from typing import Any

import pytest
from browser import ARTIFACTS, MISSING, WHY_MISSING, wait_until
from gallerydata import put_output
from PIL import Image

from warmpool.operator.adapters import artifacts

pytestmark = pytest.mark.skipif(MISSING, reason=WHY_MISSING)
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def picture(color: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 192), color).save(out, format="PNG")
    return out.getvalue()


def shot(page: Any, name: str) -> None:
    """The view at desktop and at phone width (no sideways scrolling on the phone)."""
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        if label == "phone":
            assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"] + 1
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def test_share_revoke_favourite_and_delete_from_the_gallery(served: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    stack = served()
    keys = {}
    for n, color in enumerate(("#3b2a6b", "#1f6b5a")):
        keys[n] = stack.run(put_output(stack.store, f"gen-{n}", 0, picture(color),
                                       prompt=f"lighthouse number {n}", tags=["sea"]))  # fmt: skip
    page = browser.new_page(viewport=DESKTOP)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{stack.url}/#gallery")
    tiles = page.locator("#gallery-grid .tile")
    expect(tiles).to_have_count(2)
    expect(page.locator("#gallery-usage")).to_contain_text("2 outputs")
    wait_until(
        page, "[...document.querySelectorAll('#gallery-grid img')].every(i => i.naturalWidth > 0)"
    )
    shot(page, "gallery")

    # --- the lightbox: favourite, then a share link
    page.locator("[data-output='gen-1/0']").click()
    expect(page.locator("#lightbox")).to_be_visible()
    page.click("#lb-favourite")
    expect(page.locator("#lb-favourite")).to_have_attribute("aria-pressed", "true")
    page.click("#lb-share")
    expect(page.locator("#lb-share-box")).to_be_visible()
    url = page.locator("#share-url").input_value()
    assert url.startswith(f"{stack.url}/s/")
    page.screenshot(path=str(ARTIFACTS / "gallery-lightbox-share.png"))

    stranger = browser.new_context(viewport=DESKTOP)  # no cookies, nothing shared
    try:
        shared = stranger.new_page()
        shared.goto(url)
        expect(shared.locator("#shared-title")).to_have_text("lighthouse number 1")
        expect(shared.locator("#shared-items li")).to_have_count(1)
        wait_until(shared, "document.querySelector('#shared-items img')?.naturalWidth === 256")
        assert stranger.cookies() == []
        shot(shared, "shared-page")
    finally:
        stranger.close()

    page.click("#share-revoke")
    expect(page.locator("#lb-status")).to_contain_text("revoked")
    later = browser.new_context(viewport=DESKTOP)
    try:
        again = later.new_page()
        again.goto(url)
        expect(again.locator("#shared-title")).to_have_text("This link has ended")
        expect(again.locator("#shared-items li")).to_have_count(0)
        again.screenshot(path=str(ARTIFACTS / "shared-page-revoked.png"))
    finally:
        later.close()

    # --- delete, asked once more: gone from the grid and from the store
    page.click("#lb-delete")
    expect(page.locator("#lb-delete")).to_contain_text("Really delete")
    page.click("#lb-delete")
    expect(page.locator("#lightbox-caption")).to_contain_text("lighthouse number 0")  # moved on
    page.keyboard.press("Escape")
    expect(page.locator("#lightbox")).to_be_hidden()
    expect(tiles).to_have_count(1)
    expect(page.locator("[data-output='gen-1/0']")).to_have_count(0)
    expect(page.locator("#gallery-usage")).to_contain_text("1 outputs")
    assert stack.run(stack.store.head(keys[1])) is None
    assert stack.run(stack.store.head(artifacts.record_key(keys[1]))) is None
    assert stack.run(stack.store.head(keys[0])) is not None
    page.reload()
    expect(tiles).to_have_count(1)

    # --- my share links (the deleted output's went with it): revoke one from the list
    page.locator("[data-output='gen-0/0']").click()
    page.click("#lb-share")
    expect(page.locator("#lb-share-box")).to_be_visible()
    link = page.locator("#share-url").input_value()
    page.keyboard.press("Escape")
    page.click("#share-links summary")
    listed = page.locator("#share-list li")
    expect(listed).to_have_count(1)
    assert listed.locator("input").input_value() == link
    listed.locator("button", has_text="Revoke").click()
    expect(listed).to_contain_text("revoked")

    # --- a whole generation, asked once more
    for i in range(2):
        stack.run(put_output(stack.store, "gen-many", i, picture("#6b6b2a"), prompt="a pair"))
    page.reload()
    expect(tiles).to_have_count(3)
    page.locator("[data-output='gen-many/1']").click()
    page.click("#lb-delete-job")
    expect(page.locator("#lb-delete-job")).to_contain_text("Really")
    page.click("#lb-delete-job")
    expect(page.locator("#lightbox")).to_be_hidden()
    expect(tiles).to_have_count(1)
    assert stack.run(stack.store.list("outputs/default/gen-many")) == []

    # --- filters: text search, favourites
    page.fill("#gallery-filters [name=q]", "number 0")
    expect(tiles).to_have_count(1)
    page.fill("#gallery-filters [name=q]", "nothing like this")
    expect(tiles).to_have_count(0)
    assert errors == []
