"""The pool's cold tier (``spec.cold``), applied around :func:`policy.plan_pool`.

:func:`before_plan` gives up cold instances (:func:`cold.check_cold`: drifted, past
``maxAge``, above ``cold.replicas``, a start that hung or whose GPU was taken) and, at a
budget cap, the stopped ones first (:func:`cold.budget_cuts`); it returns the instances the
policy plans with — never the ``Stopped`` ones, which serve nothing. :func:`after_plan`
turns the plan's releases into stops (:func:`cold.plan_stops`) and its rentals into starts
(:func:`cold.plan_starts`; :func:`cold.plan_races` starts more beside fresh rentals still
booting), applies them through :mod:`.instance.cold`, and leaves the rest
of the plan to the pool controller. The pool is reconciled again at the next cold
deadline (:func:`cold.next_deadline`).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from warmpool.crds.common import parse_duration, parse_optional_time
from warmpool.crds.gpuinstance import COLD_PHASES, GpuInstance
from warmpool.crds.gpupool import GpuPool, GpuPoolSpec
from warmpool.operator import metrics
from warmpool.operator.controllers import cache
from warmpool.operator.controllers.balance import CREDIT_EXHAUSTED
from warmpool.operator.controllers.events import event
from warmpool.operator.controllers.instance import cold as instance_cold
from warmpool.operator.controllers.instance import liveness, termination
from warmpool.operator.decisions import budget, cold, policy
from warmpool.operator.deps import Deps


@dataclasses.dataclass
class ColdState:
    """What :func:`before_plan` found and did."""

    cold: list[cold.ColdView]
    serving: list[policy.InstanceView]
    """The views :func:`policy.plan_pool` gets: without Stopped and destroyed ones."""
    destroyed: set[str]
    spec: GpuPoolSpec
    """The spec :func:`policy.plan_pool` plans with (:func:`cold.planning_spec`)."""


def cold_view(body: dict[str, Any]) -> cold.ColdView:
    """The decision layer's view of a Stopped or Resuming GpuInstance."""
    inst = GpuInstance.from_body(body)
    s = inst.status
    created = parse_optional_time(inst.metadata.creation_timestamp)
    stopped = parse_optional_time(s.stopped_at) or created or parse_optional_time(s.rented_at)
    assert stopped is not None, "a cold instance has a creation time"
    return cold.ColdView(
        name=inst.metadata.name,
        phase=s.phase,
        stopped_at=stopped,
        template_hash=inst.spec.template_hash,
        machine_id=s.machine_id,
        storage_per_hour=s.storage_per_hour,
        resumed_at=parse_optional_time(s.resumed_at),
        intended_status=s.intended_status,
        cur_state=s.cur_state,
    )


def spend_today(pool: GpuPool, bodies: list[dict[str, Any]], now: datetime) -> float:
    """The pool's spend today (:func:`.instance.cold.spend_today`)."""
    return instance_cold.spend_today(pool, bodies, now)


async def before_plan(
    deps: Deps,
    pool: GpuPool,
    bodies: list[dict[str, Any]],
    views: list[policy.InstanceView],
    *,
    spent: float,
    now: datetime,
) -> ColdState:
    """Give up the cold instances that must go; the views the policy plans with."""
    by_name = {b["metadata"]["name"]: b for b in bodies}
    deleting = {v.name for v in views if v.deleting}
    colds = [
        cold_view(b)
        for b in bodies
        if (b.get("status") or {}).get("phase") in COLD_PHASES
        and b["metadata"]["name"] not in deleting
        and (b.get("status") or {}).get("contractId") is not None
    ]
    template_hash = pool.spec.template.hash()
    # Stopped by Vast.ai for want of credit: not the cold tier's (no surplus or age to cut;
    # the budget still cuts their disks), started again instead of fresh rentals once there
    # is credit.
    by_account = {
        c.name
        for c in colds
        if c.phase == "Stopped"
        and (by_name[c.name].get("status") or {}).get("reason") == CREDIT_EXHAUSTED
    }
    tier = [c for c in colds if c.name not in by_account]
    destroys = cold.check_cold(tier, spec=pool.spec, template_hash=template_hash, now=now)
    gone = {d.name for d in destroys}
    stopped = {c.name for c in colds if c.phase == "Stopped"}  # Resuming ones pay the GPU
    warm_hourly = budget.current_hourly([v for v in views if v.name not in stopped])
    destroys += cold.budget_cuts(
        [c for c in colds if c.name not in gone],
        caps=pool.spec.budget,
        warm_hourly=warm_hourly,
        spend_today=spent,
        now=now,
    )
    ns = pool.metadata.namespace or "default"
    for d in destroys:
        inst = GpuInstance.from_body(by_name[d.name])
        if inst.status.phase == "Resuming":
            metrics.RESUME_FAILURES.labels(ns, pool.metadata.name, d.reason).inc()
        event("GpuInstance", inst.metadata, d.reason, d.message, warning=d.reason != cold.MAX_AGE)
        if d.failed:
            await liveness.record_failure(deps, inst, pool, d.reason, d.message, now)
        await termination.terminate(deps, inst, reason=d.reason, message=d.message)
    destroyed = {d.name for d in destroys}
    # A start given up is replaced like a failed rental: the policy no longer sees it.
    # A started instance's boot is its start (the policy's expected boot: ready - rented).
    resumed = {
        b["metadata"]["name"]: parse_optional_time((b.get("status") or {}).get("resumedAt"))
        for b in bodies
    }
    serving = [
        dataclasses.replace(v, rented_at=resumed[v.name]) if resumed.get(v.name) else v
        for v in views
        if v.name not in destroyed and v.phase != "Stopped"
    ]
    remaining = [c for c in colds if c.name not in destroyed]
    deadline = cold.next_deadline(remaining, spec=pool.spec)
    key = f"{ns}/{pool.metadata.name}"
    if deadline is None:
        deps.deadlines.pop(key, None)
    else:
        deps.deadlines[key] = deadline
    return ColdState(
        cold=remaining,
        serving=serving,
        destroyed=destroyed,
        spec=cold.planning_spec(pool.spec, remaining),
    )


