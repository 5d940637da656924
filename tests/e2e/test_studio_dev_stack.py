"""The studio in real headless Chromium against the real local stack (``warmpool-sim dev``).

Nothing is played by the test: ``warmpool-sim dev`` runs the emulated Kubernetes API, the
Vast.ai simulator (a ComfyUI simulator behind the rental), the operator and the studio, as
``make demo`` does. In the browser a person creates a muse, generates an image with it,
watches the progress bar move (real progress from the ComfyUI simulator's websocket, written
by the operator), sees the image, finds it in the gallery and downloads it.

Timing: at ``--time-scale 20`` the sample pool is Ready in ~20 s; with
``--comfy-step-seconds 0.4`` an ``ultra`` image with 150 steps is 150 x 0.4 s x 2.25
megapixels ~= 135 simulated seconds, about 7 s of wall time, while the operator writes
progress at most once a second: the page sees intermediate values even on a loaded machine
(at the simulator's default 0.15 s a loaded machine could show 0 then 100).

Screenshots go to ``test-artifacts/e2e-*.png`` (git-ignored).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from browser import ARGS, ARTIFACTS, CHROMIUM, MISSING, WHY_MISSING, wait_until
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

TIME_SCALE = 20
READY_LINE = "pool sdxl is Ready"
#: ultra is 1536 x 1536; with the most steps the schema allows a generation lasts seconds.
QUALITY, STEPS, SIDE = "ultra", 150, 1536

pytestmark = pytest.mark.skipif(MISSING, reason=WHY_MISSING)


STUDIO_LINE = re.compile(r"^studio +(http://127\.0\.0\.1:\d+)/$")


@dataclass
class DevStack:
    """A running ``warmpool-sim dev`` and what it printed."""

    url: str
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    children: list[psutil.Process] = field(default_factory=list)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])

    def generation(self, name: str) -> dict[str, Any]:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            answer = http.get(f"/api/v1/generations/{name}")
        assert answer.status_code == 200, answer.text
        job: dict[str, Any] = answer.json()
        return job


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """``warmpool-sim dev`` in a fresh working directory until the sample pool is Ready.

    Teardown stops it with SIGINT (Ctrl-C) and checks it exits 0, says ``stopped`` and
    leaves no child process behind.
    """
    cwd = tmp_path_factory.mktemp("dev-stack")
    binary = Path(sys.executable).parent / "warmpool-sim"
    argv = [str(binary), "dev", "--studio-port", "0", "--time-scale", str(TIME_SCALE),
            "--comfy-step-seconds", "0.4"]  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    dev = DevStack(url="", proc=proc)
    ready_or_gone = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            dev.lines.append(raw.rstrip())
            if READY_LINE in raw:
                ready_or_gone.set()
        ready_or_gone.set()

    reader = threading.Thread(target=read, name="dev-stack-stdout", daemon=True)
    reader.start()
    try:
        ready_or_gone.wait(timeout=90)
        assert any(READY_LINE in ln for ln in dev.lines), f"not Ready:\n{dev.tail()}"
        # The studio listens on the port the stack bound for it, and says which.
        printed = [m for ln in dev.lines for m in STUDIO_LINE.findall(ln)]
        assert len(printed) == 1, dev.tail()
        dev.url = printed[0]
        dev.children = psutil.Process(proc.pid).children(recursive=True)
        assert len(dev.children) >= 2, "the operator and the studio run as child processes"
        yield dev
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            for child in [*dev.children, psutil.Process(proc.pid)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            code = proc.wait(timeout=10)
            pytest.fail(f"warmpool-sim dev did not stop within 40 s of SIGINT:\n{dev.tail()}")
        reader.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    assert code == 0, dev.tail()
    assert "stopped" in dev.lines, dev.tail()
    leftovers = [
        c for c in dev.children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE
    ]  # fmt: skip
    assert not leftovers, f"processes left behind: {leftovers}"


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def open_studio(browser: Browser, stack: DevStack, **context: Any) -> tuple[Page, list[str]]:
    """A fresh page on the studio, loaded, with page errors collected."""
    page = browser.new_page(accept_downloads=True, **context)
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack.url)
    expect(page.locator("#who")).to_contain_text("admin")
    expect(page.locator("#pool")).to_contain_text("sdxl · ready")
    return page, errors


def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    """A screenshot in ``test-artifacts/``, from the top (the header is sticky)."""
    ARTIFACTS.mkdir(exist_ok=True)
    if full_page:
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


def png_facts(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:16]
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


def test_create_a_muse_generate_watch_progress_find_and_download(
    stack: DevStack, browser: Browser, tmp_path: Path
) -> None:
    page, errors = open_studio(browser, stack, viewport={"width": 1280, "height": 900})
    shot(page, "e2e-studio.png")

    # --- the muse editor: identity, appearance, style; save
    page.click("[data-view=muses]")
    form = page.locator("#muse-form")
    form.locator("[name=displayName]").fill("Marisol Vega")
    form.locator("[name=age]").fill("29")
    form.locator("[name='appearance.hair']").fill("long auburn curls")
    form.locator("[name='appearance.eyes']").fill("green eyes")
    form.locator("[name='appearance.outfit']").fill("yellow raincoat")
    form.locator("[name=style]").fill("watercolor, soft morning light")
    page.click("#muse-save")
    expect(page.locator("#muse-cards [data-muse]")).to_have_count(1)
    expect(page.locator("#muse-form-title")).to_have_text("Edit Marisol Vega")
    expect(page.locator("#muse-error")).to_have_text("")
    shot(page, "e2e-muse-editor.png")

    # --- back to Create: muse, prompt, quality, steps; the estimate follows the settings
    page.click("[data-view=create]")
    page.select_option("#muse", label="Marisol Vega")
    muse = page.locator("#muse").input_value()
    assert muse.startswith("marisol-vega")
    page.fill("#prompt", "walking along a harbour wall in the rain")
    estimate = page.locator("#estimate")
    expect(estimate).to_have_text(re.compile(r"≈ .* · \$\d+\.\d{4} at \$\d+\.\d\d/h"))
    medium = estimate.get_attribute("data-dollars") or ""
    page.check(f"input[name=quality][value={QUALITY}]")
    page.click(".advanced summary")
    page.fill("input[name=steps]", str(STEPS))
    expect(estimate).not_to_have_attribute("data-dollars", medium)
    expect(estimate).to_have_attribute("data-dollars", re.compile(r"^\d"))
    assert float(estimate.get_attribute("data-dollars") or 0) > float(medium)

    # Record every (phase, value) the progress bar shows, however briefly.
    page.evaluate("""() => {
        const bar = document.querySelector('#progress');
        const phase = document.querySelector('#phase');
        const note = () => [phase.textContent, Number(bar.getAttribute('aria-valuenow'))];
        window.seenProgress = [];
        new MutationObserver(() => window.seenProgress.push(note()))
            .observe(bar, {attributes: true, attributeFilter: ['aria-valuenow']});
    }""")  # fmt: skip
    posted = re.compile(r"/api/v1/generations$")
    with page.expect_response(lambda r: bool(posted.search(r.url))) as created:
        page.click("#generate")
    answer = created.value
    assert answer.status in (200, 201), answer.text()
    made = answer.json()
    name = str(made["name"])
    assert made["spec"]["museRef"] == muse
    assert made["spec"]["quality"] == QUALITY
    assert made["spec"]["steps"] == STEPS
    assert "auburn" in made["estimate"]["positive"], "the muse shapes the prompt"

    # --- the progress bar moves: an intermediate value, then 100 and the image
    bar = page.locator("#progress")
    expect(page.locator("#progress-wrap")).to_be_visible()
    expect(bar).to_have_attribute("aria-valuenow", re.compile(r"^[1-9]\d?$"), timeout=30_000)
    shot(page, "e2e-progress.png")
    expect(page.locator("#phase")).to_have_text("Succeeded", timeout=30_000)
    expect(bar).to_have_attribute("aria-valuenow", "100")
    seen: list[tuple[str, int]] = [(p, int(v)) for p, v in page.evaluate("window.seenProgress")]
    assert any(p == "Running" and 0 < v < 100 for p, v in seen), seen
    values = [v for _, v in seen]
    assert values == sorted(values), f"progress never goes back: {seen}"
    assert seen[-1] == ("Succeeded", 100), seen
    result = page.locator("#result-image")
    expect(result).to_be_visible()
    wait_until(page, "document.querySelector('#result-image').naturalWidth > 0")
    assert page.evaluate("document.querySelector('#result-image').naturalWidth") == SIDE
    shot(page, "e2e-result.png")

    job = stack.generation(name)
    assert job["phase"] == "Succeeded"
    assert job["spec"]["museRef"] == muse
    [output] = job["status"]["outputs"]
    assert output["contentType"] == "image/png"

    def check(data: bytes) -> None:
        assert len(data) == output["size"]
        assert hashlib.sha256(data).hexdigest() == output["sha256"]
        assert png_facts(data) == (SIDE, SIDE)

    # --- download from the result
    with page.expect_download() as info:
        page.click("#download")
    assert info.value.suggested_filename == f"{name}-0.png"
    saved = tmp_path / "result.png"
    info.value.save_as(str(saved))
    check(saved.read_bytes())

    # --- the gallery: the tile, the lightbox, download from there
    page.click("[data-view=gallery]")
    tiles = page.locator("#gallery-grid .tile")
    expect(tiles).to_have_count(1)
    expect(tiles.first).to_have_attribute("aria-label", re.compile("harbour wall"))
    wait_until(page, "document.querySelector('#gallery-grid img').naturalWidth > 0")
    shot(page, "e2e-gallery.png")
    tiles.first.click()
    lightbox = page.locator("#lightbox")
    expect(lightbox).to_be_visible()
    expect(page.locator("#lightbox-caption")).to_contain_text(f"{SIDE}×{SIDE}")
    wait_until(page, "document.querySelector('#lightbox-img').naturalWidth > 0")
    shot(page, "e2e-lightbox.png", full_page=False)
    with page.expect_download() as info:
        page.click("#lightbox-download")
    assert info.value.suggested_filename == f"{name}-0.png"
    saved = tmp_path / "gallery.png"
    info.value.save_as(str(saved))
    check(saved.read_bytes())
    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    assert errors == []


def test_the_studio_at_phone_width(stack: DevStack, browser: Browser) -> None:
    page, errors = open_studio(
        browser, stack, viewport={"width": 390, "height": 844}, device_scale_factor=2,
        is_mobile=True, has_touch=True,
    )  # fmt: skip
    page.fill("#prompt", "a paper boat on a puddle")
    expect(page.locator("#estimate")).to_contain_text("$")
    expect(page.locator("#generate")).to_be_visible()
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 390, f"sideways scrolling at phone width: {width}px"
    shot(page, "e2e-phone-studio.png")
    assert errors == []


def test_the_admin_console_runs_the_fleet(stack: DevStack, browser: Browser) -> None:
    """``make demo``'s local user is an admin: the console shows the live fleet, the
    operator's rent recorded from its Events, pauses and resumes the pool."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{stack.url}/admin")
    row = page.locator("#pools tr[data-pool=sdxl]")
    expect(row).to_have_attribute("data-paused", "false")
    expect(page.locator("#instances tr[data-instance]").filter(has_text="Ready")).not_to_have_count(
        0
    )
    shot(page, "e2e-admin-fleet.png")
    row.locator("button[data-act=pause]").click()
    page.click("#confirm-yes")
    expect(row).to_have_attribute("data-paused", "true")
    with httpx.Client(base_url=stack.url, timeout=10) as http:
        (pool,) = [p for p in http.get("/api/v1/pools").json() if p["name"] == "sdxl"]
        assert pool["paused"] is True
    row.locator("button[data-act=resume]").click()
    expect(row).to_have_attribute("data-paused", "false")
    page.click("[data-view=audit]")
    expect(page.locator("#audit tr[data-action='operator.rent']")).not_to_have_count(0)
    expect(page.locator("#audit tr[data-action='pool.pause'] .actor")).to_have_text("local")
    page.click("#audit-verify")
    expect(page.locator("#audit-verdict")).to_contain_text("chain intact")
    shot(page, "e2e-admin-audit.png")
    page.click("[data-view=usage]")
    expect(page.locator("#usage-chart text").first).to_be_visible()
    shot(page, "e2e-admin-usage.png")
    assert errors == []
