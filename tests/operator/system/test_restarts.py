"""The operator stopping and starting again while jobs run (found by the chaos day)."""

from __future__ import annotations

from pathlib import Path

import jobsys
from jobsys import DONE, job_body, phase, pool_body, ready, status
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer


async def test_a_graceful_stop_mid_job_leaves_the_job_to_the_next_process(
    cluster: RunningCluster, kubeconfig: Path, slow_sim: VastaiServer, artifacts_url: str
) -> None:
    """Regression: at shutdown, Kopf's cleanup handler closed the per-instance ComfyUI
    clients while the job runners still ran; a runner's next request raised "Cannot send
    a request, as the client has been closed", which it took for an operator error: the
    job was failed over as ``instance_lost`` ("operator error: ...", an attempt spent), and
    the RuntimeError ended the operator with a traceback instead of a clean exit — on every
    SIGTERM, i.e. every rolling update. Now the runners are stopped first (the job keeps its
    lease, as the runner's cancellation path intends), and the next process finishes it."""
    cluster.create(pool_body("steady", replicas=1))
    settings = jobsys.settings(artifacts_url, slow_sim.url)
    async with jobsys.operator(settings):  # its exit must not raise
        await ready(cluster, 1)
        cluster.create(job_body("long", "steady", steps=40))
        await eventually(lambda: status(cluster, "long").get("startedAt"), what="accepted")
        await eventually(lambda: (status(cluster, "long").get("progress") or {}).get("value"),
                         what="progress")  # fmt: skip
    stopped = status(cluster, "long")
    assert stopped["phase"] == "Running", stopped
    assert "operator error" not in (stopped.get("message") or ""), stopped
    assert stopped["attempts"] == 1, stopped

    async with jobsys.operator(settings):
        await eventually(lambda: phase(cluster, "long") in DONE, timeout=60, what="done")
    final = status(cluster, "long")
    assert final["phase"] == "Succeeded", final
