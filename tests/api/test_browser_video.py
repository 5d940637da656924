"""A video job's MP4 plays in the studio page, with its poster, in real headless Chromium.

The operator's part is played by the test: it creates the job, stores an MP4 made by the
ComfyUI simulator's encoder (H.264, as ComfyUI's SaveVideo) and its PNG poster, and marks
the job Succeeded, as the operator does.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from browser import ARGS, ARTIFACTS, CHROMIUM, MISSING, WHY_MISSING, wait_until

from warmpool.api.auth import OWNER_LABEL
from warmpool.operator.adapters import artifacts, kube
from warmpool.sim import comfyui_images as images

NS = "default"
FRAMES = 17

pytestmark = pytest.mark.skipif(MISSING, reason=WHY_MISSING)


async def finish_with_video(stack: Any, name: str, job: dict[str, Any]) -> None:
    frames = [images.render("a wave", 320, 192, frame=i) for i in range(FRAMES)]
    poster = io.BytesIO()
    frames[0].save(poster, format="PNG")
    files = [("png", "image/png", poster.getvalue()),
             ("mp4", "video/mp4", images.mp4_bytes(frames, fps=8))]  # fmt: skip
    outputs = []
    for index, (ext, ctype, data) in enumerate(files):
        key = f"outputs/{NS}/{name}/{index}.{ext}"
        await stack.store.put_bytes(key, data, content_type=ctype)
        output = {
            "key": key,
            "contentType": ctype,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "width": 320,
            "height": 192,
        }
        outputs.append(output)  # fmt: skip
        await stack.store.put_record(artifacts.OutputRecord.model_validate({
            **output, "namespace": NS, "job": name, "index": index, "kind": "video",
            "owner": "local", "prompt": job["spec"]["prompt"], "created": datetime.now(UTC),
        }))  # fmt: skip
    await stack.drive.set_status(
        name, {"phase": "Succeeded", "finishedAt": "2030-01-01T00:00:00Z", "outputs": outputs}
    )


def test_a_video_plays_with_its_poster_and_downloads_as_mp4(served: Any, tmp_path: Any) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    stack = served()
    name = "video-1"
    job = {"apiVersion": "warmpool.dev/v1alpha1", "kind": "GenerationJob",
           "metadata": {"name": name, "namespace": NS, "labels": {OWNER_LABEL: "local"}},
           "spec": {"pool": "sdxl", "kind": "video", "prompt": "a wave", "owner": "local",
                    "frames": FRAMES}}  # fmt: skip
    stack.run(stack.kube.create(kube.GENERATIONJOBS, job, NS))
    stack.run(finish_with_video(stack, name, job))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900},
                                    accept_downloads=True)  # fmt: skip
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(stack.url)
            thumb = page.locator("#history button img")
            expect(thumb).to_have_count(1)
            wait_until(page, "document.querySelector('#history img')?.naturalWidth > 0")
            page.locator("#history button").first.click()
            video = page.locator("#result-video")
            expect(video).to_be_visible()
            assert (video.get_attribute("poster") or "").startswith(f"/api/v1/generations/{name}")
            wait_until(
                page,
                "(() => { const v = document.querySelector('#result-video');"
                " return v.readyState >= 2 && v.videoWidth === 320; })()",
            )
            page.evaluate("document.querySelector('#result-video').play()")
            wait_until(page, "document.querySelector('#result-video').currentTime > 0.3")
            duration = page.evaluate("document.querySelector('#result-video').duration")
            assert duration == pytest.approx(FRAMES / 8, abs=0.2)
            page.screenshot(path=str(ARTIFACTS / "studio-video.png"))
            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=str(ARTIFACTS / "studio-video-phone.png"), full_page=True)
            page.set_viewport_size({"width": 1280, "height": 900})
            with page.expect_download() as info:
                page.click("#download")
            assert info.value.suggested_filename == f"{name}-1.mp4"
            assert errors == []
        finally:
            browser.close()
