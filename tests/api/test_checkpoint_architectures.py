"""The studio tells each checkpoint's architecture and its defaults (T5).

The pools list gives, per checkpoint, how it is run (sdxl, flux-dev, flux-schnell) and the
presets the operator will use, so the create page shows Flux defaults (euler/simple,
guidance 3.5, 20 steps; schnell 4) for a Flux checkpoint; the estimate prices a Flux job on
its architecture and says what it ignores (the negative prompt) or reads differently (cfg
as the Flux guidance). A job without ``model`` on a Flux-only pool runs the pool's first
declared checkpoint (the SDXL base is not on its machines: ComfyUI would refuse it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from warmpool.operator.adapters import kube
from warmpool.operator.decisions import architectures

NS = "default"
Studio = Any
SCHNELL = "flux1-schnell-fp8.safetensors"
SDXL = "sd_xl_base_1.0.safetensors"
SPLIT = {"name": "flux1-dev", "architecture": "flux-dev",
         "diffusionModel": "flux1-dev.safetensors", "clipL": "clip_l.safetensors",
         "t5xxl": "t5xxl_fp8_e4m3fn.safetensors", "vae": "ae.safetensors"}  # fmt: skip
POOL = {
    "apiVersion": "warmpool.dev/v1alpha1", "kind": "GpuPool",
    "metadata": {"name": "flux", "namespace": NS},
    "spec": {"replicas": 1, "offer": {"maxPricePerHour": 0.9}, "template": {
        "models": [{"folder": "checkpoints", "file": SDXL},
                   {"folder": "checkpoints", "file": SCHNELL},
                   {"folder": "diffusion_models", "file": "flux1-dev.safetensors"},
                   {"folder": "text_encoders", "file": "clip_l.safetensors"},
                   {"folder": "text_encoders", "file": "t5xxl_fp8_e4m3fn.safetensors"},
                   {"folder": "vae", "file": "ae.safetensors"}],
        "checkpoints": [{"name": SCHNELL, "architecture": "flux-schnell"}, SPLIT]}},
}  # fmt: skip


async def test_pools_give_each_checkpoint_its_architecture_and_defaults(
    studio: Studio, kube_client: kube.KubeClient
) -> None:
    await kube_client.create(kube.GPUPOOLS, POOL, NS)
    http = await studio()
    (pool,) = [p for p in (await http.get("/api/v1/pools")).json() if p["name"] == "flux"]
    assert pool["models"] == [SDXL, SCHNELL, "flux1-dev"]  # the split one is a model too
    assert pool["defaultModel"] == SCHNELL  # the first declared checkpoint, not the SDXL file
    by_name = {c["name"]: c for c in pool["checkpoints"]}
    sdxl, schnell, dev = by_name[SDXL], by_name[SCHNELL], by_name["flux1-dev"]
    assert (sdxl["architecture"], sdxl["negativePrompt"], sdxl["cfgLabel"]) == ("sdxl", True, "CFG")
    assert sdxl["presets"]["medium"] == {"steps": 24, "width": 1024, "height": 1024, "cfg": 6.5,
                                         "sampler": "dpmpp_2m", "scheduler": "karras"}  # fmt: skip
    assert (dev["architecture"], dev["split"], dev["negativePrompt"], dev["cfgLabel"]) == (
        "flux-dev", True, False, "Guidance")  # fmt: skip
    assert dev["presets"]["medium"] == {"steps": 20, "width": 1024, "height": 1024, "cfg": 3.5,
                                        "sampler": "euler", "scheduler": "simple"}  # fmt: skip
    assert (schnell["architecture"], schnell["cfgLabel"]) == ("flux-schnell", "")
    assert {p["steps"] for p in schnell["presets"].values()} == {4}


async def test_the_estimate_prices_flux_and_says_what_it_ignores(
    studio: Studio, kube_client: kube.KubeClient
) -> None:
    await kube_client.create(kube.GPUPOOLS, POOL, NS)
    http = await studio()
    job = {"pool": "flux", "prompt": "a lighthouse at dusk", "negativePrompt": "blurry"}
    dev = await http.post("/api/v1/estimate", json={**job, "model": "flux1-dev", "cfg": 2.5})
    assert dev.status_code == 200, dev.text
    sdxl = (await http.post("/api/v1/estimate", json={**job, "model": SDXL})).json()
    fast = (await http.post("/api/v1/estimate", json={**job, "model": SCHNELL})).json()
    est = dev.json()
    assert est["architecture"] == "flux-dev"
    assert est["notes"] == [architectures.NEGATIVE_IGNORED, architectures.CFG_IS_GUIDANCE]
    assert (sdxl["architecture"], sdxl["notes"]) == ("sdxl", [])
    assert fast["notes"] == [architectures.NEGATIVE_IGNORED]
    assert fast["seconds"] < sdxl["seconds"] < est["seconds"]  # schnell 4 steps; dev ~2x SDXL


async def test_a_model_less_job_on_the_flux_example_pool_gets_its_flux_checkpoint(
    studio: Studio, kube_client: kube.KubeClient
) -> None:
    example = Path(__file__).parents[2] / "crds" / "examples" / "gpupool_flux.yaml"
    await kube_client.create(kube.GPUPOOLS, yaml.safe_load(example.read_text()), NS)
    http = await studio()
    job = {"pool": "flux", "prompt": "a lighthouse at dusk"}
    est = (await http.post("/api/v1/estimate", json=job)).json()
    assert est["architecture"] == "flux-schnell"
    created = await http.post("/api/v1/generations", json=job)
    assert created.status_code == 201, created.text
    out = created.json()
    assert (out["model"], out["estimate"]["architecture"]) == (SCHNELL, "flux-schnell")
    obj = await kube_client.get(kube.GENERATIONJOBS, out["name"], NS)
    assert obj is not None and obj["spec"]["model"] == SCHNELL  # what the operator runs
