"""Two shards of the operator side by side against one emulated API (issue 16).

Each shard is a full embedded operator (Kopf, dispatcher, adapters) with its own memo, in
a thread with its own event loop; its Kubernetes client records every object it writes.
Sharded by a pool label selector, or by namespace (Kopf's namespaced mode), the test shows
that no pool, instance or job is handled by both: each object is written by one shard only,
every job ends, each pool has one rental.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import jobsys
import pytest
from jobsys import API, DONE, job_body, pool_body
from waiting import eventually

from warmpool.operator import main
from warmpool.operator.adapters import kube
from warmpool.operator.controllers import shards
from warmpool.operator.deps import Deps
from warmpool.operator.settings import OperatorSettings
from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer

OBJECT = re.compile(r"/(gpupools|gpuinstances|generationjobs)/([^/?]+)")


class RecordingKube(kube.KubeClient):
    """The operator's own client, remembering which objects it read or wrote."""

    def __init__(self, server: str) -> None:
        super().__init__(server)
        self.touched: set[tuple[str, str]] = set()  # (plural, name)

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if method != "GET" and (m := OBJECT.search(path)):
            self.touched.add((m[1], m[2]))
        return await super()._request(method, path, **kwargs)


@contextlib.asynccontextmanager
async def shard(settings: OperatorSettings, server: str) -> AsyncIterator[RecordingKube]:
    """One shard in a thread of its own with its own event loop (as its own process would
    be: two Kopf operators do not share one loop)."""
    client = RecordingKube(server)
    started = threading.Event()
    failure: list[BaseException] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        deps: Deps = main.make_deps(settings)
        deps.opened_kube = client
        ready = asyncio.Event()
        task = asyncio.create_task(main.run(settings, stop_flag=stop, ready_flag=ready,
                                            health=False, deps=deps))  # fmt: skip
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        started.set()
        await task

    def thread() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:
            failure.append(exc)
        finally:
            started.set()
            loop.close()

    worker = threading.Thread(target=thread, name="shard", daemon=True)
    worker.start()
    try:
        await eventually(started.is_set, what="shard ready")
        assert not failure, failure
        yield client
    finally:
        loop.call_soon_threadsafe(stop.set)
        await eventually(lambda: not worker.is_alive(), timeout=40, what="shard stopped")
        assert not failure, failure


