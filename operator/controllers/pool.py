"""The pool controller (plan and apply): one reconcile loop per pool, woken by events or a timer.

The loop gathers facts (the pool's GpuInstances, its queued jobs, spend), asks
:func:`policy.plan_pool` what to do, creates and deletes GpuInstances
accordingly, and writes the pool's status, conditions, events and metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any, cast

import kopf

from warmpool.crds.common import (
    format_time,
    merge_conditions,
    owner_reference,
    parse_duration,
    parse_optional_time,
    pool_selector,
)
from warmpool.crds.generationjob import TERMINAL_PHASES
from warmpool.crds.gpuinstance import GpuInstance
from warmpool.crds.gpupool import GpuPool
from warmpool.operator import errors, metrics
from warmpool.operator.adapters import kube
from warmpool.operator.adapters.status import patch_status
from warmpool.operator.controllers import balance, cache, coldtier, spending
from warmpool.operator.controllers.events import event
from warmpool.operator.controllers.instance import launch, termination
from warmpool.operator.controllers.jobs import facts
from warmpool.operator.controllers.pause import pause
from warmpool.operator.controllers.views import instance_view
from warmpool.operator.decisions import conditions as pool_conditions
from warmpool.operator.decisions import (
    downloads,
    labels,
    policy,
    provisioning,
    scheduler,
    warmup,
)
from warmpool.operator.deps import Deps

PHASES = ("Pending", "Renting", "Provisioning", "Starting", "Ready", "Draining", "Terminating",
          "Failed", "Stopped", "Resuming")  # fmt: skip


#: Shortest time between two reconciles of one pool, seconds.
MIN_GAP = 0.5


async def run(
    stopped: kopf.DaemonStopped, body: kopf.Body, memo: Deps, logger: kopf.Logger
) -> None:
    """Reconcile the pool now, whenever something changes, and every interval."""
    ns, name = body.metadata.namespace or "default", body.metadata.name or ""
    wake = memo.wakeups.setdefault(f"{ns}/{name}", asyncio.Event())
    loop = asyncio.get_running_loop()
    while not stopped:
        wake.clear()
        if body.metadata.get("deletionTimestamp"):
            return
        started = loop.time()
        try:
            await reconcile(memo, dict(body), logger)
        except errors.TemporaryError as exc:
            logger.warning("Reconcile failed, will retry: %s", exc)
        await pause(stopped, until_due(memo, f"{ns}/{name}"), wake)
        # Wake-ups come in bursts (fifty instances changing phase): coalesce them, at
        # most one reconcile per MIN_GAP seconds, so the work stays linear in the pool.
        gap = MIN_GAP - (loop.time() - started)
        if gap > 0 and not stopped:
            await pause(stopped, gap)


def until_due(deps: Deps, key: str) -> float:
    """Seconds to the next reconcile: the interval, or sooner when a cold deadline falls."""
    interval = deps.settings.reconcile_interval
    due = deps.deadlines.get(key)
    if due is None:
        return interval
    return max(MIN_GAP, min(interval, (due - deps.now()).total_seconds() + 0.05))


async def reconcile(deps: Deps, body: dict[str, Any], log: kopf.Logger) -> None:
    """One reconcile of one pool."""
    pool = GpuPool.from_body(body)
    ns, name = pool.metadata.namespace or "default", pool.metadata.name
    now = deps.now()
    bodies = await instances_of(deps, ns, name)
    await propagate_labels(deps, body, bodies)
    views = [instance_view(b) for b in bodies]
    # Jobs placed by this process count even before the instance's status.jobs says so
    # (the job dispatcher's ledger is authoritative): a busy instance is never released.
    if deps.dispatcher is not None:
        views = [dataclasses.replace(v, jobs=max(v.jobs, deps.dispatcher.jobs_on(ns, v.name)))
                 for v in views]  # fmt: skip
    # Instances that could not rent because of the budget hold no rental: they go, and
    # the policy (which sees the budget) decides again. Instances still choosing an offer
    # count at the expected price, so one reconcile cannot out-create the budget.
    expected = launch.cheapest_offer(deps, pool) or pool.spec.offer.max_price_per_hour or 0.0
    blocked = {
        b["metadata"]["name"]
        for b in bodies
        if (b.get("status") or {}).get("reason") == "BudgetBlocked"
        and not (b.get("status") or {}).get("contractId")
    }
    for name_blocked in sorted(blocked):
        await deps.kube.delete(kube.GPUINSTANCES, name_blocked, ns)
    views = [
        dataclasses.replace(v, price_per_hour=expected)
        if v.phase in ("Pending", "Renting") and not v.price_per_hour
        else v
        for v in views
        if v.name not in blocked
    ]
    counts = await count_jobs(deps, ns, name)
    queued, running = counts.queued, counts.running
    spent = coldtier.spend_today(pool, bodies, now)  # storage of stopped instances included
    fleet = await spending.fleet_spend(deps)
    cold_state = await coldtier.before_plan(deps, pool, bodies, views, spent=spent, now=now)
    arrivals = await recent_arrivals(deps, pool) if pool.spec.warmup else []
    days = (
        warmup.record_arrivals(pool.status.arrivals, arrivals, now=now, keep=pool.spec.warmup.days)
        if pool.spec.warmup and pool.spec.warmup.coverage > 0
        else []
    )
    plan = policy.plan_pool(
        spec=cold_state.spec,  # cold.idleTimeout while the tier has room
        instances=cold_state.serving,
        queued_jobs=queued,
        template_hash=pool.spec.template.hash(),
        recent_rentals=pool.status.recent_rentals,
        breaker_until=parse_optional_time(pool.status.breaker_until),
        spend_today=spent,
        now=now,
        rental_price=expected or None,
        recent_arrivals=arrivals,
        queued_seconds=counts.queued_seconds,
        arrival_days=days,
        fleet=fleet,
    )
    spending.apply_caps(plan, pool, views, spent=spent, fleet=fleet)
    if blocked or cold_state.destroyed or plan.rents or plan.drains or plan.releases:
        cache.drop_listing(deps, ns, name)  # the next reconcile sees what this one changed
    if balance.out_of_credit(deps):  # looked again every reconcile while it lasts
        since = now - timedelta(seconds=deps.settings.reconcile_interval)
        await balance.confirm_out_of_credit(deps, since=since)
    plan.conditions += balance.pool_condition(deps) + balance.credit_condition(deps)
    if balance.out_of_credit(deps):
        # Vast.ai stopped the machines and refuses rentals and starts: nothing is asked of it
        # until credit is added (the stopped instances wait, their disks billed).
        plan.rents = []
    else:
        # After the caps: releases the caps asked for may become stops while storage fits.
        await coldtier.after_plan(deps, pool, bodies, plan, cold_state, spent=spent, now=now)
    for rent in plan.rents:
        created = await create_instance(deps, body, reason=rent.reason)
        event("GpuPool", pool.metadata, "Renting",
                     f"{created}: {rent.reason} {rent.message}".strip())  # fmt: skip
    for drain in plan.drains:
        await patch_status(deps.kube, kube.GPUINSTANCES, ns, drain.name,
                                  {"phase": "Draining", "reason": drain.reason,
                                   "message": "finishing its jobs before release"})  # fmt: skip
    for release in plan.releases:
        target = next((b for b in bodies if b["metadata"]["name"] == release.name), None)
        if target is not None:
            await termination.terminate(
                deps,
                GpuInstance.from_body(target),
                reason=release.reason,
                message=release.message or "released by the pool",
            )
    for reason, message in plan.events:
        kopf.info(cast(kopf.Body, body), reason=reason, message=message)
    live = [v for v in views if not v.deleting and v.phase not in ("Terminating", "Failed")]
    cold_counts = coldtier.counts(views)
    serving = [v for v in live if v.phase != "Stopped"]
    ready = [v for v in live if v.phase == "Ready"]
    hourly = sum(v.price_per_hour for v in live)
    models_condition = downloads.pool_condition(
        pool.status.models_unavailable,
        pool.metadata.generation,
        has_downloads=bool(provisioning.downloadable(pool.spec.template.models)),
    )
    conditions = merge_conditions(
        list(body.get("status", {}).get("conditions") or []),
        [(c.type, c.status, c.reason, c.message) for c in plan.conditions]
        + ([models_condition] if models_condition else []),
        now=now,
        generation=pool.metadata.generation,
    )
    status = {
        "observedGeneration": pool.metadata.generation,
        "replicas": len(serving),
        "readyReplicas": len(ready),
        "coldReplicas": sum(cold_counts.values()),
        "selector": pool_selector(name),
        "queuedJobs": queued,
        "runningJobs": running,
        "pricePerHour": round(hourly, 6),
        "spendToday": round(spent, 6),
        "breakerUntil": format_time(plan.breaker_until),
        "conditions": conditions,
    }
    if days:
        status["arrivals"] = [d.model_dump(by_alias=True) for d in days]
    await write_status(deps, ns, name, body.get("status") or {}, status)
    publish_metrics(pool, views, ready=len(ready), hourly=hourly, spent=spent,
                    conditions=conditions)  # fmt: skip
    coldtier.publish(pool, views, cold_state.cold, now=now)


async def instances_of(deps: Deps, namespace: str, pool: str) -> list[dict[str, Any]]:
    """The pool's GpuInstances: the last listing while no change of them was seen since
    (:func:`cache.listing`), else listed now."""
    held = cache.listing(deps, namespace, pool, max_age=deps.settings.status_refresh)
    if held is not None:
        return held.bodies
    mark, at = cache.instance_mark(deps, namespace, pool), deps.monotonic()
    bodies = await deps.kube.list(kube.GPUINSTANCES, namespace, label_selector=pool_selector(pool))
    cache.keep_listing(deps, namespace, pool, cache.Listing(mark, at, bodies))
    return bodies


async def propagate_labels(
    deps: Deps, pool_body: dict[str, Any], bodies: list[dict[str, Any]]
) -> None:
    """Give the pool's instances the pool's labels (:func:`labels.plan_labels`): a pool
    relabelled into another shard takes its instances along, and the shard it left lets
    them go (its ``when=`` filters no longer match them)."""
    meta = pool_body.get("metadata") or {}
    ns, name = meta.get("namespace") or "default", meta.get("name") or ""
    changed = False
    for inst in bodies:
        inst_meta = inst.get("metadata") or {}
        patch = (
            None
            if inst_meta.get("deletionTimestamp")
            else labels.plan_labels(meta.get("labels"), name, inst_meta)
        )
        if patch is None:
            continue
        with contextlib.suppress(errors.KubeNotFoundError):
            await deps.kube.patch(kube.GPUINSTANCES, inst_meta["name"], ns, {"metadata": patch})
        changed = True
    if changed:
        cache.drop_listing(deps, ns, name)


async def write_status(
    deps: Deps, namespace: str, name: str, current: dict[str, Any], status: dict[str, Any]
) -> None:
    """Merge-patch the pool's status, unless nothing changed, or only what moves with the
    clock (:func:`conditions.status_change`) and it was written less than ``status_refresh``
    seconds ago (no write, and no watch event for every replica to handle, for a pool
    where nothing happened)."""
    key = (namespace, name)
    change = pool_conditions.status_change(current, status)
    written = deps.pool_status_at.get(key)
    fresh = written is not None and deps.monotonic() - written < deps.settings.status_refresh
    if change == "none" or (change == "clock" and fresh):
        return
    await patch_status(deps.kube, kube.GPUPOOLS, namespace, name, status)
    deps.pool_status_at[key] = deps.monotonic()


async def recent_arrivals(deps: Deps, pool: GpuPool) -> list[datetime]:
    """When the pool's jobs were submitted, over the warm-up window (predictive warm-up),
    and since the start of yesterday (UTC) for the learned warm-up's hourly counts."""
    assert pool.spec.warmup is not None
    now = deps.now()
    since = now - parse_duration(pool.spec.warmup.window)
    if pool.spec.warmup.coverage > 0:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        since = min(since, midnight - timedelta(days=1))
    ns = pool.metadata.namespace or "default"
    indexed: list[datetime] | None = (
        deps.dispatcher.arrivals_since(ns, pool.metadata.name, since) if deps.dispatcher else None
    )
    if indexed is not None:
        return indexed
    times = []
    for job in await deps.kube.list(kube.GENERATIONJOBS, pool.metadata.namespace):
        if (job.get("spec") or {}).get("pool") != pool.metadata.name:
            continue
        created = parse_optional_time(job["metadata"].get("creationTimestamp"))
        if created is not None and created >= since:
            times.append(created)
    return times


