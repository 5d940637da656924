"""Queue-ahead and the instance's one websocket, end to end: the real operator against the
emulated API and the simulators (jobs queued in ComfyUI behind the running prompt; one
socket per instance; cancellation and draining of a prompt that has not begun)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jobsys
from jobsys import API, DONE, job_body, phase, pool_body, ready, status
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer


def pending(comfy: Any) -> list[str]:
    """Prompt ids waiting in a simulated ComfyUI's queue."""
    return [entry[2][1] for entry in comfy.queue]


def warmpool_sockets(comfy: Any) -> list[str]:
    return [sid for sid in comfy.sockets if sid.startswith("warmpool-")]


async def test_jobs_queue_behind_the_running_one_on_one_websocket(
    cluster: RunningCluster, kubeconfig: Path, sim: VastaiServer, artifacts_url: str
) -> None:
    """One instance, twelve jobs: the second is queued in ComfyUI while the first runs
    (two placed at a time), every prompt is followed on the instance's one websocket, each
    job runs exactly once, and a job shorter than a second is written once (its outcome)."""
    cluster.create(pool_body("solo", replicas=1))
    names = [f"q-{i:02}" for i in range(12)]
    async with jobsys.operator(jobsys.settings(artifacts_url, sim.url)):
        (inst,) = await ready(cluster, 1)
        comfy = jobsys.comfy_of(sim, inst)
        seen_before = len(comfy.prompts_seen)
        log = cluster.emulator._requests
        first = len(log)
        for name in names:
            cluster.create(job_body(name, "solo"))
        await eventually(lambda: all(phase(cluster, n) in DONE for n in names), timeout=60,
                         what="all done")  # fmt: skip
        assert len(warmpool_sockets(comfy)) == 1, comfy.sockets
    assert all(phase(cluster, n) == "Succeeded" for n in names)
    prompts = comfy.prompts_seen[seen_before:]
    assert len(prompts) == len(names) == len(set(prompts)), "each job ran exactly once"
    assert {status(cluster, n)["promptId"] for n in names} == set(prompts)
    for n in names:
        st = status(cluster, n)
        assert st["startedAt"] and st["scheduledAt"] <= st["startedAt"] <= st["finishedAt"]
    writes = [r for r in list(log)[first:] if r.method in ("PATCH", "PUT")
              and "generationjobs" in str(r.url)]  # fmt: skip
    assert len(writes) <= 2 * len(names), len(writes)  # mostly one: Running goes with it


async def test_a_queued_ahead_prompt_is_removed_when_its_job_is_deleted(
    cluster: RunningCluster,
    cluster_http: httpx.AsyncClient,
    kubeconfig: Path,
    slow_sim: VastaiServer,
    artifacts_url: str,
) -> None:
    """The second job waits in ComfyUI's queue behind a long one; deleting it takes its
    prompt out of that queue (``POST /queue {"delete"}``): it never runs, and the running
    job is not interrupted."""
    cluster.create(pool_body("del", replicas=1))
    async with jobsys.operator(jobsys.settings(artifacts_url, slow_sim.url)):
        (inst,) = await ready(cluster, 1)
        comfy = jobsys.comfy_of(slow_sim, inst)
        cluster.create(job_body("long", "del", steps=40))
        await eventually(lambda: phase(cluster, "long") == "Running", what="running")
        cluster.create(job_body("behind", "del"))
        await eventually(lambda: len(pending(comfy)) == 1, what="queued ahead in ComfyUI")
        (queued,) = pending(comfy)
        assert phase(cluster, "behind") in ("", "Queued", "Scheduled")  # not Running
        interrupts = comfy.interrupts_seen
        response = await cluster_http.delete(
            f"/apis/{API}/namespaces/default/generationjobs/behind"
        )
        assert response.status_code in (200, 202)
        await eventually(lambda: not pending(comfy), what="taken out of ComfyUI's queue")
        await eventually(lambda: phase(cluster, "long") in DONE, timeout=60, what="long done")
        assert phase(cluster, "long") == "Succeeded"
        assert comfy.requests["POST /queue"] >= 1
        assert queued not in comfy.history, "the deleted job's prompt never ran"
        assert comfy.interrupts_seen - interrupts <= 1  # a targeted no-op at most
        assert status(cluster, "long")["attempts"] == 1


