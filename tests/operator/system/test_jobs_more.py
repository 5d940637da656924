"""More jobs end to end: stalls, bad outputs, muses, image-to-image and the TTL.

The real operator (Kopf) against the emulated API, the Vast.ai simulator and the
ComfyUI simulators behind its rentals (see ``test_jobs.py`` and ``jobsys``).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import jobsys
from jobsys import API, DONE, job_body, phase, pool_body, ready, status
from PIL import Image
from waiting import eventually

from warmpool.crds.muse import Muse
from warmpool.operator.adapters import artifacts
from warmpool.operator.decisions import prompts
from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer


def instance_named(cluster: RunningCluster, name: str) -> dict[str, Any]:
    return next(i for i in cluster.list(API, "GpuInstance", "default")
                if i["metadata"]["name"] == name)  # fmt: skip


def host_failures(cluster: RunningCluster, pool: str) -> list[dict[str, Any]]:
    body = cluster.get(API, "GpuPool", pool, namespace="default") or {}
    return list((body.get("status") or {}).get("hostFailures") or [])


def graph_of(comfy: Any, prompt_id: str) -> dict[str, Any]:
    """The graph a ComfyUI simulator ran for ``prompt_id`` (from its history)."""
    graph: dict[str, Any] = comfy.history[prompt_id]["prompt"][2]
    return graph


def texts(graph: dict[str, Any]) -> tuple[str, str]:
    """(positive, negative) texts the graph's sampler was given."""
    (sampler,) = [n for n in graph.values() if n["class_type"] == "KSampler"]
    positive, negative = (graph[sampler["inputs"][k][0]] for k in ("positive", "negative"))
    assert positive["class_type"] == negative["class_type"] == "CLIPTextEncode"
    return str(positive["inputs"]["text"]), str(negative["inputs"]["text"])


async def moved_after_fault(
    cluster: RunningCluster, sim: VastaiServer, artifacts_url: str, pool: str, job: str,
    fault: str, reason: str,
) -> None:  # fmt: skip
    """Inject ``fault`` on the instance running ``job``: the job must succeed on the
    other instance at its second attempt and the first host must be in the ledger."""
    cluster.create(pool_body(pool, replicas=2))
    async with jobsys.operator(jobsys.settings(artifacts_url, sim.url)) as deps:
        await ready(cluster, 2)
        cluster.create(job_body(job, pool, steps=30))
        await eventually(lambda: phase(cluster, job) == "Running", what="running")
        first = status(cluster, job)["instance"]
        victim = instance_named(cluster, first)
        machine = victim["status"]["machineId"]
        comfy = jobsys.comfy_of(sim, victim)
        if fault == "stall":
            comfy.stall_progress(after_steps=1)
        else:
            comfy.flat_output()
        await eventually(lambda: phase(cluster, job) in DONE, timeout=60, what="done")
        st = status(cluster, job)
        assert st["phase"] == "Succeeded", st
        assert st["attempts"] == 2
        assert st["instance"] != first
        assert comfy.interrupts_seen >= 1  # the first attempt was stopped on ComfyUI
        recorded = await eventually(
            lambda: [f for f in host_failures(cluster, pool) if f["machineId"] == machine],
            what="the host in the pool's failure ledger",
        )
        assert recorded[0]["reason"] == reason, recorded
        (out,) = st["outputs"]
        data = await deps.artifacts.get_bytes(out["key"])
        assert not artifacts.image_facts(data).is_flat_colour
        assert hashlib.sha256(data).hexdigest() == out["sha256"]


async def test_a_stalled_job_moves_to_another_instance(
    cluster: RunningCluster, kubeconfig: Path, slow_sim: VastaiServer, artifacts_url: str
) -> None:
    """No progress for ``stallTimeout`` (2 s): interrupted, requeued, host recorded."""
    await moved_after_fault(cluster, slow_sim, artifacts_url, "stally", "stuck", "stall",
                            "Stalled")  # fmt: skip


async def test_a_flat_output_is_retried_elsewhere(
    cluster: RunningCluster, kubeconfig: Path, slow_sim: VastaiServer, artifacts_url: str
) -> None:
    """A single-colour image is not a success: retried elsewhere, host recorded."""
    await moved_after_fault(cluster, slow_sim, artifacts_url, "flatty", "grey", "flat",
                            "BadOutput")  # fmt: skip


