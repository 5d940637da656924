"""A muse's references condition the image on a Flux Redux pool, end to end.

The real operator (Kopf) against the emulated API, the Vast.ai simulator and the ComfyUI
simulators behind its rentals, which hold a Flux checkpoint, the Redux style model and
the SigCLIP vision encoder. A muse with two reference images (the owner's uploads): the
job's ComfyUI receives both uploads and a graph with two ``StyleModelApply`` nodes, each
on the very bytes stored; the same muse on the pool's SDXL checkpoint still starts from
its first reference. A muse naming someone else's upload fails before anything is read.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jobsys
import pytest
from jobsys import API, DONE, job_body, phase, pool_body, ready, status
from PIL import Image
from waiting import eventually

from warmpool.operator.adapters import artifacts
from warmpool.operator.decisions import references
from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer

FLUX = "flux1-dev-fp8.safetensors"
SDXL = "sd_xl_base_1.0.safetensors"
REDUX = {"styleModel": "flux1-redux-dev.safetensors",
         "clipVision": "sigclip_vision_patch14_384.safetensors", "checkpoints": [FLUX]}  # fmt: skip
FILES = {"checkpoints": [FLUX, SDXL], "style_models": [REDUX["styleModel"]],
         "clip_vision": [REDUX["clipVision"]]}  # fmt: skip
OWNER = "alice"


@pytest.fixture
async def flux_sim() -> AsyncIterator[VastaiServer]:
    """Machines whose ComfyUI holds the SDXL defaults, a Flux checkpoint and Redux."""
    server = await jobsys.start_jobs_vastai(step_seconds=0.15, seed=11, extra_models=FILES)
    try:
        yield server
    finally:
        await server.stop()


def picture(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 48), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def muse_body(name: str, keys: list[str], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Muse", "metadata": {"name": name, "namespace": "default"},
            "spec": {"displayName": "Ada", "age": 31, "owner": OWNER,
                     "referenceImages": keys, **spec}}  # fmt: skip


def nodes(graph: dict[str, Any], cls: str) -> list[dict[str, Any]]:
    return [n for n in graph.values() if n["class_type"] == cls]


async def test_a_muse_job_on_a_redux_pool_is_conditioned_by_both_references(
    cluster: RunningCluster, kubeconfig: Path, flux_sim: VastaiServer, artifacts_url: str
) -> None:
    data = {"red": picture("red"), "teal": picture("teal")}
    digests = {c: hashlib.sha256(d).hexdigest() for c, d in data.items()}
    space = f"default/{references.owner_id(OWNER)}"
    keys = {c: artifacts.upload_key(space, digests[c], "png") for c in data}
    stranger = artifacts.upload_key(f"default/{references.owner_id('mallory')}",
                                    digests["red"], "png")  # fmt: skip
    models = [{"folder": f, "file": n} for f, names in FILES.items() for n in names]
    cluster.create(
        pool_body(
            "flux", replicas=1, template={"diskGb": 50, "models": models, "styleModels": [REDUX]}
        )
    )
    cluster.create(muse_body("ada", [keys["red"], keys["teal"]], referenceStrength=0.6))
    cluster.create(muse_body("borrowed", [keys["red"], stranger]))
    async with jobsys.operator(jobsys.settings(artifacts_url, flux_sim.url)) as deps:
        for colour, blob in data.items():
            await deps.artifacts.put_bytes(keys[colour], blob, content_type="image/png")
        await deps.artifacts.put_bytes(stranger, data["red"], content_type="image/png")
        (inst,) = await ready(cluster, 1)
        comfy = jobsys.comfy_of(flux_sim, inst)
        cluster.create(job_body("harbour", "flux", museRef="ada", model=FLUX, owner=OWNER,
                                prompt="at the harbour"))  # fmt: skip
        cluster.create(job_body("sdxl-start", "flux", museRef="ada", model=SDXL, owner=OWNER))
        cluster.create(job_body("not-hers", "flux", museRef="borrowed", model=FLUX, owner=OWNER))
        names = ["harbour", "sdxl-start", "not-hers"]
        await eventually(lambda: all(phase(cluster, n) in DONE for n in names), timeout=60,
                         what="the three jobs done")  # fmt: skip
        harbour, start, refused = (status(cluster, n) for n in names)
        assert harbour["phase"] == "Succeeded", harbour
        graph = comfy.history[harbour["promptId"]]["prompt"][2]
        applied = nodes(graph, "StyleModelApply")
        assert len(applied) == 2
        assert {(a["inputs"]["strength"], a["inputs"]["strength_type"]) for a in applied} == {
            (0.6, "multiply")}  # the muse's strength  # fmt: skip
        loaded = [graph[graph[a["inputs"]["clip_vision_output"][0]]["inputs"]["image"][0]]
                  for a in applied]  # fmt: skip
        uploaded = [n["inputs"]["image"] for n in loaded]
        assert all(u in comfy.input_files() for u in uploaded)
        assert sorted(comfy.input_image_info(u)[2] for u in uploaded) == sorted(digests.values())
        assert nodes(graph, "EmptySD3LatentImage") and not nodes(graph, "VAEEncode")  # no start
        # a checkpoint Flux Redux names is Flux (dev): guidance, CFG 1
        assert nodes(graph, "FluxGuidance") and nodes(graph, "KSampler")[0]["inputs"]["cfg"] == 1.0
        assert nodes(graph, "StyleModelLoader")[0]["inputs"] == {
            "style_model_name": REDUX["styleModel"]}  # fmt: skip
        # the finished job says which mode it used, how many references and the strength,
        # and so does the record beside its output (the studio's gallery reads that)
        used = {"mode": "style", "applied": 2, "leftOut": 0, "strength": 0.6,
                "styleModel": REDUX["styleModel"]}  # fmt: skip
        assert harbour["references"] == used
        record = await deps.artifacts.get_record(harbour["outputs"][0]["key"])
        assert record.references is not None
        assert record.references.model_dump(by_alias=True) == used
        # the SDXL checkpoint of the same pool: the first reference as the start, as before
        assert start["phase"] == "Succeeded", start
        sdxl = comfy.history[start["promptId"]]["prompt"][2]
        assert not nodes(sdxl, "StyleModelApply")
        assert start["references"] == {"mode": "start", "applied": 1, "leftOut": 1}
        (load,) = nodes(sdxl, "LoadImage")
        assert comfy.input_image_info(load["inputs"]["image"])[2] == digests["red"]
        # every reference is checked: one stranger's upload refuses the whole job
        assert (refused["phase"], refused["reason"]) == ("Failed", references.REFERENCE_NOT_OWNED)
        assert not refused.get("promptId")
        assert "references" not in refused  # refused before its graph was built
    assert comfy.requests["POST /upload/image"] >= 2