async def count_jobs(deps: Deps, namespace: str, pool: str) -> scheduler.JobCounts:
    """Queued and placed/running jobs of the pool.

    From the job dispatcher's in-memory indexes once they are populated (no LIST of
    every job per reconcile); from the API before that.
    """
    counted: scheduler.JobCounts | None = (
        deps.dispatcher.job_counts(namespace, pool) if deps.dispatcher else None
    )
    if counted is not None:
        return counted
    jobs = await deps.kube.list(kube.GENERATIONJOBS, namespace)
    queued = running = 0
    seconds = 0.0
    for job in jobs:
        if (job.get("spec") or {}).get("pool") != pool:
            continue
        phase = (job.get("status") or {}).get("phase") or "Queued"
        if phase == "Queued":
            queued += 1
            seconds += facts.job_seconds(job.get("spec") or {})
        elif phase not in TERMINAL_PHASES:
            running += 1
    return scheduler.JobCounts(queued, running, seconds)


async def create_instance(deps: Deps, pool_body: dict[str, Any], *, reason: str) -> str:
    """A new GpuInstance owned by the pool; its daemon does the renting."""
    pool = GpuPool.from_body(pool_body)
    ns, name = pool.metadata.namespace or "default", pool.metadata.name
    body = {
        "apiVersion": "warmpool.dev/v1alpha1",
        "kind": "GpuInstance",
        "metadata": {
            "generateName": f"{name}-",
            "namespace": ns,
            # The pool's labels too: a shard's pool selector picks its instances as well
            # (kept in step when the pool is relabelled: propagate_labels).
            "labels": labels.wanted(pool_body.get("metadata", {}).get("labels"), name),
            "annotations": {
                labels.COPIED: json.dumps(
                    sorted(labels.wanted(pool_body.get("metadata", {}).get("labels"), name))
                )
            },
            "ownerReferences": [owner_reference(pool_body)],
        },
        "spec": {"pool": name, "templateHash": pool.spec.template.hash(), "reason": reason},
    }
    created = await deps.kube.create(kube.GPUINSTANCES, body, ns)
    return str(created["metadata"]["name"])


