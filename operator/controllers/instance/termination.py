"""Terminating an instance: mark it Terminating, delete it; the finalizer destroys its
rentals and closes the pool's spend."""

from __future__ import annotations

from typing import Any

import kopf

from warmpool.crds.common import format_time, parse_optional_time, rental_label
from warmpool.crds.gpuinstance import GpuInstance
from warmpool.crds.gpupool import GpuPool
from warmpool.operator import metrics
from warmpool.operator.adapters import kube
from warmpool.operator.adapters.status import patch_status, update_status
from warmpool.operator.controllers.events import event
from warmpool.operator.decisions import budget
from warmpool.operator.deps import Deps


async def destroy(deps: Deps, inst: GpuInstance) -> list[int]:
    """Destroy every rental of this instance: its contract and anything with its label."""
    ns = inst.metadata.namespace or "default"
    contracts: set[int] = set()
    if inst.status.contract_id is not None:
        contracts.add(inst.status.contract_id)
    label = rental_label(ns, inst.spec.pool, inst.metadata.uid or "")
    contracts.update(r.id for r in await deps.vastai.find_instances_by_label(label))
    destroyed = []
    for contract in sorted(contracts):
        if await deps.vastai.destroy_instance(contract):
            destroyed.append(contract)
    deps.inventory.invalidate()
    return destroyed


async def close_spend(deps: Deps, inst: GpuInstance) -> None:
    """Add what the rental cost to the pool's closed spend of the day (since its current
    price applies: a cold tier stop or start closed the earlier periods)."""
    rented = parse_optional_time(inst.status.billed_from or inst.status.rented_at)
    if rented is None or not inst.status.price_per_hour:
        return
    now = deps.now()
    cost = inst.status.price_per_hour * max(0.0, (now - rented).total_seconds()) / 3600.0
    ns = inst.metadata.namespace or "default"
    metrics.SPEND.labels(ns, inst.spec.pool).inc(cost)

    today = budget.cost_today(inst.status.price_per_hour, rented, now=now)

    def mutate(status: dict[str, Any]) -> dict[str, Any]:
        closed = GpuPool.model_validate({"status": status}).status.spend
        return {"spend": budget.close_spend(closed, today, now=now).model_dump(by_alias=True)}

    await update_status(deps.kube, kube.GPUPOOLS, ns, inst.spec.pool, mutate)


async def terminate(deps: Deps, inst: GpuInstance, *, reason: str, message: str) -> None:
    """Mark the instance Terminating and delete it: the finalizer destroys the rental."""
    ns = inst.metadata.namespace or "default"
    if inst.status.phase != "Terminating":
        await patch_status(
            deps.kube,
            kube.GPUINSTANCES,
            ns,
            inst.metadata.name,
            {
                "phase": "Terminating",
                "reason": reason,
                "message": message,
                "terminatedAt": format_time(deps.now()),
            },
        )
        metrics.TERMINATIONS.labels(ns, inst.spec.pool, reason).inc()
        # A money event: the studio copies it into its durable audit trail.
        event("GpuInstance", inst.metadata, "Releasing",
              f"{reason}: {message}; ${inst.status.price_per_hour:.3f}/h")  # fmt: skip
    await deps.kube.delete(kube.GPUINSTANCES, inst.metadata.name, ns)


async def finalize(deps: Deps, inst: GpuInstance, log: kopf.Logger) -> None:
    """The finalizer: destroy the rental (already gone counts as done), close the spend."""
    st = inst.status
    # status.cost is refreshed every status_refresh seconds at most: accrue up to now
    # (as liveness.accrued does: earlier billing periods plus the current price since).
    since = parse_optional_time(st.billed_from or st.rented_at)
    now_cost = (
        st.cost_before + st.price_per_hour * max(0.0, (deps.now() - since).total_seconds()) / 3600
        if since is not None
        else 0.0
    )
    accrued = max(st.cost, now_cost)
    for contract in await destroy(deps, inst):
        log.info("Destroyed rental %s.", contract)
        # A money event: the studio copies it into its durable audit trail.
        event("GpuInstance", inst.metadata, "Destroyed",
              f"contract {contract}: {st.reason or 'deleted'}, "
              f"${st.price_per_hour:.3f}/h, ${accrued:.4f} accrued")  # fmt: skip
    await close_spend(deps, inst)
    key = f"{inst.metadata.namespace or 'default'}/{inst.metadata.name}"
    for cache in (deps.seen_versions, deps.probed_at):
        cache.pop(key, None)
    deps.wake(inst.metadata.namespace or "default", inst.spec.pool)
