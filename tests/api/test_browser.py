"""The studio page in real headless Chromium (Debian's, driven by Playwright).

The operator is not needed: the test plays its part, patching the job's status and
writing the output into the artifact store. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from browser import ARTIFACTS, MISSING, WHY_MISSING, wait_until
from PIL import Image

from warmpool.operator.adapters import kube

NS = "default"


pytestmark = pytest.mark.skipif(MISSING, reason=WHY_MISSING)


def picture() -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (256, 192), "#3b2a6b")
    for x in range(0, 256, 16):
        image.paste((255, 143, 177), (x, 80, x + 8, 112))
    image.save(out, format="PNG")
    return out.getvalue()


def test_create_a_muse_generate_watch_see_find_download(
    served: Any, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    stack = served()
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack.url)
    expect(page.locator("#who")).to_have_text("local · admin")

    # --- the muse editor: attributes, a reference image, save
    page.click("[data-view=muses]")
    form = page.locator("#muse-form")
    form.locator("[name=displayName]").fill("Captain Ada")
    form.locator("[name=age]").fill("34")
    form.locator("[name='appearance.hair']").fill("short silver hair")
    form.locator("[name='appearance.outfit']").fill("navy pea coat")
    form.locator("[name=style]").fill("painterly, warm rim light")
    ref = tmp_path / "ref.png"
    ref.write_bytes(picture())
    page.set_input_files("#muse-upload", str(ref))
    expect(page.locator("#muse-refs li")).to_have_count(1)
    page.click("#muse-save")
    expect(page.locator("#muse-cards [data-muse]")).to_have_count(1)
    expect(page.locator("#muse-form-title")).to_have_text("Edit Captain Ada")
    page.screenshot(path=str(ARTIFACTS / "studio-muse-editor.png"), full_page=True)

    # --- the studio: prompt, muse, live estimate, generate
    page.click("[data-view=create]")
    page.select_option("#muse", label="Captain Ada")
    page.fill("#prompt", "standing on a lighthouse at dusk, oil painting")
    expect(page.locator("#estimate")).to_contain_text("$")
    cheap = page.locator("#estimate").get_attribute("data-dollars")
    page.check("input[name=quality][value=ultra]")
    expect(page.locator("#estimate")).not_to_have_attribute("data-dollars", cheap or "")
    page.screenshot(path=str(ARTIFACTS / "studio-create.png"), full_page=True)
    page.keyboard.press("Control+Enter")

    def job_name() -> str:
        async def one() -> list[dict[str, Any]]:
            return await stack.kube.list(kube.GENERATIONJOBS, NS)

        for _ in range(200):
            jobs = stack.run(one())
            if jobs:
                return str(jobs[0]["metadata"]["name"])
            page.wait_for_timeout(50)
        raise AssertionError("no job was created")

    name = job_name()
    job = stack.run(stack.kube.get(kube.GENERATIONJOBS, name, NS))
    assert job["spec"]["museRef"].startswith("captain-ada-")
    assert job["spec"]["quality"] == "ultra"
    bar = page.locator("#progress")
    expect(bar).to_have_attribute("aria-valuenow", "0")

    # --- progress from the SSE stream, driven by status patches
    stack.run(stack.drive.set_status(name, {"phase": "Scheduled"}))
    expect(page.locator("#phase")).to_have_text("Scheduled")
    for percent in (25, 60):
        progress = {"value": percent, "max": 100, "percent": percent}
        stack.run(stack.drive.set_status(name, {"phase": "Running", "progress": progress}))
        expect(bar).to_have_attribute("aria-valuenow", str(percent))
    page.screenshot(path=str(ARTIFACTS / "studio-progress.png"))
    image = picture()
    stack.run(stack.drive.succeed(name, image))
    expect(bar).to_have_attribute("aria-valuenow", "100")
    result = page.locator("#result-image")
    expect(result).to_be_visible()
    wait_until(page, "document.querySelector('#result-image')?.naturalWidth > 0")
    page.screenshot(path=str(ARTIFACTS / "studio-result.png"), full_page=True)

    # --- download
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == f"{name}-0.png"
    saved = tmp_path / "download.png"
    download.save_as(str(saved))
    assert saved.read_bytes() == image

    # --- gallery with the lightbox
    page.click("[data-view=gallery]")
    tiles = page.locator("#gallery-grid .tile")
    expect(tiles).to_have_count(1)
    wait_until(page, "document.querySelector('#gallery-grid img')?.naturalWidth > 0")
    page.screenshot(path=str(ARTIFACTS / "studio-gallery.png"), full_page=True)
    tiles.first.click()
    expect(page.locator("#lightbox")).to_be_visible()
    wait_until(page, "document.querySelector('#lightbox-img')?.naturalWidth > 0")
    page.screenshot(path=str(ARTIFACTS / "studio-lightbox.png"))
    page.keyboard.press("Escape")
    expect(page.locator("#lightbox")).to_be_hidden()

    # --- phone width: no sideways scrolling
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("[data-view=create]")
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 391
    page.screenshot(path=str(ARTIFACTS / "studio-phone.png"), full_page=True)
    assert errors == []