async def test_a_draining_instance_gives_back_the_prompt_queued_ahead(
    cluster: RunningCluster,
    cluster_http: httpx.AsyncClient,
    kubeconfig: Path,
    slow_sim: VastaiServer,
    artifacts_url: str,
) -> None:
    """Two instances busy with long jobs, a third job queued ahead on one of them; that
    instance drains: the queued prompt leaves its ComfyUI queue and the job runs on the
    other instance (requeued as ``Drained``, the attempt not counted); the running job
    finishes on the draining instance."""
    cluster.create(pool_body("pair", replicas=2))
    async with jobsys.operator(jobsys.settings(artifacts_url, slow_sim.url)):
        first, second = await ready(cluster, 2)
        cluster.create(job_body("a", "pair", steps=40))
        cluster.create(job_body("b", "pair", steps=40))
        await eventually(lambda: all(phase(cluster, n) == "Running" for n in "ab"),
                         what="both running")  # fmt: skip
        cluster.create(job_body("c", "pair"))
        comfies = {i["metadata"]["name"]: jobsys.comfy_of(slow_sim, i) for i in (first, second)}
        await eventually(lambda: any(pending(c) for c in comfies.values()), what="c queued")
        drained = next(n for n, c in comfies.items() if pending(c))
        (queued,) = pending(comfies[drained])
        response = await cluster_http.patch(
            f"/apis/{API}/namespaces/default/gpuinstances/{drained}/status",
            json={"status": {"phase": "Draining", "reason": "ScaledDown"}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        response.raise_for_status()
        await eventually(lambda: not pending(comfies[drained]), what="c out of the queue")
        await eventually(lambda: all(phase(cluster, n) in DONE for n in "abc"), timeout=60,
                         what="all done")  # fmt: skip
    c = status(cluster, "c")
    assert (c["phase"], c["attempts"]) == ("Succeeded", 1), c
    assert c["instance"] != drained
    assert queued not in comfies[drained].history
    runner_of = {status(cluster, n)["instance"] for n in "ab"}
    assert drained in runner_of and all(phase(cluster, n) == "Succeeded" for n in "ab")


async def test_a_dropped_websocket_reconnects_and_the_jobs_still_finish(
    cluster: RunningCluster, kubeconfig: Path, slow_sim: VastaiServer, artifacts_url: str
) -> None:
    """The instance's one socket drops while a job runs and another waits behind it (the
    process stays up): the session reconnects, each follower looks its prompt up, and both
    jobs finish on their first attempt."""
    cluster.create(pool_body("flaky", replicas=1))
    async with jobsys.operator(jobsys.settings(artifacts_url, slow_sim.url)):
        (inst,) = await ready(cluster, 1)
        comfy = jobsys.comfy_of(slow_sim, inst)
        cluster.create(job_body("one", "flaky", steps=30))
        cluster.create(job_body("two", "flaky", steps=30))
        await eventually(lambda: comfy.running is not None and len(pending(comfy)) == 1,
                         what="one running, one queued")  # fmt: skip
        (before,) = warmpool_sockets(comfy)
        await comfy.drop_websockets()
        await eventually(lambda: warmpool_sockets(comfy) == [before], what="reconnected")
        await eventually(lambda: all(phase(cluster, n) in DONE for n in ("one", "two")),
                         timeout=60, what="both done")  # fmt: skip
    for n in ("one", "two"):
        st = status(cluster, n)
        assert (st["phase"], st["attempts"]) == ("Succeeded", 1), st
