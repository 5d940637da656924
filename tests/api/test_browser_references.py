"""The muse and create pages say which mode a muse's references take, in headless Chromium.

On a pool whose Flux checkpoint has a Redux style model the create page says the
references condition the image (and how many); on its SDXL checkpoint, that the first one
is the image-to-image start; the muse editor lists what each pool does. The strengths
typed in the muse editor and the create page reach the muse and the job. Screenshots go
to ``test-artifacts/``.
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
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
FLUX = "flux1-dev-fp8.safetensors"
SDXL = "sd_xl_base_1.0.safetensors"
REDUX = {"styleModel": "flux1-redux-dev.safetensors",
         "clipVision": "sigclip_vision_patch14_384.safetensors", "checkpoints": [FLUX]}  # fmt: skip
FLUX_POOL = {
    "apiVersion": "warmpool.dev/v1alpha1", "kind": "GpuPool",
    "metadata": {"name": "flux", "namespace": NS},
    "spec": {"replicas": 1, "offer": {"maxPricePerHour": 0.9}, "template": {
        "models": [{"folder": "checkpoints", "file": FLUX},
                   {"folder": "checkpoints", "file": SDXL},
                   {"folder": "style_models", "file": REDUX["styleModel"]},
                   {"folder": "clip_vision", "file": REDUX["clipVision"]}],
        "styleModels": [REDUX]}},
}  # fmt: skip
pytestmark = pytest.mark.skipif(MISSING, reason=WHY_MISSING)


def picture(color: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 90), color).save(out, format="PNG")
    return out.getvalue()


def shot(page: Any, name: str) -> None:
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        if label == "phone":
            assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"] + 1
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def test_the_pages_say_how_references_are_used_for_the_chosen_pool_and_model(
    served: Any, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    stack = served()
    stack.run(stack.kube.create(kube.GPUPOOLS, FLUX_POOL, NS))
    page = browser.new_page(viewport=DESKTOP)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack.url)
    expect(page.locator("#who")).to_have_text("local · admin")

    # --- the muse editor: what each pool does with references; two references, a strength
    page.click("[data-view=muses]")
    modes = page.locator("#muse-ref-modes li")
    expect(modes).to_have_count(2)
    expect(page.locator("#muse-ref-modes li[data-pool=flux]")).to_have_text(
        f"flux: references condition the image on {FLUX} (Flux Redux, up to 4); its other "
        "models: first reference as the image-to-image start."
    )
    expect(page.locator("#muse-ref-modes li[data-pool=sdxl]")).to_contain_text(
        "sdxl: first reference as the image-to-image start"
    )
    form = page.locator("#muse-form")
    form.locator("[name=displayName]").fill("Captain Ada")
    form.locator("[name=age]").fill("34")
    for i, colour in enumerate(("#6b2a3b", "#2a6b5b")):
        ref = tmp_path / f"ref{i}.png"
        ref.write_bytes(picture(colour))
        page.set_input_files("#muse-upload", str(ref))
        expect(page.locator("#muse-refs img")).to_have_count(i + 1)
    form.locator("[name=referenceStrength]").fill("0.6")
    page.click("#muse-save")
    expect(page.locator("#muse-form-title")).to_have_text("Edit Captain Ada")
    wait_until(page, "[...document.querySelectorAll('#muse-refs img')]"
                     ".every(i => i.naturalWidth > 0)")  # fmt: skip
    [muse] = stack.run(stack.kube.list(kube.MUSES, NS))
    assert muse["spec"]["referenceStrength"] == 0.6
    assert len(muse["spec"]["referenceImages"]) == 2
    shot(page, "muse-references")

    # --- create: the mode follows the pool and the model chosen
    page.click("[data-view=create]")
    page.select_option("#pool", "flux")
    page.select_option("#model", FLUX)
    page.select_option("#muse", label="Captain Ada")
    page.fill("#prompt", "at the harbour at dawn")
    label = page.locator("#reference-mode")
    expect(label).to_have_text(
        "References condition the image (Flux Redux): 2 reference images of this muse."
    )
    expect(label).to_have_attribute("data-mode", "style")
    shot(page, "create-references")
    page.click("details.advanced summary")
    page.fill("[name=referenceStrength]", "0.4")
    page.keyboard.press("Control+Enter")
    for _ in range(200):
        jobs = stack.run(stack.kube.list(kube.GENERATIONJOBS, NS))
        if jobs:
            break
        page.wait_for_timeout(50)
    [job] = jobs
    assert (job["spec"]["model"], job["spec"]["referenceStrength"]) == (FLUX, 0.4)
    assert job["spec"]["museRef"] == muse["metadata"]["name"]
    page.select_option("#model", SDXL)
    expect(label).to_have_attribute("data-mode", "start")
    expect(label).to_contain_text("First reference as the image-to-image start")
    expect(label).to_contain_text("The other reference is not used on this model.")
    page.select_option("#pool", "sdxl")
    expect(label).to_contain_text("First reference as the image-to-image start")
    page.select_option("#muse", "")
    expect(label).to_be_hidden()
    assert errors == []
