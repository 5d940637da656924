"""The activity loop (:mod:`controllers.activity`) against the emulated API: a replica works
once announced and alone on top, stands down (its dispatcher stopped) when a higher peer
appears, waits the hand-over grace when it joins above a live lower peer, and works again
when the higher peer's heartbeat expires. A requeue from stale facts is refused."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from waiting import eventually

from warmpool.crds.common import format_time
from warmpool.crds.gpuinstance import GpuInstance
from warmpool.crds.gpupool import GpuPool
from warmpool.operator.adapters import kube
from warmpool.operator.controllers import activity
from warmpool.operator.controllers.instance import launch
from warmpool.operator.controllers.jobs import facts, outcomes
from warmpool.operator.deps import Deps
from warmpool.operator.settings import OperatorSettings
from warmpool.sim.cluster import RunningCluster

CHART_CRDS = Path(__file__).parents[3] / "charts" / "warmpool" / "crds"
LIFETIME = 5


class Dispatcher:
    """Stands in for the job dispatcher: records that it was stopped."""

    def __init__(self) -> None:
        self.stopped = 0

    def jobs_on(self, namespace: str, instance: str) -> int:
        return 0

    def job_counts(self, namespace: str, pool: str) -> None:
        return None

    def arrivals_since(self, namespace: str, pool: str, since: datetime) -> None:
        return None

    async def stop(self) -> None:
        self.stopped += 1


def entry(priority: int, *, ago: float = 0.0, lifetime: int = LIFETIME) -> dict[str, object]:
    seen = datetime.now(UTC) - timedelta(seconds=ago)
    return {"priority": priority, "lifetime": lifetime, "lastseen": seen.isoformat()}


@pytest.fixture
async def deps(cluster: RunningCluster, tmp_path: Path) -> AsyncIterator[Deps]:
    crds = tmp_path / "crds"
    crds.mkdir()
    shutil.copy(CHART_CRDS / "kopfpeerings.kopf.dev.yaml", crds)
    cluster.install_crds(crds)
    cluster.create({"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                    "metadata": {"name": "warmpool"}})  # fmt: skip
    settings = OperatorSettings(peering="warmpool", peering_lifetime=LIFETIME, pod_id="me")
    async with httpx.AsyncClient() as http, kube.KubeClient(cluster.url) as client:
        yield Deps(settings=settings, http=http, opened_kube=client)


def peering_reads(cluster: RunningCluster) -> int:
    """GETs of the peering object the emulated API has answered."""
    return sum(
        1
        for r in cluster.emulator
        if r.method.value.upper() == "GET" and "/clusterkopfpeerings/warmpool" in str(r.url)
    )


async def until_read_twice(cluster: RunningCluster) -> None:
    """The loop has read the peering object (twice from now): its standing is decided."""
    at = peering_reads(cluster)
    await eventually(lambda: peering_reads(cluster) >= at + 2, timeout=10, what="two reads")


async def set_peers(deps: Deps, status: dict[str, object]) -> None:
    current = await deps.kube.get(kube.CLUSTER_KOPF_PEERINGS, "warmpool") or {}
    gone = {name: None for name in current.get("status") or {} if name not in status}
    await deps.kube.patch(kube.CLUSTER_KOPF_PEERINGS, "warmpool", None,
                          {"status": {**gone, **status}})  # fmt: skip


async def test_works_alone_stands_down_for_a_higher_peer_and_works_again(
    deps: Deps, cluster: RunningCluster
) -> None:
    task = asyncio.create_task(activity.follow(deps, 5))
    try:
        await until_read_twice(cluster)
        assert not deps.active.is_set(), "working before its peers can see it"
        await set_peers(deps, {"me": entry(5, lifetime=3600)})
        await eventually(deps.active.is_set, timeout=10, what="working alone")
        # the jobs were listed first: the dispatcher starts once Kopf's index caught up
        assert deps.catch_up is not None and deps.catch_up.jobs == {}

        first = Dispatcher()
        deps.dispatcher = first
        await set_peers(deps, {"me": entry(5, lifetime=3600), "high": entry(9)})
        await eventually(lambda: not deps.active.is_set(), timeout=10, what="standing down")
        assert first.stopped == 1 and deps.dispatcher is None

        # The higher peer stops its heartbeat: once it expires, this one works again.
        await eventually(deps.active.is_set, timeout=LIFETIME + 5, what="taking over")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_joining_above_a_live_lower_peer_waits_the_hand_over(
    deps: Deps, cluster: RunningCluster
) -> None:
    await set_peers(deps, {"me": entry(5, lifetime=3600), "low": entry(1, lifetime=3600)})
    started = time.monotonic()
    task = asyncio.create_task(activity.follow(deps, 5))
    try:
        await until_read_twice(cluster)  # it is on top, but the lower peer has not stood down
        assert not deps.active.is_set()
        await eventually(deps.active.is_set, timeout=10, what="working")
        assert time.monotonic() - started >= activity.handover_seconds(LIFETIME) - 0.1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_deleted_peering_object_stands_it_down(deps: Deps) -> None:
    """No object, no entry of its own: its peers cannot see it, so it does not work."""
    await set_peers(deps, {"me": entry(5, lifetime=3600)})
    task = asyncio.create_task(activity.follow(deps, 5))
    try:
        await eventually(deps.active.is_set, timeout=10, what="working")
        await deps.kube.delete(kube.CLUSTER_KOPF_PEERINGS, "warmpool")  # reads now answer 404
        assert await deps.kube.get(kube.CLUSTER_KOPF_PEERINGS, "warmpool") is None
        await eventually(lambda: not deps.active.is_set(), timeout=10, what="standing down")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_requeue_from_stale_facts_leaves_the_job_alone(
    deps: Deps, cluster: RunningCluster
) -> None:
    cluster.create({
        "apiVersion": "warmpool.dev/v1alpha1", "kind": "GenerationJob",
        "metadata": {"name": "j", "namespace": "default"},
        "spec": {"pool": "p", "prompt": "a lighthouse"},
    })  # fmt: skip
    lease = format_time(datetime.now(UTC) + timedelta(minutes=5))
    running = {"phase": "Running", "instance": "i-1", "promptId": "x", "leaseExpiresAt": lease}
    await deps.kube.patch(kube.GENERATIONJOBS, "j", "default", {"status": running},
                          subresource="status")  # fmt: skip
    seen = await deps.kube.get(kube.GENERATIONJOBS, "j", "default")
    assert seen is not None
    stale = facts.job_facts(seen)
    # a peer finishes the job after these facts were read
    await deps.kube.patch(kube.GENERATIONJOBS, "j", "default",
                          {"status": {"phase": "Succeeded"}}, subresource="status")  # fmt: skip
    assert not await outcomes.requeue_orphan(deps.kube, stale, "LeaseExpired")
    after = await deps.kube.get(kube.GENERATIONJOBS, "j", "default")
    assert after is not None and after["status"]["phase"] == "Succeeded"
    # from the current facts the requeue goes through
    assert await outcomes.requeue_orphan(deps.kube, facts.job_facts(after), "LeaseExpired")
    again = await deps.kube.get(kube.GENERATIONJOBS, "j", "default")
    assert again is not None and again["status"]["phase"] == "Queued"


class Vastai:
    """Records the Vast.ai calls a rental makes (none but the label lookup here)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def find_instances_by_label(self, label: str) -> list[object]:
        self.calls.append("find")
        return []

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"a standby called Vast.ai: {name}")


async def test_a_standby_never_rents(deps: Deps) -> None:
    """A pool daemon Kopf is still stopping on a replica that stood down must not rent
    beside the replica that works now: after the label lookup (adopting is safe) it stops."""
    vastai = Vastai()
    deps.opened_vastai = vastai  # type: ignore[assignment]
    deps.active.clear()
    pool = GpuPool.from_body({"metadata": {"name": "p", "namespace": "default", "uid": "u"},
                              "spec": {}})  # fmt: skip
    inst = GpuInstance.from_body({"metadata": {"name": "p-1", "namespace": "default",
                                               "uid": "i"}, "spec": {"pool": "p"}})  # fmt: skip
    await launch.rent(deps, inst, pool, logging.getLogger("test"))  # type: ignore[arg-type]
    assert vastai.calls == ["find"]
