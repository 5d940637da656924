"""The create page shows a checkpoint's architecture defaults, in real headless Chromium.

On a pool whose split FLUX.1 [dev] is declared, choosing it shows the Flux defaults as the
advanced settings' placeholders (20 steps, guidance 3.5 under a "Guidance" label, euler,
simple; 16 steps at low quality), says the negative prompt is not used, and the estimate
says it is ignored; choosing the SDXL checkpoint brings the SDXL defaults back. The
architecture is what the studio's pools list says (``checkpoints``).
"""

from __future__ import annotations

from typing import Any

import pytest
from browser import ARTIFACTS, MISSING, WHY_MISSING

from warmpool.operator.adapters import kube

NS = "default"
SDXL = "sd_xl_base_1.0.safetensors"
POOL = {
    "apiVersion": "warmpool.dev/v1alpha1", "kind": "GpuPool",
    "metadata": {"name": "flux", "namespace": NS},
    "spec": {"replicas": 1, "offer": {"maxPricePerHour": 0.9}, "template": {
        "models": [{"folder": "checkpoints", "file": SDXL},
                   {"folder": "diffusion_models", "file": "flux1-dev.safetensors"},
                   {"folder": "text_encoders", "file": "clip_l.safetensors"},
                   {"folder": "text_encoders", "file": "t5xxl_fp8_e4m3fn.safetensors"},
                   {"folder": "vae", "file": "ae.safetensors"}],
        "checkpoints": [{"name": "flux1-dev", "architecture": "flux-dev",
                         "diffusionModel": "flux1-dev.safetensors", "clipL": "clip_l.safetensors",
                         "t5xxl": "t5xxl_fp8_e4m3fn.safetensors", "vae": "ae.safetensors"}]}},
}  # fmt: skip
pytestmark = pytest.mark.skipif(MISSING, reason=WHY_MISSING)


def test_the_create_page_shows_the_flux_defaults_of_a_flux_checkpoint(
    served: Any, browser: Any
) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    stack = served()
    stack.run(stack.kube.create(kube.GPUPOOLS, POOL, NS))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack.url)
    expect(page.locator("#who")).to_have_text("local · admin")
    page.select_option("#pool", "flux")
    page.select_option("#model", "flux1-dev")
    page.click("details.advanced summary")
    form = page.locator("#gen-form")
    expect(form.locator("[name=steps]")).to_have_attribute("placeholder", "20")
    expect(form.locator("[name=cfg]")).to_have_attribute("placeholder", "3.5")
    expect(form.locator("[name=sampler]")).to_have_attribute("placeholder", "euler")
    expect(form.locator("[name=scheduler]")).to_have_attribute("placeholder", "simple")
    expect(form.locator("label:has([name=cfg])")).to_have_text("Guidance")
    negative = page.locator("#negative")
    expect(negative).to_have_attribute("placeholder", "not used by flux-dev (ignored)")
    page.check("[name=quality][value=low]")
    expect(form.locator("[name=steps]")).to_have_attribute("placeholder", "16")
    page.fill("#prompt", "a lighthouse at dusk")
    page.fill("#negative", "blurry")
    expect(page.locator("#estimate")).to_contain_text("the negative prompt is ignored")
    page.screenshot(path=str(ARTIFACTS / "create-flux-desktop.png"), full_page=True)
    page.select_option("#model", SDXL)
    expect(form.locator("[name=steps]")).to_have_attribute("placeholder", "12")
    expect(form.locator("[name=cfg]")).to_have_attribute("placeholder", "5")
    expect(form.locator("label:has([name=cfg])")).to_have_text("CFG")
    expect(page.locator("#estimate")).not_to_contain_text("ignored")
    assert errors == []
