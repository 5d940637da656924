"""A node that fails because of the machine moves the job, it does not fail it."""

from __future__ import annotations

from pathlib import Path

import jobsys
from jobsys import DONE, job_body, phase, pool_body, ready, ready_instances, status
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer


async def test_a_full_disk_moves_the_job_to_another_machine(
    cluster: RunningCluster, kubeconfig: Path, slow_sim: VastaiServer, artifacts_url: str
) -> None:
    """Regression (chaos day): the rented machine's disk filled up, so the job's SaveImage
    raised ``OSError: [Errno 28] No space left on device``; the job failed for good
    (``ExecutionFailed``) as if its graph were wrong. It is the host's fault: the job is
    retried on another machine and the host is recorded in the pool's failure ledger."""
    cluster.create(pool_body("disky", replicas=2))
    async with jobsys.operator(jobsys.settings(artifacts_url, slow_sim.url)):
        await ready(cluster, 2)
        cluster.create(job_body("saved", "disky", steps=30))
        await eventually(lambda: phase(cluster, "saved") == "Running", what="running")
        first = status(cluster, "saved")["instance"]
        victim = next(i for i in ready_instances(cluster) if i["metadata"]["name"] == first)
        machine = victim["status"]["machineId"]
        jobsys.comfy_of(slow_sim, victim).fail_node(
            "SaveImage", exception_type="OSError",
            message="[Errno 28] No space left on device: '/workspace/ComfyUI/output'",
        )  # fmt: skip
        await eventually(lambda: phase(cluster, "saved") in DONE, timeout=60, what="done")
        st = status(cluster, "saved")
        assert st["phase"] == "Succeeded", st
        assert st["attempts"] == 2
        assert st["instance"] != first

        def recorded() -> list[dict[str, object]]:
            pool = cluster.get(jobsys.API, "GpuPool", "disky", "default") or {}
            failures = (pool.get("status") or {}).get("hostFailures") or []
            return [f for f in failures if f.get("machineId") == machine]

        found = await eventually(recorded, what="the host in the failure ledger")
        assert found[0]["reason"] == "HostFault", found