async def after_plan(
    deps: Deps,
    pool: GpuPool,
    bodies: list[dict[str, Any]],
    plan: policy.PoolPlan,
    state: ColdState,
    *,
    spent: float,
    now: datetime,
) -> None:
    """Stops instead of releases, starts instead of rentals; ``plan`` keeps the rest."""
    spec = pool.spec
    if spec.cold.replicas == 0 and not state.cold:
        return
    by_name = {b["metadata"]["name"]: b for b in bodies}
    template_hash = spec.template.hash()
    unhealthy = cold.failed_machines(
        pool.status.host_failures,
        cooldown=parse_duration(spec.failure_policy.host_cooldown),
        now=now,
    )
    storage = {v.name: await _storage(deps, by_name.get(v.name), pool) for v in state.serving
               if v.phase == "Ready"}  # fmt: skip
    one_more = max(storage.values(), default=0.0)
    at_cap = not cold.storage_fits(
        one_more,
        spec.budget,
        current_hourly=budget.current_hourly(state.serving)
        + sum(c.storage_per_hour for c in state.cold),
        spend_today=spent,
        now=now,
    )
    stops, keeps, rest = cold.plan_stops(
        plan.releases, state.serving, state.cold, spec=spec, template_hash=template_hash,
        unhealthy_machines=unhealthy, storage=storage, at_cap=at_cap, now=now,
    )  # fmt: skip
    starts, rents = cold.plan_starts(
        plan.rents, state.cold, template_hash=template_hash, unhealthy_machines=unhealthy,
        excluded=state.destroyed,
    )  # fmt: skip
    starts += cold.plan_races(
        plan, state.serving, state.cold, starts=starts, releases=rest,
        template_hash=template_hash, unhealthy_machines=unhealthy, excluded=state.destroyed,
    )  # fmt: skip
    plan.releases, plan.rents = rest, rents
    if stops or starts:  # a race may start one while the plan rents and releases nothing
        cache.drop_listing(deps, pool.metadata.namespace or "default", pool.metadata.name)
    for stop in stops:
        inst = GpuInstance.from_body(by_name[stop.name])
        await instance_cold.stop(deps, inst, pool, reason=stop.reason, message=stop.message)
    for start in starts:
        inst = GpuInstance.from_body(by_name[start.name])
        await instance_cold.start(deps, inst, pool, reason=start.reason, message=start.message)
    for keep in keeps:
        plan.events.append((keep.reason, f"{keep.name}: {keep.message}"))


async def _storage(deps: Deps, body: dict[str, Any] | None, pool: GpuPool) -> float:
    """$/hour the instance's disk would bill stopped (its rental's, from the listing)."""
    if body is None:
        return 0.0
    s = GpuInstance.from_body(body).status
    if s.storage_per_hour:
        return s.storage_per_hour
    rec = await deps.inventory.by_id(s.contract_id) if s.contract_id is not None else None
    return instance_cold.storage_of(rec, pool)


def counts(views: list[policy.InstanceView]) -> dict[str, int]:
    """Cold instances by phase."""
    return {phase: sum(1 for v in views if v.phase == phase and not v.deleting)
            for phase in COLD_PHASES}  # fmt: skip


def publish(
    pool: GpuPool,
    views: list[policy.InstanceView],
    colds: list[cold.ColdView] | None = None,
    *,
    now: datetime | None = None,
) -> None:
    """The cold tier's gauges (with ``colds`` and ``now``: the longest stopped against
    ``maxAge``, which the alert rules compare)."""
    ns, name = pool.metadata.namespace or "default", pool.metadata.name
    for phase, n in counts(views).items():
        metrics.COLD_INSTANCES.labels(ns, name, phase).set(n)
    storage = sum(v.price_per_hour for v in views if v.phase == "Stopped" and not v.deleting)
    metrics.STORAGE_PER_HOUR.labels(ns, name).set(storage)
    if colds is None or now is None:
        return
    stopped = [now - c.stopped_at for c in colds if c.phase == "Stopped"]
    oldest = max(stopped, default=None)
    metrics.COLD_OLDEST_STOPPED.labels(ns, name).set(oldest.total_seconds() if oldest else 0.0)
    max_age = parse_duration(pool.spec.cold.max_age) if pool.spec.cold.replicas or colds else None
    metrics.COLD_MAX_AGE.labels(ns, name).set(max_age.total_seconds() if max_age else 0.0)