def labelled(body: dict[str, Any], namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    body["metadata"] = {**body["metadata"], "namespace": namespace, "labels": dict(labels)}
    return body


SHARDINGS = {
    # (shard A's settings, shard B's settings, pool → (namespace, labels))
    "by-label": (
        {"pool_selector": "tier=gold"},
        {"pool_selector": "tier in (silver, bronze)"},
        {"gold": ("default", {"tier": "gold"}), "silver": ("default", {"tier": "silver"})},
    ),
    # By namespace (WARMPOOL_NAMESPACE): Kopf's own namespaced mode, one namespace each.
    "by-namespace": (
        {"namespace": "east"},
        {"namespace": "west"},
        {"gold": ("east", {}), "silver": ("west", {})},
    ),
}


@pytest.mark.parametrize("sharding", SHARDINGS)
async def test_two_shards_never_handle_the_same_object(
    sharding: str, cluster: RunningCluster, kubeconfig: Any, sim: VastaiServer,
    artifacts_url: str,
) -> None:  # fmt: skip
    a_settings, b_settings, pools = SHARDINGS[sharding]
    jobs: dict[str, tuple[str, str]] = {}  # job → (namespace, pool)
    for ns in {ns for ns, _ in pools.values()} - {"default"}:
        cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for pool, (ns, labels) in pools.items():
        cluster.create(labelled(pool_body(pool, replicas=1), ns, labels))
        for i in range(4):
            name = f"{pool}-job-{i}"
            cluster.create(labelled(job_body(name, pool), ns, {}))
            jobs[name] = (ns, pool)
    base = {"orphan_grace": 60.0, "watch_timeout": 2.0}
    a_config = jobsys.settings(artifacts_url, sim.url, **base, **a_settings)
    b_config = jobsys.settings(artifacts_url, sim.url, **base, **b_settings)

    def phase(name: str) -> str:
        ns = jobs[name][0]
        found = cluster.get(API, "GenerationJob", name, namespace=ns) or {}
        return str((found.get("status") or {}).get("phase") or "")

    async with shard(a_config, cluster.url) as a, shard(b_config, cluster.url) as b:
        await eventually(lambda: all(phase(n) in DONE for n in jobs), timeout=90,
                         what="every job of both shards done")  # fmt: skip
    assert {n: phase(n) for n in jobs} == dict.fromkeys(jobs, "Succeeded")

    both = a.touched & b.touched
    assert not both, f"objects handled by both shards: {sorted(both)}"
    instances = {i["metadata"]["name"]: i["spec"]["pool"]
                 for ns in {p[0] for p in pools.values()}
                 for i in cluster.list(API, "GpuInstance", ns)}  # fmt: skip
    owner = {"gold": a.touched, "silver": b.touched}
    for pool, mine in owner.items():
        theirs = b.touched if mine is a.touched else a.touched
        assert ("gpupools", pool) in mine and ("gpupools", pool) not in theirs
        for name, (_, of) in jobs.items():
            if of == pool:
                assert ("generationjobs", name) in mine, f"{name} not handled by its shard"
        for name, of in instances.items():
            if of == pool:
                assert ("gpuinstances", name) in mine and ("gpuinstances", name) not in theirs
    # One rental per pool: neither shard rented for the other's pool.
    assert len(sim.state.rentals) == len(pools)


def finalizers(cluster: RunningCluster, kind: str, name: str) -> list[str]:
    found = cluster.get(API, kind, name, namespace="default") or {}
    return list(found.get("metadata", {}).get("finalizers") or [])


async def test_a_relabelled_pool_moves_to_the_other_shard_with_its_instances(
    cluster: RunningCluster, kubeconfig: Any, sim: VastaiServer, artifacts_url: str
) -> None:
    """Regression: a GpuInstance kept the labels it was created with, so a pool relabelled
    into another shard left its instances behind (the old shard kept following them, the
    new one saw none of them). Both shards also shared one finalizer name, and Kopf removes
    its finalizer from objects none of its handlers match: each shard kept removing the
    finalizer the other had added. Now the pool's labels follow it onto its instances, and
    each shard has a finalizer of its own: shard B takes the instance over (its finalizer,
    its writes), A lets go (its finalizer removed by itself), the rental stays."""
    base = {"orphan_grace": 60.0, "watch_timeout": 2.0}
    a_config = jobsys.settings(artifacts_url, sim.url, pool_selector="tier=gold", **base)
    b_config = jobsys.settings(artifacts_url, sim.url, pool_selector="tier=silver", **base)
    a_fin, b_fin = (shards.persistence_names(c.shard_key)[1] for c in (a_config, b_config))
    assert a_fin != b_fin
    cluster.create(labelled(pool_body("mover", replicas=1), "default", {"tier": "gold"}))

    def instances() -> list[dict[str, Any]]:
        return cluster.list(API, "GpuInstance", "default")

    def ready() -> list[dict[str, Any]]:
        return [i for i in instances() if (i.get("status") or {}).get("phase") == "Ready"]

    async with (
        shard(a_config, cluster.url) as a,
        shard(b_config, cluster.url) as b,
        httpx.AsyncClient(base_url=cluster.url) as http,
    ):
        (first,) = await eventually(ready, timeout=60, what="the gold shard's instance Ready")
        name = first["metadata"]["name"]
        assert first["metadata"]["labels"]["tier"] == "gold"
        await eventually(lambda: finalizers(cluster, "GpuInstance", name) == [a_fin],
                         what="only the gold shard's finalizer")  # fmt: skip
        rentals = set(sim.state.rentals)
        response = await http.patch(
            f"/apis/{API}/namespaces/default/gpupools/mover",
            json={"metadata": {"labels": {"tier": "silver"}}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        response.raise_for_status()

        def moved() -> bool:
            inst = cluster.get(API, "GpuInstance", name, namespace="default") or {}
            labels = inst.get("metadata", {}).get("labels") or {}
            return labels.get("tier") == "silver" and finalizers(cluster, "GpuInstance", name) == [
                b_fin
            ]

        await eventually(moved, timeout=30, what="the instance relabelled, B's finalizer only")
        await eventually(lambda: finalizers(cluster, "GpuPool", "mover") == [b_fin],
                         what="the pool carries B's finalizer only")  # fmt: skip
        a.touched.clear()
        b.touched.clear()
        jobs = [f"mover-job-{i}" for i in range(3)]
        for job in jobs:
            cluster.create(job_body(job, "mover"))
        response = await http.patch(
            f"/apis/{API}/namespaces/default/gpupools/mover",
            json={"spec": {"replicas": 2}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        response.raise_for_status()

        def phase(job: str) -> str:
            found = cluster.get(API, "GenerationJob", job, namespace="default") or {}
            return str((found.get("status") or {}).get("phase") or "")

        await eventually(lambda: len(ready()) == 2 and all(phase(j) in DONE for j in jobs),
                         timeout=90, what="a second instance Ready and every job done")  # fmt: skip
    assert [phase(j) for j in jobs] == ["Succeeded"] * 3
    assert rentals <= set(sim.state.rentals), "the moved instance kept its rental"
    assert len(sim.state.rentals) == 2 and not sim.state.destroyed
    second = next(i["metadata"]["name"] for i in instances() if i["metadata"]["name"] != name)
    # After the move, A wrote nothing of the pool, its new instance or its jobs; B did.
    # (A step of A's instance daemon in flight at the move may still finish: the moved
    # instance itself is not asserted on A's side.)
    theirs = {("gpupools", "mover"), ("gpuinstances", second)} | {
        ("generationjobs", j) for j in jobs
    }
    assert not a.touched & theirs, sorted(a.touched & theirs)
    assert ("gpuinstances", second) in b.touched
    assert {("generationjobs", j) for j in jobs} <= b.touched
