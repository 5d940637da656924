"""Spend reconciled with the Vast.ai account, end to end: the real operator, the emulated
API and the Vast.ai simulator, whose account credit falls as its rentals bill.

The story: someone rents a machine by hand on the operator's Vast.ai account. The operator
counts none of it, so its budgets are blind to it; the account's credit tells: the drift
turns every pool's ``SpendReconciled`` False and the drift metric past its threshold.
"""

from __future__ import annotations

from typing import Any

import httpx
from factories import pool_body
from prometheus_client import REGISTRY
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer

API = "warmpool.dev/v1alpha1"
API_KEY = "sim-key-0123456789"


def condition(cluster: RunningCluster, pool: str, kind: str) -> dict[str, Any]:
    body = cluster.get(API, "GpuPool", pool, namespace="default") or {}
    found = [c for c in (body.get("status") or {}).get("conditions") or [] if c["type"] == kind]
    return found[0] if found else {}


async def rent_by_hand(sim: VastaiServer) -> int:
    """What `vastai create instance` does, outside the operator (no warmpool label)."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=sim.url, headers=headers) as http:
        found = await http.post("/api/v0/bundles/", json={"order": [["dph_total", "desc"]]})
        offer = found.json()["offers"][0]
        created = await http.put(
            f"/api/v0/asks/{offer['id']}/",
            json={"image": "pytorch/pytorch", "disk": 20, "runtype": "args", "label": "mine"},
        )
        assert created.json()["success"] is True, created.text
        return int(created.json()["new_contract"])


async def test_a_rental_the_operator_does_not_know_shows_as_drift(
    cluster: RunningCluster, vastai_sim: VastaiServer, run_operator: Any
) -> None:
    cluster.create(pool_body("watched", replicas=0))
    async with run_operator(
        vastai_url=vastai_sim.url,
        balance_check_interval=0.3,
        balance_drift_threshold_usd=0.05,
    ):
        await eventually(
            lambda: condition(cluster, "watched", "SpendReconciled").get("status") == "True",
            timeout=20,
            what="reconciled while nothing bills",
        )
        await rent_by_hand(vastai_sim)
        reconciled = await eventually(
            lambda: (
                (c := condition(cluster, "watched", "SpendReconciled")).get("status") == "False"
                and c
            ),
            timeout=30,
            what="the drift seen on the pool",
        )
        assert reconciled["reason"] == "SpendDrift"
        assert "the operator counted $0.00" in reconciled["message"]
        drift = REGISTRY.get_sample_value("warmpool_vastai_balance_drift_dollars")
        threshold = REGISTRY.get_sample_value("warmpool_vastai_balance_drift_threshold_dollars")
        assert drift is not None and threshold == 0.05 and drift > threshold
        credit = REGISTRY.get_sample_value("warmpool_vastai_credit_dollars")
        assert credit is not None and credit < 1000
