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
import pytest
from jobsys import API, pool_body, ready
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer


def instances(cluster: RunningCluster) -> list[dict[str, Any]]:
    return cluster.list(API, "GpuInstance", "default")


def conditions(cluster: RunningCluster, pool: str) -> dict[str, dict[str, Any]]:
    body = cluster.get(API, "GpuPool", pool, namespace="default") or {}
    return {c["type"]: c for c in (body.get("status") or {}).get("conditions") or []}


def creates(sim: VastaiServer) -> int:
    return sum(n for route, n in sim.state.requests.items() if "/asks/" in route)


@pytest.mark.xfail(
    strict=True,
    reason="the operator takes Vast.ai's credit stops for machine failures: MachineOffline, "
    "Failed, destroyed and re-rented (refused: insufficient credit, the instance daemon "
    "retrying every 60 s); the fix belongs to the instance and pool controllers",
)
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
        assert creates(sim) == made, "rentals attempted with no credit"
        assert len(sim.state.rentals) == 2, "stopped machines destroyed"
        assert not [e for e in cluster.list("v1", "Event", "default")
                    if e.get("reason") == "MachineOffline"]  # fmt: skip
        assert any("credit" in c["message"].lower() for c in conditions(cluster, "broke").values())
