"""Pools end to end: the real operator, the emulated API, the Vast.ai and ComfyUI simulators."""

from __future__ import annotations

from typing import Any

import httpx
from factories import pool_body
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer

API = "warmpool.dev/v1alpha1"


def rentals(sim: VastaiServer, prefix: str = "warmpool.default.") -> list[Any]:
    return [r for r in sim.state.rentals.values() if (r.label or "").startswith(prefix)]


def pool_status(cluster: RunningCluster, name: str) -> dict[str, Any]:
    pool = cluster.get(API, "GpuPool", name, namespace="default") or {}
    return dict(pool.get("status") or {})


async def scale(http: httpx.AsyncClient, name: str, replicas: int) -> None:
    """What `kubectl scale gpupool/<name> --replicas=N` does: patch the scale subresource."""
    response = await http.patch(
        f"/apis/warmpool.dev/v1alpha1/namespaces/default/gpupools/{name}/scale",
        json={"spec": {"replicas": replicas}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    response.raise_for_status()


async def test_scale_zero_two_one_zero(
    cluster: RunningCluster,
    cluster_http: httpx.AsyncClient,
    vastai_sim: VastaiServer,
    run_operator: Any,
) -> None:
    cluster.create(pool_body("sdxl"))
    async with run_operator(vastai_url=vastai_sim.url):
        await scale(cluster_http, "sdxl", 2)
        await eventually(lambda: pool_status(cluster, "sdxl").get("readyReplicas") == 2,
                         timeout=60, what="two ready instances")  # fmt: skip
        assert len(rentals(vastai_sim)) == 2
        await scale(cluster_http, "sdxl", 1)
        await eventually(lambda: len(rentals(vastai_sim)) == 1, timeout=30, what="one rental")
        await eventually(lambda: pool_status(cluster, "sdxl").get("readyReplicas") == 1,
                         timeout=30, what="one ready")  # fmt: skip
        await scale(cluster_http, "sdxl", 0)
        await eventually(lambda: not rentals(vastai_sim), timeout=30, what="no rentals")
        await eventually(lambda: not cluster.list(API, "GpuInstance", "default"),
                         timeout=30, what="no GpuInstances")  # fmt: skip
    assert pool_status(cluster, "sdxl")["replicas"] == 0
