"""The real Kopf runs against the emulated API: discovery, list-then-watch, patches, finalizers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import kopf
import pytest

from warmpool.sim.cluster import RunningCluster

GV = "warmpool.dev/v1alpha1"


@pytest.fixture
def registry(cluster: RunningCluster) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=cluster.url)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = "warmpool.dev/test"
        # Kopf's stop waits for open watch streams to end (at most ~5 s): keep them short.
        settings.watching.server_timeout = 1

    @kopf.on.create("warmpool.dev", "v1alpha1", "gpupools", registry=registry, id="seen")
    def seen(body: kopf.Body, meta: Any, patch: kopf.Patch, **_: Any) -> None:
        patch.status["observedGeneration"] = meta["generation"]
        kopf.info(body, reason="Seen", message="the pool was seen")

    @kopf.on.delete("warmpool.dev", "v1alpha1", "gpupools", registry=registry, id="bye")
    def bye(**_: Any) -> None:
        pass

    return registry


async def test_kopf_handles_create_and_delete(
    cluster: RunningCluster, registry: kopf.OperatorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    cluster.create(
        {
            "apiVersion": GV,
            "kind": "GpuPool",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"replicas": 1},
        }
    )
    stop = asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(registry=registry, clusterwide=True, standalone=True, stop_flag=stop)
    )
    try:

        def observed() -> bool:
            pool = cluster.get(GV, "GpuPool", "p", "default")
            return bool(pool and (pool.get("status") or {}).get("observedGeneration") == 1)

        await cluster.wait_for(observed)
        pool = cluster.get(GV, "GpuPool", "p", "default")
        assert pool is not None
        assert "warmpool.dev/test" in pool["metadata"]["finalizers"]

        deleted = cluster.store.delete(cluster.resource(GV, "GpuPool"), pool)
        assert deleted["metadata"]["deletionTimestamp"]
        await cluster.wait_for(lambda: cluster.get(GV, "GpuPool", "p", "default") is None)
        await cluster.wait_for(
            lambda: any(
                e["involvedObject"]["name"] == "p" and e["reason"] == "Seen"
                for e in cluster.list("v1", "Event", "default")
            )
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def pool(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": GV, "kind": "GpuPool", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1}}  # fmt: skip


async def test_kopf_namespaced_mode_serves_only_its_namespaces(
    cluster: RunningCluster, registry: kopf.OperatorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: KMock's path parser answered ``GET /api/v1/namespaces`` (which Kopf's
    namespaced mode lists and watches) with a 500, so namespace shards could not run here."""
    for ns in ("east", "west"):
        cluster.create_namespace(ns)
        cluster.create(pool("p", ns))
    stop = asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(registry=registry, namespaces=["east"], standalone=True, stop_flag=stop)
    )

    def observed(ns: str) -> bool:
        pool = cluster.get(GV, "GpuPool", "p", ns) or {}
        return (pool.get("status") or {}).get("observedGeneration") == 1

    try:
        await cluster.wait_for(lambda: observed("east"))
        # The other namespace's pool is never handled: Kopf watched only "east" (one more
        # change in "east" is handled after the west pool's creation, so it was not late).
        cluster.create(pool("q", "east"))
        await cluster.wait_for(
            lambda: (
                ((cluster.get(GV, "GpuPool", "q", "east") or {}).get("status") or {}).get(
                    "observedGeneration"
                )
                == 1
            )
        )
        assert not observed("west")
        assert "finalizers" not in (cluster.get(GV, "GpuPool", "p", "west") or {})["metadata"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_namespace_collection_lists_and_watches(cluster: RunningCluster) -> None:
    cluster.create_namespace("east")
    async with httpx.AsyncClient(base_url=cluster.url) as http:
        listed = (await http.get("/api/v1/namespaces")).json()
        assert "east" in {n["metadata"]["name"] for n in listed["items"]}
        one = await http.get("/api/v1/namespaces/east")
        assert one.status_code == 200 and one.json()["metadata"]["name"] == "east"
        params = {"watch": "true", "timeoutSeconds": "1"}
        async with http.stream("GET", "/api/v1/namespaces", params=params) as response:
            assert response.status_code == 200
            lines = [line async for line in response.aiter_lines() if line]
    assert any('"east"' in line for line in lines)
