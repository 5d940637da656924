"""Which mode a muse's references take, as the studio tells it (T5).

The pools list says, per checkpoint, whether a muse's references condition the image
(the pool's Flux Redux style model) or the first one is the image-to-image start; the
estimate of a generation says which mode that very job will use, from the same plan the
operator makes (``decisions.conditioning``); a finished job's details and its gallery item
say which mode it did use (``status.references``, and the record beside each output).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from warmpool.operator.adapters import kube

NS = "default"
Studio = Any
FLUX = "flux1-dev-fp8.safetensors"
SDXL = "sd_xl_base_1.0.safetensors"
REDUX = {"styleModel": "flux1-redux-dev.safetensors",
         "clipVision": "sigclip_vision_patch14_384.safetensors", "checkpoints": [FLUX],
         "maxReferences": 2}  # fmt: skip
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


def png_bytes(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, format="PNG")
    return out.getvalue()


async def uploads(http: Any, count: int) -> list[str]:
    keys = []
    for i in range(count):
        data = png_bytes((32 + i, 32))
        r = await http.post("/api/v1/uploads", files={"file": ("ref.png", data, "image/png")})
        assert r.status_code == 201, r.text
        keys.append(r.json()["key"])
    return keys


async def test_pools_say_per_checkpoint_how_references_are_used(
    studio: Studio, kube_client: kube.KubeClient
) -> None:
    await kube_client.create(kube.GPUPOOLS, FLUX_POOL, NS)
    http = await studio()
    pools = {p["name"]: p for p in (await http.get("/api/v1/pools")).json()}
    assert pools["flux"]["referenceModes"] == [
        {"checkpoint": FLUX, "mode": "style", "architecture": "flux-redux",
         "styleModel": "flux1-redux-dev.safetensors", "maxReferences": 2},
        {"checkpoint": SDXL, "mode": "start", "architecture": None, "styleModel": None,
         "maxReferences": 1},
    ]  # fmt: skip
    assert {m["mode"] for m in pools["sdxl"]["referenceModes"]} == {"start"}


CASES = [
    pytest.param({"model": FLUX}, 3, ("style", 2, 1), id="flux-conditioned-capped"),
    pytest.param({"model": FLUX}, 1, ("style", 1, 0), id="flux-one-reference"),
    pytest.param({"model": SDXL}, 3, ("start", 0, 2), id="sdxl-first-as-start"),
    pytest.param({"model": FLUX}, 0, ("none", 0, 0), id="muse-without-references"),
    pytest.param({"pool": "sdxl"}, 2, ("start", 0, 1), id="pool-without-redux"),
    pytest.param({"model": FLUX, "kind": "animation", "frames": 8}, 2, ("style", 2, 0),
                 id="animation-conditioned"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "refs", "expected"), CASES)
async def test_the_estimate_says_which_mode_the_job_will_use(
    studio: Studio, kube_client: kube.KubeClient, change: dict[str, Any], refs: int,
    expected: tuple[str, int, int],
) -> None:  # fmt: skip
    await kube_client.create(kube.GPUPOOLS, FLUX_POOL, NS)
    http = await studio()
    keys = await uploads(http, refs)
    muse = {"name": "ada", "displayName": "Ada", "age": 30, "referenceImages": keys}
    assert (await http.post("/api/v1/muses", json=muse)).status_code == 201
    job = {"pool": "flux", "prompt": "at the harbour", "museRef": "ada", **change}
    r = await http.post("/api/v1/estimate", json=job)
    assert r.status_code == 200, r.text
    est = r.json()
    assert (est["referenceMode"], est["references"], est["referencesLeftOut"]) == expected


async def test_the_muse_preferred_model_decides_the_mode(
    studio: Studio, kube_client: kube.KubeClient
) -> None:
    await kube_client.create(kube.GPUPOOLS, FLUX_POOL, NS)
    http = await studio()
    keys = await uploads(http, 2)
    muse = {"name": "ada", "displayName": "Ada", "age": 30, "referenceImages": keys,
            "preferredModel": FLUX, "referenceStrength": 0.5}  # fmt: skip
    assert (await http.post("/api/v1/muses", json=muse)).status_code == 201
    job = {"pool": "flux", "prompt": "at the harbour", "museRef": "ada"}
    est = (await http.post("/api/v1/estimate", json=job)).json()
    assert (est["referenceMode"], est["references"]) == ("style", 2)
    made = await http.post("/api/v1/generations", json={**job, "referenceStrength": 0.8})
    assert made.status_code == 201, made.text
    obj = await kube_client.get(kube.GENERATIONJOBS, made.json()["name"], NS)
    assert obj is not None
    assert (obj["spec"]["model"], obj["spec"]["referenceStrength"]) == (FLUX, 0.8)
    stored = await kube_client.get(kube.MUSES, "ada", NS)
    assert stored is not None and stored["spec"]["referenceStrength"] == 0.5


@pytest.mark.parametrize(
    ("job", "loc"),
    [
        pytest.param({"referenceStrength": 0.5}, ["body"], id="strength-without-muse"),
        pytest.param({"museRef": "ada", "referenceStrength": 10.5}, ["body", "referenceStrength"],
                     id="strength-above-the-node-maximum"),
    ],
)  # fmt: skip
async def test_bad_strengths_are_refused(
    studio: Studio, kube_client: kube.KubeClient, job: dict[str, Any], loc: list[str]
) -> None:
    await kube_client.create(kube.GPUPOOLS, FLUX_POOL, NS)
    http = await studio()
    await http.post("/api/v1/muses", json={"name": "ada", "displayName": "Ada", "age": 30})
    r = await http.post("/api/v1/estimate", json={"pool": "flux", "prompt": "x", **job})
    assert r.status_code == 422, r.text
    assert any(d["loc"][: len(loc)] == loc for d in r.json()["detail"]), r.json()


async def test_a_finished_job_and_its_gallery_item_say_how_references_were_used(
    studio: Studio, kube_client: kube.KubeClient, drive: Any
) -> None:
    await kube_client.create(kube.GPUPOOLS, FLUX_POOL, NS)
    http = await studio()
    keys = await uploads(http, 3)
    muse = {"name": "ada", "displayName": "Ada", "age": 30, "referenceImages": keys}
    assert (await http.post("/api/v1/muses", json=muse)).status_code == 201
    job = {"pool": "flux", "prompt": "at sea", "museRef": "ada", "model": FLUX}
    made = await http.post("/api/v1/generations", json=job)
    assert made.status_code == 201, made.text
    name = made.json()["name"]
    assert made.json()["status"].get("references") is None  # not built yet
    used = {"mode": "style", "applied": 2, "leftOut": 1, "strength": 1.0,
            "styleModel": REDUX["styleModel"]}  # fmt: skip
    await drive.succeed(name, png_bytes((64, 48)), references=used)  # as the operator writes it
    job = (await http.get(f"/api/v1/generations/{name}")).json()
    assert job["status"]["references"] == used
    (item,) = (await http.get("/api/v1/gallery")).json()["items"]
    assert item["references"] == used
