"""A Flux pool declared as a user would: its jobs run the Flux way, end to end.

The story: a Flux checkpoint used to run the SDXL way (CFG 6-7, a negative prompt,
dpmpp_2m/karras): poor images at twice the cost. The real operator (Kopf) against the
emulated API, the Vast.ai simulator and the ComfyUI simulators behind its rentals, which
hold FLUX.1 [dev] as split files only (diffusion model, CLIP-L + T5-XXL, the ae VAE) and
nothing in models/checkpoints of it. The canary loads the split files (there is no
checkpoint file to load); a job with ``cfg`` 2.8 and a negative prompt is submitted with
FluxGuidance 2.8, KSampler at CFG 1 with euler/simple and a zeroed negative (the negative
prompt reaches no node); a job without ``cfg`` or ``model`` runs the pool's first declared
checkpoint (not the SDXL base) with guidance 3.5 and the preset's 16 steps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jobsys
import pytest
from jobsys import DONE, job_body, phase, pool_body, ready, status
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer

SPLIT = {"name": "flux1-dev", "architecture": "flux-dev",
         "diffusionModel": "flux1-dev.safetensors", "clipL": "clip_l.safetensors",
         "t5xxl": "t5xxl_fp8_e4m3fn.safetensors", "vae": "ae.safetensors",
         "weightDtype": "fp8_e4m3fn"}  # fmt: skip
FILES = {"diffusion_models": [SPLIT["diffusionModel"]],
         "text_encoders": [SPLIT["clipL"], SPLIT["t5xxl"]], "vae": [SPLIT["vae"]]}  # fmt: skip


@pytest.fixture
async def flux_sim() -> AsyncIterator[VastaiServer]:
    """Machines whose ComfyUI holds the split FLUX.1 [dev] files."""
    server = await jobsys.start_jobs_vastai(step_seconds=0.1, seed=12, extra_models=FILES)
    try:
        yield server
    finally:
        await server.stop()


def nodes(graph: dict[str, Any], cls: str) -> list[dict[str, Any]]:
    return [n for n in graph.values() if n["class_type"] == cls]


async def test_jobs_on_a_split_flux_pool_run_with_flux_guidance_at_cfg_1(
    cluster: RunningCluster, kubeconfig: Path, flux_sim: VastaiServer, artifacts_url: str
) -> None:
    models = [{"folder": f, "file": n} for f, names in FILES.items() for n in names]
    template = {"diskGb": 50, "models": models, "checkpoints": [SPLIT]}
    cluster.create(pool_body("flux", replicas=1, template=template))
    async with jobsys.operator(jobsys.settings(artifacts_url, flux_sim.url)):
        (inst,) = await ready(cluster, 1)  # the canary ran on the split files
        comfy = jobsys.comfy_of(flux_sim, inst)
        cluster.create(job_body("guided", "flux", model="flux1-dev", cfg=2.8,
                                negativePrompt="blurry, extra fingers"))  # fmt: skip
        # No model: the pool's first declared checkpoint, not the SDXL base.
        cluster.create(job_body("preset", "flux", steps=None, width=None, height=None))
        names = ["guided", "preset"]
        await eventually(lambda: all(phase(cluster, n) in DONE for n in names), timeout=60,
                         what="both Flux jobs done")  # fmt: skip
        guided, preset = (status(cluster, n) for n in names)
        assert guided["phase"] == "Succeeded", guided
        assert preset["phase"] == "Succeeded", preset
        graph = comfy.history[guided["promptId"]]["prompt"][2]
        (sampler,) = nodes(graph, "KSampler")
        assert {k: sampler["inputs"][k] for k in ("cfg", "sampler_name", "scheduler", "steps")} == {
            "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple", "steps": 4}  # fmt: skip
        (guidance,) = nodes(graph, "FluxGuidance")
        assert guidance["inputs"]["guidance"] == 2.8
        assert graph[sampler["inputs"]["positive"][0]] is guidance
        negative = graph[sampler["inputs"]["negative"][0]]
        assert negative["class_type"] == "ConditioningZeroOut"
        assert "extra fingers" not in str(graph)
        assert nodes(graph, "UNETLoader")[0]["inputs"] == {
            "unet_name": "flux1-dev.safetensors", "weight_dtype": "fp8_e4m3fn"}  # fmt: skip
        assert nodes(graph, "DualCLIPLoader")[0]["inputs"]["type"] == "flux"
        assert nodes(graph, "EmptySD3LatentImage") and not nodes(graph, "CheckpointLoaderSimple")
        other = comfy.history[preset["promptId"]]["prompt"][2]
        assert nodes(other, "UNETLoader")[0]["inputs"]["unet_name"] == "flux1-dev.safetensors"
        assert not nodes(other, "CheckpointLoaderSimple")  # not the SDXL base's loader
        assert nodes(other, "FluxGuidance")[0]["inputs"]["guidance"] == 3.5
        assert nodes(other, "KSampler")[0]["inputs"]["steps"] == 16  # flux-dev "low"
        assert nodes(other, "EmptySD3LatentImage")[0]["inputs"]["width"] == 768
        # the canary: no checkpoint file on this pool, so it loaded the split files too
        canaries = [h["prompt"][2] for h in comfy.history.values()
                    if h["prompt"][1] not in (guided["promptId"], preset["promptId"])]  # fmt: skip
        assert canaries and all(nodes(c, "UNETLoader") for c in canaries)
        assert not any(nodes(c, "CheckpointLoaderSimple") for c in canaries)
