"""Muses and creating in real headless Chromium: a muse built from the pick lists with a
variation and a reference image (shown as a preview), a run with that variation whose
composed prompt, seed and cost are shown after it, "again with a new seed", and "edit
these settings". The operator's part is played by the test (status patches, outputs).
Screenshots at desktop and phone width go to ``test-artifacts/``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from browser import ARTIFACTS, MISSING, WHY_MISSING, wait_until
from PIL import Image

from warmpool.operator.adapters import kube

NS = "default"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
pytestmark = pytest.mark.skipif(MISSING, reason=WHY_MISSING)


def picture(color: str = "#6b2a3b") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (200, 160), color).save(out, format="PNG")
    return out.getvalue()


def shot(page: Any, name: str) -> None:
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        if label == "phone":
            assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"] + 1
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def pick(page: Any, name: str, value: str) -> None:
    """Choose ``value`` from the attribute's pick list (it must be one of its choices)."""
    field = page.locator(f"[name='traits.{name}']")
    listed = page.locator(f"#{field.get_attribute('list')} option").evaluate_all(
        "options => options.map(o => o.value)"
    )
    assert value in listed, (name, listed)
    field.fill(value)


def jobs_of(stack: Any) -> list[dict[str, Any]]:
    return list(stack.run(stack.kube.list(kube.GENERATIONJOBS, NS)))


def wait_jobs(stack: Any, page: Any, count: int) -> list[dict[str, Any]]:
    for _ in range(200):
        found = jobs_of(stack)
        if len(found) >= count:
            return sorted(found, key=lambda o: o["metadata"]["name"])
        page.wait_for_timeout(50)
    raise AssertionError(f"fewer than {count} jobs")


def test_a_muse_from_pick_lists_and_a_variation_then_again_with_a_new_seed(
    served: Any, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    stack = served()
    page = browser.new_page(viewport=DESKTOP)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack.url)
    expect(page.locator("#who")).to_have_text("local · admin")

    # --- the muse: pick lists, a personality trait, a variation, a reference image
    page.click("[data-view=muses]")
    expect(page.locator("#trait-fields input")).to_have_count(24)
    form = page.locator("#muse-form")
    form.locator("[name=displayName]").fill("Captain Ada")
    form.locator("[name=age]").fill("34")
    for name, value in (("nationality", "Japanese"), ("occupation", "ship captain"),
                        ("build", "athletic"), ("hairLength", "pixie"),
                        ("hairColour", "silver"), ("eyeColour", "green")):  # fmt: skip
        pick(page, name, value)
    page.check("[name='traits.personality'][value=calm]")
    page.click("#variation-add")
    row = page.locator("#muse-variations li").first
    row.locator("[data-key=name]").fill("beach")
    row.locator("[data-key=outfit]").fill("a linen sundress")
    row.locator("[data-key=scenario]").fill("on a sunny beach")
    ref = tmp_path / "ref.png"
    ref.write_bytes(picture())
    page.set_input_files("#muse-upload", str(ref))
    preview = page.locator("#muse-refs img")
    expect(preview).to_have_count(1)
    wait_until(page, "document.querySelector('#muse-refs img')?.naturalWidth > 0")
    page.click("#muse-save")
    expect(page.locator("#muse-form-title")).to_have_text("Edit Captain Ada")
    expect(page.locator("#muse-cards [data-muse]")).to_have_count(1)
    wait_until(page, "document.querySelector('#muse-refs img')?.naturalWidth > 0")  # saved
    page.fill("#muse-search", "nobody")
    expect(page.locator("#muse-cards [data-muse]")).to_have_count(0)
    page.fill("#muse-search", "captain")
    expect(page.locator("#muse-cards [data-muse]")).to_have_count(1)
    shot(page, "muses")

    # --- a reference image can be removed again (and the removal is saved)
    page.set_input_files("#muse-upload", str(ref))
    expect(preview).to_have_count(2)
    page.click("#muse-refs li:nth-child(2) button")
    expect(preview).to_have_count(1)
    page.click("#muse-save")
    expect(page.locator("#muse-error")).to_have_text("")

    def references() -> int:
        [muse] = stack.run(stack.kube.list(kube.MUSES, NS))
        return len(muse["spec"].get("referenceImages") or [])

    for _ in range(100):
        if references() == 1:
            break
        page.wait_for_timeout(50)
    assert references() == 1

    # --- create with the variation; the pool's status is live
    page.click("[data-view=create]")
    pool = page.locator("#pool option[value=sdxl]")
    expect(pool).to_contain_text("warming")
    status = {"readyReplicas": 1, "replicas": 1, "queuedJobs": 3}
    stack.run(stack.kube.patch(kube.GPUPOOLS, "sdxl", NS, {"status": status}, subresource="status"))
    expect(pool).to_contain_text("ready · 3 queued")
    page.select_option("#muse", label="Captain Ada")
    expect(page.locator("#variation-wrap")).to_be_visible()
    page.select_option("#variation", "beach")
    page.fill("#prompt", "portrait at golden hour")
    expect(page.locator("#estimate")).to_contain_text("$")
    page.keyboard.press("Control+Enter")
    [first] = wait_jobs(stack, page, 1)
    name = first["metadata"]["name"]
    assert first["spec"]["variation"] == "beach"
    stack.run(stack.drive.set_status(name, {"seed": 1234, "actualCost": 0.0042}))
    stack.run(stack.drive.succeed(name, picture("#2a6b3b")))
    expect(page.locator("#run-info")).to_be_visible()
    composed = page.locator("#run-prompt")
    expect(composed).to_contain_text("portrait at golden hour, on a sunny beach, Captain Ada")
    for part in ("Japanese", "ship captain", "athletic build", "pixie silver hair",
                 "wearing a linen sundress", "calm"):  # fmt: skip
        expect(composed).to_contain_text(part)
    expect(page.locator("#run-seed")).to_have_text("1234")
    expect(page.locator("#run-cost")).to_have_text("$0.0042")
    expect(page.locator("#run-model")).to_have_text("sd_xl_base_1.0.safetensors")
    wait_until(page, "document.querySelector('#result-image')?.naturalWidth > 0")
    shot(page, "create-after-run")

    # --- again with a new seed: the same settings, another seed
    page.click("#again-seed")
    jobs = wait_jobs(stack, page, 2)
    second = next(j for j in jobs if j["metadata"]["name"] != name)
    assert second["spec"]["seed"] not in (1234, -1)
    assert second["spec"]["seed"] >= 0
    for key in ("prompt", "museRef", "variation", "quality", "pool"):
        assert second["spec"][key] == first["spec"][key], key
    expect(page.locator("#phase")).to_have_text("Queued")

    # --- edit these settings: the form takes the described job's settings
    page.fill("#prompt", "")
    page.click("#edit-settings")
    expect(page.locator("#prompt")).to_have_value("portrait at golden hour")
    expect(page.locator("#variation")).to_have_value("beach")
    expect(page.locator("[name=seed]")).to_have_value("1234")
    assert errors == []
