"""The real operator over HTTP acknowledges every GpuPool it sees (issue 2 skeleton)."""

from __future__ import annotations

from typing import Any

from waiting import eventually

from warmpool.sim.cluster import RunningCluster


async def test_operator_sets_observed_generation_and_a_condition(
    cluster: RunningCluster, run_operator: Any
) -> None:
    cluster.create({
        "apiVersion": "warmpool.dev/v1alpha1", "kind": "GpuPool",
        "metadata": {"name": "idle", "namespace": "default"},
        "spec": {"replicas": 0},
    })  # fmt: skip

    def observed() -> dict[str, Any] | None:
        pool = cluster.get("warmpool.dev/v1alpha1", "GpuPool", "idle", namespace="default")
        status = (pool or {}).get("status") or {}
        return (
            status if status.get("observedGeneration") == 1 and status.get("conditions") else None
        )

    async with run_operator():
        status = await eventually(observed, what="pool status")
    types = {c["type"]: c["status"] for c in status["conditions"]}
    assert types["Ready"] == "True"  # nothing wanted, nothing missing
    assert status["replicas"] == 0
    assert status["selector"] == "warmpool.dev/pool=idle"
