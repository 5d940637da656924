"""Video generations in the studio: the pool's video family picks the graph and the price."""

from __future__ import annotations

from typing import Any

import pytest

from warmpool.operator.adapters import kube
from warmpool.operator.decisions import workflows

NS = "default"
Studio = Any
FAMILY = {"name": "wan22-5b", "architecture": "wan22", "modes": ["text"],
          "diffusionModel": "wan2.2_ti2v_5B_fp16.safetensors",
          "textEncoder": "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
          "vae": "wan2.2_vae.safetensors", "secondsPerFrame": 1.5}  # fmt: skip
WAN_POOL = {
    "apiVersion": "warmpool.dev/v1alpha1", "kind": "GpuPool",
    "metadata": {"name": "wan", "namespace": NS},
    "spec": {"replicas": 0, "offer": {"maxPricePerHour": 0.9}, "template": {
        "models": [{"folder": "diffusion_models", "file": FAMILY["diffusionModel"]},
                   {"folder": "text_encoders", "file": FAMILY["textEncoder"]},
                   {"folder": "vae", "file": FAMILY["vae"]}],
        "videoFamilies": [FAMILY]}},
}  # fmt: skip
VIDEO = {"pool": "wan", "prompt": "waves on a beach", "kind": "video", "frames": 33}


@pytest.fixture
async def wan_pool(kube_client: kube.KubeClient) -> None:
    await kube_client.create(kube.GPUPOOLS, WAN_POOL, NS)


async def test_video_estimate_uses_the_family_figure(studio: Studio, wan_pool: None) -> None:
    http = await studio()
    r = await http.post("/api/v1/estimate", json=VIDEO)
    assert r.status_code == 200, r.text
    # 1.5 s per frame at 832×480 and 20 steps (medium), 33 frames, plus the fixed overhead
    expected = workflows.OVERHEAD_SECONDS + 1.5 * 33
    assert r.json()["seconds"] == pytest.approx(expected)
    assert r.json()["dollars"] == pytest.approx(expected / 3600 * 0.9, abs=1e-6)


async def test_video_job_is_created_with_its_family(
    studio: Studio, wan_pool: None, kube_client: kube.KubeClient
) -> None:
    http = await studio()
    r = await http.post("/api/v1/generations", json={**VIDEO, "model": "wan22-5b"})
    assert r.status_code == 201, r.text
    obj = await kube_client.get(kube.GENERATIONJOBS, r.json()["name"], NS)
    assert obj is not None
    assert (obj["spec"]["kind"], obj["spec"]["model"]) == ("video", "wan22-5b")


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        pytest.param({**VIDEO, "pool": "sdxl"}, ["body", "kind"], "no_video_family",
                     id="pool-without-video"),
        pytest.param({**VIDEO, "model": "sd_xl_base_1.0.safetensors"}, ["body", "model"],
                     "no_video_family", id="checkpoint-is-not-a-family"),
    ],
)  # fmt: skip
async def test_video_refusals_name_the_field(
    studio: Studio, wan_pool: None, body: dict[str, Any], loc: list[str], kind: str
) -> None:
    http = await studio()
    r = await http.post("/api/v1/generations", json=body)
    assert r.status_code == 422, r.text
    [detail] = r.json()["detail"]
    assert (detail["loc"], detail["type"]) == (loc, kind)


async def test_animation_still_runs_on_an_image_pool(studio: Studio) -> None:
    http = await studio()
    r = await http.post("/api/v1/estimate", json={**VIDEO, "pool": "sdxl", "kind": "animation"})
    assert r.status_code == 200, r.text
