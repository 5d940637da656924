"""Daily caps applied: the pool's ``budget.onExceeded`` and the operator-wide cap.

:func:`fleet_spend` counts what every pool the operator serves spent today, from the
same place each pool's spend is counted (``status.spend`` of the pool plus its live
GpuInstances, :func:`budget.spend_today`), at most once per ``fleet_spend_refresh``
seconds for all pools. :func:`apply_caps` merges :func:`budget.plan_cap` into the pool's
plan: the one place the pool controller asks what a reached cap means.
"""

from __future__ import annotations

from collections import defaultdict

from warmpool.crds.common import POOL_LABEL
from warmpool.crds.gpupool import GpuPool, SpendStatus
from warmpool.operator import metrics
from warmpool.operator.adapters import kube
from warmpool.operator.controllers.views import instance_view
from warmpool.operator.decisions import budget, conditions, policy
from warmpool.operator.deps import Deps


async def fleet_spend(deps: Deps) -> budget.FleetSpend | None:
    """Every served pool's spend today and $/hour, against the operator's daily cap (None
    when no such cap is set). One count serves all pools for ``fleet_spend_refresh`` s."""
    settings = deps.settings
    cap = settings.operator_daily_budget_usd
    if cap is None:
        return None
    async with deps.fleet_lock:
        cached = deps.fleet_spend
        if cached is not None and deps.monotonic() - cached[0] < settings.fleet_spend_refresh:
            return cached[1]
        spent, hourly = await count_fleet(deps)
        figure = budget.FleetSpend(
            daily_cap=cap,
            spend_today=spent,
            current_hourly=hourly,
            on_exceeded=settings.operator_budget_on_exceeded,
        )
        deps.fleet_spend = (deps.monotonic(), figure)
    metrics.OPERATOR_SPEND_TODAY.set(spent)
    metrics.OPERATOR_BUDGET_DAILY.set(cap)
    metrics.OPERATOR_BUDGET_EXCEEDED.set(1 if spent >= cap else 0)
    return figure


async def count_fleet(deps: Deps) -> tuple[float, float]:
    """(dollars spent today, $/hour now) of every pool in the served namespaces."""
    now = deps.now()
    pools, bodies = [], []
    for namespace in deps.settings.list_namespaces:
        pools += await deps.kube.list(kube.GPUPOOLS, namespace)
        bodies += await deps.kube.list(kube.GPUINSTANCES, namespace)
    by_pool: dict[tuple[str, str], list[policy.InstanceView]] = defaultdict(list)
    for body in bodies:
        meta = body.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(POOL_LABEL)
        if owner:
            by_pool[(meta.get("namespace") or "default", owner)].append(instance_view(body))
    spent = hourly = 0.0
    for body in pools:
        pool = GpuPool.from_body(body)
        views = by_pool.pop((pool.metadata.namespace or "default", pool.metadata.name), [])
        spent += budget.spend_today(pool.status.spend, views, now=now)
        hourly += budget.current_hourly(views)
    for views in by_pool.values():  # instances whose pool is gone still bill until destroyed
        spent += budget.spend_today(SpendStatus(), views, now=now)
        hourly += budget.current_hourly(views)
    return spent, hourly


def apply_caps(
    plan: policy.PoolPlan,
    pool: GpuPool,
    views: list[policy.InstanceView],
    *,
    spent: float,
    fleet: budget.FleetSpend | None,
) -> budget.CapPlan | None:
    """Merge :func:`budget.plan_cap` into ``plan``: its releases and drains (no instance
    twice), the ``BudgetExceeded`` condition naming the cap reached, and one event."""
    capped = budget.plan_cap(views, pool.spec.budget, spend_today=spent, fleet=fleet)
    if capped is None:
        return None
    ns, name = pool.metadata.namespace or "default", pool.metadata.name
    released = {r.name for r in plan.releases}
    drained = {d.name for d in plan.drains}
    for cut in capped.cuts:
        if cut.name in released:
            continue
        if cut.drain:
            if cut.name not in drained:
                plan.drains.append(policy.Drain(cut.name, cut.reason, cut.message))
                metrics.BUDGET_CUTS.labels(ns, name, capped.verdict.reason, "drain").inc()
        else:
            plan.drains = [d for d in plan.drains if d.name != cut.name]
            plan.releases.append(policy.Release(cut.name, cut.reason, cut.message))
            metrics.BUDGET_CUTS.labels(ns, name, capped.verdict.reason, "release").inc()
    if capped.cuts:
        plan.events.append((budget.BUDGET_EXCEEDED, f"{len(capped.cuts)} instance(s) released "
                            f"or draining: {capped.verdict.message}"))  # fmt: skip
    exceeded = conditions.SetCondition(
        "BudgetExceeded", "True", capped.verdict.reason, capped.verdict.message
    )
    plan.conditions = [c for c in plan.conditions if c.type != "BudgetExceeded"] + [exceeded]
    return capped
