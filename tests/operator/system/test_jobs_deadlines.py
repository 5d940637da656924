"""A job's deadlines and its prompt's end, end to end: the real operator against the
emulated API and the simulators. ``spec.timeout`` counts from the prompt's start, the wait
in ComfyUI's queue has its own bound, and a job deleted while its ``POST /prompt`` is in
flight never runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jobsys
from jobsys import API, DONE, job_body, phase, pool_body, ready, status
from waiting import eventually

from warmpool.crds.common import parse_time
from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer


def pending(comfy: Any) -> list[str]:
    """Prompt ids waiting in a simulated ComfyUI's queue."""
    return [entry[2][1] for entry in comfy.queue]


async def test_a_queued_ahead_job_has_its_whole_timeout_once_it_begins(
    cluster: RunningCluster, kubeconfig: Path, slow_sim: VastaiServer, artifacts_url: str
) -> None:
    """Regression: a job queued ahead in ComfyUI behind a long one counted its wait in that
    queue against ``spec.timeout`` and failed with ``Timeout`` before it began. Its
    timeout (2 s, its run is a fraction of that) counts from its start: it waits about
    3 s behind the long job, then runs and succeeds on its first attempt."""
    cluster.create(pool_body("wait", replicas=1))
    async with jobsys.operator(jobsys.settings(artifacts_url, slow_sim.url)):
        (inst,) = await ready(cluster, 1)
        comfy = jobsys.comfy_of(slow_sim, inst)
        cluster.create(job_body("long", "wait", steps=40))
        await eventually(lambda: phase(cluster, "long") == "Running", what="long running")
        cluster.create(job_body("short", "wait", timeout="2s"))
        await eventually(lambda: len(pending(comfy)) == 1, what="queued ahead in ComfyUI")
        await eventually(lambda: all(phase(cluster, n) in DONE for n in ("long", "short")),
                         timeout=60, what="both done")  # fmt: skip
    long, short = status(cluster, "long"), status(cluster, "short")
    assert (short["phase"], short["attempts"]) == ("Succeeded", 1), short
    assert long["phase"] == "Succeeded"
    assert short["startedAt"] >= long["startedAt"]
    waited = parse_time(short["startedAt"]) - parse_time(short["scheduledAt"])
    assert waited.total_seconds() > 2.0, "it did wait longer than its timeout in the queue"


async def test_a_prompt_past_its_queue_wait_bound_is_taken_out_and_placed_again(
    cluster: RunningCluster, kubeconfig: Path, slow_sim: VastaiServer, artifacts_url: str
) -> None:
    """The wait in ComfyUI's queue has a bound of its own (here 1 s, the job ahead runs
    about 3 s), so a queue that does not move still ends: the waiting prompt is taken out
    of the queue without running, the job goes back to the pool's queue (the attempt
    counted, ``QueueWaitExceeded``) and is placed again; the running job is not touched."""
    cluster.create(pool_body("stuck", replicas=1, jobs={"maxAttempts": 10}))
    settings = jobsys.settings(artifacts_url, slow_sim.url, queue_wait_max_seconds=1.0)
    async with jobsys.operator(settings):
        (inst,) = await ready(cluster, 1)
        comfy = jobsys.comfy_of(slow_sim, inst)
        cluster.create(job_body("long", "stuck", steps=40))
        await eventually(lambda: phase(cluster, "long") == "Running", what="long running")
        interrupts = comfy.interrupts_seen
        cluster.create(job_body("behind", "stuck"))
        await eventually(lambda: len(pending(comfy)) == 1, what="queued ahead in ComfyUI")
        (first,) = pending(comfy)
        await eventually(lambda: first not in pending(comfy), what="taken out at its bound")
        assert phase(cluster, "long") == "Running", "the queue was left while long still ran"
        await eventually(lambda: all(phase(cluster, n) in DONE for n in ("long", "behind")),
                         timeout=60, what="both done")  # fmt: skip
        assert comfy.interrupts_seen - interrupts <= status(cluster, "behind")["attempts"]
    long, behind = status(cluster, "long"), status(cluster, "behind")
    assert (long["phase"], long["attempts"]) == ("Succeeded", 1), long
    assert behind["phase"] == "Succeeded" and behind["attempts"] >= 2, behind
    assert first not in comfy.history, "the prompt taken out never ran"
    assert behind["promptId"] != first


async def test_a_job_deleted_while_its_prompt_is_posted_never_runs(
    cluster: RunningCluster,
    cluster_http: httpx.AsyncClient,
    kubeconfig: Path,
    slow_sim: VastaiServer,
    artifacts_url: str,
) -> None:
    """Regression: a job deleted while its ``POST /prompt`` was in flight had the POST cut
    off and its removal sent at once; ComfyUI queued the prompt it had received after the
    removal, and it ran for a job that was gone. Now the runner waits for ComfyUI's answer
    (here 1.5 s late) and then takes the prompt out of the queue: it never runs."""
    cluster.create(pool_body("gone", replicas=1))
    async with jobsys.operator(jobsys.settings(artifacts_url, slow_sim.url)):
        (inst,) = await ready(cluster, 1)
        comfy = jobsys.comfy_of(slow_sim, inst)
        cluster.create(job_body("long", "gone", steps=40))
        await eventually(lambda: phase(cluster, "long") == "Running", what="long running")
        posts = comfy.requests["POST /prompt"]
        comfy.slow_answer("/prompt", 1.5 * getattr(comfy.clock, "time_scale", 1.0))
        cluster.create(job_body("doomed", "gone"))
        await eventually(lambda: comfy.requests["POST /prompt"] > posts, what="POST in flight")
        assert not pending(comfy), "ComfyUI has not handled the POST yet"
        response = await cluster_http.delete(
            f"/apis/{API}/namespaces/default/generationjobs/doomed"
        )
        assert response.status_code in (200, 202)
        await eventually(lambda: not jobsys.job(cluster, "doomed"), what="doomed gone")
        await eventually(lambda: phase(cluster, "long") in DONE, timeout=60, what="long done")
        await eventually(lambda: comfy.running is None and not pending(comfy), what="idle")
    assert (status(cluster, "long")["phase"], status(cluster, "long")["attempts"]) == (
        "Succeeded", 1)  # fmt: skip
    long_prompt = status(cluster, "long")["promptId"]
    (doomed,) = comfy.prompts_seen[comfy.prompts_seen.index(long_prompt) + 1 :]
    assert doomed not in comfy.history, "the deleted job's prompt never ran"
