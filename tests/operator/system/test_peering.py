"""Kopf peering run for real (issue 16): two operator replicas as processes, one standby.

Both replicas meet in a ``ClusterKopfPeering`` (the chart's CRD, served by the emulated
API); the one of higher priority runs, the other stands by. The active one is killed
(SIGKILL: no goodbye in the peering object); the standby takes over once the dead peer's
heartbeat expires (``WARMPOOL_PEERING_LIFETIME``), with no second rental and no job lost.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import jobsys
import pytest
from jobsys import DONE, job_body, pool_body
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer

CHART_CRDS = Path(__file__).parents[3] / "charts" / "warmpool" / "crds"
PEERING = "warmpool"
LIFETIME = 5  # seconds (production default 60)
#: The stated take-over time: the heartbeat's lifetime, a keep-alive, a reconcile.
TAKEOVER_S = LIFETIME + 15


def peers(cluster: RunningCluster) -> dict[str, Any]:
    found = cluster.get("kopf.dev/v1", "ClusterKopfPeering", PEERING) or {}
    return dict(found.get("status") or {})


def stamp(text: str | None) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else 0.0


async def replica(name: str, kubeconfig: Path, sim: VastaiServer, workdir: Path) -> Any:
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig), "POD_ID": name,
        "WARMPOOL_VASTAI_URL": sim.url, "WARMPOOL_VASTAI_API_KEY": jobsys.API_KEY,
        "WARMPOOL_PEERING": PEERING, "WARMPOOL_PEERING_LIFETIME": str(LIFETIME),
        "WARMPOOL_RECONCILE_INTERVAL": "1", "WARMPOOL_PROBE_INTERVAL": "0.2",
        "WARMPOOL_INVENTORY_REFRESH": "0.3", "WARMPOOL_OFFER_CACHE": "0.5",
        "WARMPOOL_WATCH_TIMEOUT": "2", "WARMPOOL_HEALTH_PORT": "0",
        "WARMPOOL_LOG_LEVEL": "WARNING", "WARMPOOL_ORPHAN_GRACE": "60",
        "WARMPOOL_ALLOWED_MACHINE_NETWORKS": '["127.0.0.0/8"]',
        "WARMPOOL_ARTIFACTS_URL": f"file://{workdir / 'artifacts'}",
    }  # fmt: skip
    binary = str(Path(sys.executable).parent / "warmpool-operator")
    return await asyncio.create_subprocess_exec(binary, env=env)


# Two operator processes start, one is killed, the other takes over and the jobs drain:
# its waits (each with its own deadline) add up to more than the suite's 120 s default.
@pytest.mark.timeout(360)
async def test_the_standby_takes_over_when_the_active_replica_is_killed(
    cluster: RunningCluster, kubeconfig: Path, slow_sim: VastaiServer, tmp_path: Path
) -> None:
    crds = tmp_path / "crds"
    crds.mkdir()
    shutil.copy(CHART_CRDS / "kopfpeerings.kopf.dev.yaml", crds)
    cluster.install_crds(crds)
    cluster.create({"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                    "metadata": {"name": PEERING}})  # fmt: skip
    cluster.create(pool_body("peered", replicas=1))
    names = [f"peered-{i}" for i in range(8)]
    for name in names:
        cluster.create(job_body(name, "peered", steps=20))
    procs = {}
    try:
        for name in ("replica-a", "replica-b"):
            procs[name] = await replica(name, kubeconfig, slow_sim, tmp_path)
            await eventually(lambda n=name: n in peers(cluster), timeout=60,
                             what=f"{name} in the peering object")  # fmt: skip
        seen = peers(cluster)
        active = max(seen, key=lambda n: seen[n].get("priority", 0))
        standby = next(n for n in procs if n != active)

        def phases() -> list[str]:
            return [jobsys.phase(cluster, n) for n in names]

        await eventually(lambda: "Succeeded" in phases() and "Running" in phases(), timeout=90,
                         what="the active replica running jobs")  # fmt: skip
        procs[active].send_signal(signal.SIGKILL)
        await procs[active].wait()
        killed = time.time()

        def taken_over() -> bool:
            """A job started or finished after the kill: the standby is working."""
            return any(max(stamp(jobsys.status(cluster, n).get("startedAt")),
                           stamp(jobsys.status(cluster, n).get("finishedAt"))) > killed
                       for n in names)  # fmt: skip

        await eventually(taken_over, timeout=TAKEOVER_S, what="the standby taking over")
        took = time.time() - killed
        await eventually(lambda: all(p in DONE for p in phases()), timeout=120,
                         what="every job done")  # fmt: skip
        assert phases() == ["Succeeded"] * len(names), "a job was lost"
        rentals = len(slow_sim.state.rentals) + len(slow_sim.state.destroyed)
        assert rentals == 1, f"{rentals} rentals for a pool of one: a duplicate rental"
        assert took < TAKEOVER_S
        print(f"\nstandby {standby} took over {took:.1f} s after the kill")
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
