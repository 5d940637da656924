"""The Vast.ai account runs out of credit (contract §7.2, F18), end to end: the real
operator, the emulated API and the Vast.ai simulator, which stops every running instance
when the credit reaches zero (their disks still bill).

The story: a pool's machines run until the account's credit is gone. Vast.ai stops them
all at once; the operator must not take that for a burst of machine failures and rent
replacements that the account cannot pay for (each refused, interval after interval)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jobsys
from jobsys import API, pool_body, ready
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer


def instances(cluster: RunningCluster) -> list[dict[str, Any]]:
    return cluster.list(API, "GpuInstance", "default")


def conditions(cluster: RunningCluster, pool: str) -> dict[str, dict[str, Any]]:
    body = cluster.get(API, "GpuPool", pool, namespace="default") or {}
    return {c["type"]: c for c in (body.get("status") or {}).get("conditions") or []}


def credit_reason(cluster: RunningCluster) -> str | None:
    return conditions(cluster, "broke").get("AccountCredit", {}).get("reason")


async def listings_later(sim: VastaiServer, count: int = 3) -> None:
    """Until the operator listed its rentals ``count`` more times (reconciles that planned
    with what the listing showed): a window measured in the operator's own work."""

    def listings() -> int:
        return sum(n for route, n in sim.state.requests.items()
                   if route == "GET /api/v0/instances/")  # fmt: skip

    target = listings() + count
    await eventually(lambda: listings() >= target, timeout=60, what=f"{count} more listings")


def creates(sim: VastaiServer) -> int:
    return sum(n for route, n in sim.state.requests.items() if "/asks/" in route)


async def test_out_of_credit_stops_the_machines_without_a_rental_storm(
    cluster: RunningCluster, sim: VastaiServer, artifacts_url: str, kubeconfig: Path
) -> None:
    cluster.create(pool_body("broke", replicas=2))
    async with jobsys.operator(jobsys.settings(artifacts_url, sim.url)):
        await ready(cluster, 2)
        made = creates(sim)
        sim.state.balance = sim.state.spent()  # the credit is gone
        await eventually(lambda: sim.state.credit_stops == 2, timeout=20,
                         what="Vast.ai stopped both machines")  # fmt: skip
        await eventually(
            lambda: all(i.get("status", {}).get("phase") != "Ready" for i in instances(cluster)),
            timeout=30, what="the operator saw them stopped",
        )  # fmt: skip
        # What the operator should do: take the stops as the account's, not the machines'.
        # It keeps the stopped instances (their disks hold the models), rents nothing while
        # the credit is gone, and says why on the pool.
        phases = [(i.get("status") or {}).get("reason") for i in instances(cluster)]
        assert phases == ["CreditExhausted"] * 2, phases
        await eventually(lambda: credit_reason(cluster) == "CreditExhausted", timeout=30,
                         what="the pool says the credit is gone")  # fmt: skip
        await listings_later(sim)  # reconciles that planned with both machines stopped
        assert creates(sim) == made, "rentals attempted with no credit"
        assert len(sim.state.rentals) == 2, "stopped machines destroyed"
        assert not [e for e in cluster.list("v1", "Event", "default")
                    if e.get("reason") == "MachineOffline"]  # fmt: skip
        assert "credit" in conditions(cluster, "broke")["AccountCredit"]["message"]
        # Credit added: the same machines start again (their disks kept), still no rental.
        sim.state.balance += 100.0
        await ready(cluster, 2)
        assert credit_reason(cluster) == "CreditAvailable"
        assert creates(sim) == made, "rented instead of starting the stopped machines"
        assert len(sim.state.rentals) == 2
