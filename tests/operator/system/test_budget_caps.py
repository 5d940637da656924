"""Daily caps end to end: ``budget.onExceeded`` and the operator-wide cap, with the real
operator, the emulated API and the Vast.ai and ComfyUI simulators.

The story: a pool at its daily cap used to stop renting only; its machines kept billing
until midnight. Now (``Release``, the default) idle machines go at once, busy ones after
their job, and nothing rents until the UTC day turns; ``Block`` keeps the old behaviour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jobsys
from jobsys import API, job_body, phase, pool_body, ready
from prometheus_client import REGISTRY
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer

#: Below anything a rental accrues in a second: the cap is reached as soon as it is set.
TINY = 0.000001


def instances(cluster: RunningCluster) -> list[dict[str, Any]]:
    return cluster.list(API, "GpuInstance", "default")


def pool_status(cluster: RunningCluster, name: str) -> dict[str, Any]:
    return dict((cluster.get(API, "GpuPool", name, namespace="default") or {}).get("status") or {})


def condition(cluster: RunningCluster, pool: str, kind: str) -> dict[str, Any]:
    found = [c for c in pool_status(cluster, pool).get("conditions") or [] if c["type"] == kind]
    return found[0] if found else {}


def events(cluster: RunningCluster, reason: str) -> list[dict[str, Any]]:
    return [e for e in cluster.list("v1", "Event", "default") if e.get("reason") == reason]


def live_rentals(sim: VastaiServer) -> int:
    return len(sim.state.rentals)


def creates(sim: VastaiServer) -> int:
    return sum(n for route, n in sim.state.requests.items() if "/asks/" in route)


async def patch_budget(http: httpx.AsyncClient, pool: str, budget: dict[str, Any]) -> int:
    """What `kubectl patch gpupool/<pool> --type merge -p '{"spec":{"budget":...}}'` does."""
    response = await http.patch(
        f"/apis/warmpool.dev/v1alpha1/namespaces/default/gpupools/{pool}",
        json={"spec": {"budget": budget}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    response.raise_for_status()
    return int(response.json()["metadata"]["generation"])


async def test_release_at_the_daily_cap_idle_now_busy_after_its_job(
    cluster: RunningCluster, cluster_http: httpx.AsyncClient, slow_sim: VastaiServer,
    artifacts_url: str, kubeconfig: Path,
) -> None:  # fmt: skip
    cluster.create(pool_body("capped", replicas=2, budget={"maxDailySpend": 100.0}))
    before = REGISTRY.get_sample_value(
        "warmpool_terminations_total",
        {"namespace": "default", "pool": "capped", "reason": "BudgetExceeded"},
    ) or 0.0  # fmt: skip
    async with jobsys.operator(jobsys.settings(artifacts_url, slow_sim.url)):
        await ready(cluster, 2)
        cluster.create(job_body("long", "capped", steps=80))
        await eventually(lambda: phase(cluster, "long") == "Running", what="the job running")
        busy = jobsys.status(cluster, "long")["instance"]
        await patch_budget(cluster_http, "capped", {"maxDailySpend": TINY})
        # The idle one goes at once; the busy one finishes its job first.
        await eventually(lambda: [i["metadata"]["name"] for i in instances(cluster)] == [busy],
                         timeout=20, what="the idle instance released")  # fmt: skip
        assert phase(cluster, "long") == "Running", "the busy instance was released mid-job"
        (left,) = instances(cluster)
        assert (left["status"]["phase"], left["status"]["reason"]) == ("Draining", "BudgetExceeded")
        exceeded = condition(cluster, "capped", "BudgetExceeded")
        assert (exceeded["status"], exceeded["reason"]) == ("True", "DailyCap")
        await eventually(lambda: phase(cluster, "long") == "Succeeded", timeout=60,
                         what="the job finished on the draining instance")  # fmt: skip
        await eventually(lambda: not instances(cluster) and live_rentals(slow_sim) == 0,
                         timeout=20, what="the busy instance released after its job")  # fmt: skip
        # Nothing rents until the day turns: the pool wants its 2 warm and is refused.
        made = creates(slow_sim)
        seen = len(events(cluster, "BudgetBlocked"))
        await eventually(lambda: len(events(cluster, "BudgetBlocked")) > seen, timeout=20,
                         what="a rental refused after the release")  # fmt: skip
        assert creates(slow_sim) == made and not instances(cluster)
    after = REGISTRY.get_sample_value(
        "warmpool_terminations_total",
        {"namespace": "default", "pool": "capped", "reason": "BudgetExceeded"},
    )  # fmt: skip
    assert after is not None and after - before >= 1
    for action in ("release", "drain"):
        cuts = REGISTRY.get_sample_value(
            "warmpool_budget_cuts_total",
            {"namespace": "default", "pool": "capped", "cap": "DailyCap", "action": action},
        )
        assert cuts is not None and cuts >= 1, action


async def test_block_at_the_daily_cap_keeps_running_machines(
    cluster: RunningCluster, cluster_http: httpx.AsyncClient, sim: VastaiServer,
    artifacts_url: str, kubeconfig: Path,
) -> None:  # fmt: skip
    cluster.create(pool_body("blocked", replicas=1, budget={"maxDailySpend": 100.0}))
    async with jobsys.operator(jobsys.settings(artifacts_url, sim.url)):
        await ready(cluster, 1)
        made = creates(sim)
        generation = await patch_budget(
            cluster_http, "blocked", {"maxDailySpend": TINY, "onExceeded": "Block"}
        )
        await eventually(
            lambda: (
                pool_status(cluster, "blocked").get("observedGeneration") == generation
                and condition(cluster, "blocked", "BudgetExceeded").get("status") == "True"
            ),
            what="the cap seen",
        )
        # The reconcile that saw the cap applied its releases before writing the status.
        assert [i["status"]["phase"] for i in instances(cluster)] == ["Ready"]
        assert live_rentals(sim) == 1 and creates(sim) == made


async def test_the_operator_cap_releases_every_pool(
    cluster: RunningCluster, sim: VastaiServer, artifacts_url: str, kubeconfig: Path
) -> None:
    """Two pools without a budget of their own; the operator is redeployed with a daily cap
    below what they spent: both are released, and their pools name the operator's cap."""
    cluster.create(pool_body("first", replicas=1))
    cluster.create(pool_body("second", replicas=1))
    async with jobsys.operator(jobsys.settings(artifacts_url, sim.url)):
        await ready(cluster, 2)
    capped = jobsys.settings(artifacts_url, sim.url, operator_daily_budget_usd=TINY)
    async with jobsys.operator(capped):
        await eventually(lambda: not instances(cluster) and live_rentals(sim) == 0, timeout=20,
                         what="every pool released")  # fmt: skip
        for pool in ("first", "second"):
            await eventually(
                lambda pool=pool: (
                    condition(cluster, pool, "BudgetExceeded").get("reason") == "OperatorDailyCap"
                ),
                what=f"{pool} names the operator's cap",
            )
        spent = REGISTRY.get_sample_value("warmpool_operator_spend_today_dollars")
        assert spent is not None and spent > TINY
