"""Hostile machines and hostile job specs, end to end (T4).

The real operator against the emulated API and the Vast.ai simulator, whose ComfyUI
simulators can answer like a hostile host (``huge_answer``: a body that never ends).
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

from warmpool.operator.adapters import artifacts
from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer

CAP = 1024 * 1024  # the image cap in these tests: 1 MiB


def host_failures(cluster: RunningCluster, pool: str) -> list[dict[str, Any]]:
    body = cluster.get(API, "GpuPool", pool, namespace="default") or {}
    return list((body.get("status") or {}).get("hostFailures") or [])


def instance_named(cluster: RunningCluster, name: str) -> dict[str, Any]:
    return next(i for i in cluster.list(API, "GpuInstance", "default")
                if i["metadata"]["name"] == name)  # fmt: skip


async def test_an_endless_output_moves_the_job_and_cools_the_host(
    cluster: RunningCluster, kubeconfig: Path, slow_sim: VastaiServer, artifacts_url: str
) -> None:
    """The story: ``/view`` answering without end was read into one growing buffer until
    the operator ran out of memory. Now the download stops at the image cap, nothing is
    stored, the job runs again on the other instance and the host is in the ledger."""
    cluster.create(pool_body("hostile", replicas=2))
    settings = jobsys.settings(artifacts_url, slow_sim.url, comfy_max_image_bytes=CAP)
    async with jobsys.operator(settings) as deps:
        await ready(cluster, 2)
        cluster.create(job_body("greedy", "hostile", steps=30))
        await eventually(lambda: phase(cluster, "greedy") == "Running", what="running")
        first = status(cluster, "greedy")["instance"]
        victim = instance_named(cluster, first)
        machine = victim["status"]["machineId"]
        comfy = jobsys.comfy_of(slow_sim, victim)
        comfy.huge_answer("/view", 0, count=1)  # endless
        await eventually(lambda: phase(cluster, "greedy") in DONE, timeout=60, what="done")
        st = status(cluster, "greedy")
        assert st["phase"] == "Succeeded", st
        assert st["attempts"] == 2 and st["instance"] != first
        assert comfy.faults.huge_answers["/view"][1] == 0  # the endless answer was served
        recorded = await eventually(
            lambda: [f for f in host_failures(cluster, "hostile") if f["machineId"] == machine],
            what="the host in the pool's cool-down ledger",
        )
        assert recorded[0]["reason"] == "MachineAnswerTooLarge", recorded
        assert str(CAP) in recorded[0]["message"]
        (out,) = st["outputs"]
        assert out["size"] < CAP
        keys = await deps.artifacts.list("outputs/default/greedy")
        assert keys == [out["key"]]  # nothing half-written from the first attempt


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


async def test_a_job_loads_only_its_owners_own_upload(
    cluster: RunningCluster, kubeconfig: Path, sim: VastaiServer, artifacts_url: str
) -> None:
    """The story: a job written with kubectl named another user's upload (or anybody's
    output) as ``referenceImage`` and the operator sent those bytes to a rented machine.
    Now such a job fails with ``ReferenceNotOwned`` before anything reaches ComfyUI."""
    data = _png()
    digest = hashlib.sha256(data).hexdigest()
    bob = hashlib.sha256(b"bob").hexdigest()
    bobs = artifacts.upload_key(f"default/{bob}", digest, "png")
    foreign = artifacts.upload_key(f"elsewhere/{hashlib.sha256(b'alice').hexdigest()}",
                                   digest, "png")  # fmt: skip
    output = artifacts.output_key("default", "someone", 0, "png")
    cluster.create(pool_body("refs", replicas=1))
    async with jobsys.operator(jobsys.settings(artifacts_url, sim.url)) as deps:
        for key in (bobs, foreign, output):
            await deps.artifacts.put_bytes(key, data, content_type="image/png")
        (inst,) = await ready(cluster, 1)
        comfy = jobsys.comfy_of(sim, inst)
        for name, key in (("bobs", bobs), ("foreign", foreign), ("output", output)):
            cluster.create(job_body(name, "refs", referenceImage=key, denoise=0.5, owner="alice"))
        for name in ("bobs", "foreign", "output"):
            await eventually(lambda n=name: phase(cluster, n) in DONE, timeout=30, what=name)
            st = status(cluster, name)
            assert (st["phase"], st["reason"]) == ("Failed", "ReferenceNotOwned"), st
            assert bob not in st["message"]
        assert comfy.requests["POST /upload/image"] == 0