async def test_a_muse_job_sends_the_composed_prompt(
    cluster: RunningCluster, kubeconfig: Path, sim: VastaiServer, artifacts_url: str
) -> None:
    muse = {
        "apiVersion": API, "kind": "Muse", "metadata": {"name": "ada", "namespace": "default"},
        "spec": {"displayName": "Ada", "age": 31,
                 "appearance": {"hair": "copper braid", "eyes": "green eyes"},
                 "style": "oil painting", "negativePrompt": "extra fingers",
                 "traits": {"occupation": "cartographer", "hairLength": "long"},
                 "variations": [{"name": "sea", "outfit": "oilskin coat",
                                 "scenario": "on a rolling deck"}]},
    }  # fmt: skip
    cluster.create(muse)
    cluster.create(pool_body("muses", replicas=1))
    async with jobsys.operator(jobsys.settings(artifacts_url, sim.url)):
        (inst,) = await ready(cluster, 1)
        cluster.create(job_body("portrait", "muses", museRef="ada", prompt="reading a map",
                                negativePrompt="blurry"))  # fmt: skip
        await eventually(lambda: phase(cluster, "portrait") in DONE, timeout=30, what="done")
        st = status(cluster, "portrait")
        assert st["phase"] == "Succeeded", st
        positive, negative = texts(graph_of(jobsys.comfy_of(sim, inst), st["promptId"]))
        # the same muse in a variation; the operator counts both jobs on the muse
        cluster.create(job_body("at-sea", "muses", museRef="ada", prompt="reading a map",
                                variation="sea"))  # fmt: skip
        await eventually(lambda: phase(cluster, "at-sea") in DONE, timeout=30, what="done")
        sea = status(cluster, "at-sea")
        assert sea["phase"] == "Succeeded", sea
        varied, _ = texts(graph_of(jobsys.comfy_of(sim, inst), sea["promptId"]))

        def counted() -> dict[str, Any]:
            return (cluster.get(API, "Muse", "ada", namespace="default") or {}).get("status") or {}

        await eventually(lambda: counted().get("jobs") == 2, timeout=10, what="muse counted")
        assert counted()["lastJob"] == "at-sea"
    expected = prompts.compose(Muse.from_body(muse).spec, "reading a map", "blurry")
    assert (positive, negative) == (expected.positive, expected.negative)
    assert "copper braid" in positive and "green eyes" in positive and "reading a map" in positive
    assert "cartographer" in positive and "long hair" in positive
    assert "extra fingers" in negative and "blurry" in negative
    at_sea = prompts.compose(Muse.from_body(muse).spec, "reading a map", variation="sea")
    assert varied == at_sea.positive
    assert "on a rolling deck" in varied and "wearing oilskin coat" in varied


async def test_image_to_image_uploads_the_reference(
    cluster: RunningCluster, kubeconfig: Path, sim: VastaiServer, artifacts_url: str
) -> None:
    buffer = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").save(buffer, format="PNG")
    reference = buffer.getvalue()
    digest = hashlib.sha256(reference).hexdigest()
    owner = hashlib.sha256(b"alice").hexdigest()  # the studio's owner id
    key = artifacts.upload_key(f"default/{owner}", digest, "png")
    cluster.create(pool_body("i2i", replicas=1))
    async with jobsys.operator(jobsys.settings(artifacts_url, sim.url)) as deps:
        await deps.artifacts.put_bytes(key, reference, content_type="image/png")
        (inst,) = await ready(cluster, 1)
        comfy = jobsys.comfy_of(sim, inst)
        cluster.create(job_body("redo", "i2i", referenceImage=key, denoise=0.6, owner="alice"))
        await eventually(lambda: phase(cluster, "redo") in DONE, timeout=30, what="done")
        st = status(cluster, "redo")
        assert st["phase"] == "Succeeded", st
        assert comfy.requests["POST /upload/image"] >= 1
        graph = graph_of(comfy, st["promptId"])
        (load,) = [n for n in graph.values() if n["class_type"] == "LoadImage"]
        uploaded = load["inputs"]["image"]
        assert uploaded in comfy.input_files()
        assert comfy.input_image_info(uploaded)[2] == digest  # the very bytes stored
        (sampler,) = [n for n in graph.values() if n["class_type"] == "KSampler"]
        assert sampler["inputs"]["denoise"] == 0.6
        (out,) = st["outputs"]
        assert (out["width"], out["height"]) == (64, 64)


async def test_finished_jobs_expire_after_the_ttl_but_their_outputs_stay(
    cluster: RunningCluster, kubeconfig: Path, sim: VastaiServer, artifacts_url: str
) -> None:
    cluster.create(pool_body("brief", replicas=1, jobs={"ttl": "1s"}))
    async with jobsys.operator(jobsys.settings(artifacts_url, sim.url)) as deps:
        await ready(cluster, 1)
        cluster.create(job_body("fleeting", "brief"))
        await eventually(lambda: phase(cluster, "fleeting") in DONE, timeout=30, what="done")
        st = status(cluster, "fleeting")
        assert st["phase"] == "Succeeded", st
        (out,) = st["outputs"]
        await eventually(lambda: not jobsys.job(cluster, "fleeting"), timeout=20,
                         what="the finished job deleted after its TTL")  # fmt: skip
        data = await deps.artifacts.get_bytes(out["key"])
        assert hashlib.sha256(data).hexdigest() == out["sha256"]
        record = await deps.artifacts.get_record(out["key"])
        assert record is not None and record.job == "fleeting"