def publish_metrics(
    pool: GpuPool,
    views: list[policy.InstanceView],
    *,
    ready: int,
    hourly: float,
    spent: float,
    conditions: list[dict[str, Any]],
) -> None:
    ns, name = pool.metadata.namespace or "default", pool.metadata.name
    for phase in PHASES:
        metrics.INSTANCES.labels(ns, name, phase).set(sum(1 for v in views if v.phase == phase))
    metrics.POOL_DESIRED.labels(ns, name).set(pool.spec.replicas)
    metrics.POOL_MAX.labels(ns, name).set(pool.spec.ceiling)
    metrics.POOL_READY.labels(ns, name).set(ready)
    metrics.PRICE_PER_HOUR.labels(ns, name).set(hourly)
    metrics.SPEND_TODAY.labels(ns, name).set(spent)
    metrics.POOL_PAUSED.labels(ns, name).set(1 if pool.spec.paused else 0)
    metrics.set_optional(metrics.BUDGET_HOURLY, pool.spec.budget.max_hourly_spend, ns, name)
    metrics.set_optional(metrics.BUDGET_DAILY, pool.spec.budget.max_daily_spend, ns, name)
    state = {c["type"]: c["status"] for c in conditions}
    metrics.BUDGET_EXCEEDED.labels(ns, name).set(1 if state.get("BudgetExceeded") == "True" else 0)
    metrics.POOL_DEGRADED.labels(ns, name).set(1 if state.get("Degraded") == "True" else 0)


def forget(deps: Deps, namespace: str, name: str) -> None:
    """Forget a deleted pool's caches; its GpuInstances go by cascading deletion."""
    key = f"{namespace}/{name}"
    deps.wakeups.pop(key, None)
    deps.offer_cache.pop(key, None)
    deps.deadlines.pop(key, None)
    cache.forget_pool(deps, namespace, name)
    metrics.forget_pool(namespace, name)
