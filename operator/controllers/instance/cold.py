"""The cold tier on one instance: stop it, start it, follow it while Stopped or Resuming.

The pool controller decides (:mod:`warmpool.operator.decisions.cold`) and calls
:func:`stop` and :func:`start`; the instance's daemon calls :func:`follow` while the phase
is ``Stopped`` or ``Resuming`` (:mod:`warmpool.operator.decisions.resuming` decides).

Prices. A stopped rental bills its disk only (``storage_total_cost``, contract §11), a
running one ``dph_total``. Each stop and start closes what the rental accrued at the old
price into the pool's spend of the day (as the finalizer does at the end) and starts a new
billing period: ``status.billedFrom``, ``status.costBefore``, ``status.pricePerHour``.

Order. The phase is written *before* the Vast.ai call: a daemon that sees the rental
stopped while its phase still says Ready would call it a machine failure. A stop or start
call that fails is repeated by :func:`follow` (the decision's ``restop``/``restart``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import kopf

from warmpool.crds.common import format_time, parse_optional_time
from warmpool.crds.gpuinstance import COLD_PHASES, GpuInstance
from warmpool.crds.gpupool import GpuPool
from warmpool.operator import errors, metrics
from warmpool.operator.adapters import kube
from warmpool.operator.adapters.status import Update, patch_status, update_status
from warmpool.operator.adapters.vastai_models import Instance
from warmpool.operator.controllers import balance, views
from warmpool.operator.controllers.events import event
from warmpool.operator.controllers.instance import liveness, termination
from warmpool.operator.decisions import budget, cold, lifecycle, resuming
from warmpool.operator.deps import Deps


@dataclass(frozen=True)
class Billing:
    """An instance as the spend of the day sees it (``budget.Accruing``): its current
    price since that price applies."""

    rented_at: datetime | None
    price_per_hour: float


def spend_today(pool: GpuPool, bodies: list[dict[str, Any]], now: datetime) -> float:
    """The pool's spend today: each stop or start closed the earlier prices' periods."""
    periods = []
    for body in bodies:
        inst = views.parsed_instance(body)  # parsed once per version
        periods.append(Billing(billed_since(inst), inst.status.price_per_hour))
    return budget.spend_today(pool.status.spend, periods, now=now)


def storage_of(rec: Instance | None, pool: GpuPool) -> float:
    """$/hour of the rental's disk: Vast.ai's ``storage_total_cost``, else its offer's
    ``storage_cost`` × disk GB / 720."""
    if rec is not None and rec.storage_total_cost is not None:
        return max(rec.storage_total_cost, 0.0)
    disk = (rec.disk_space if rec is not None else None) or pool.spec.template.disk_gb
    return cold.storage_per_hour((rec.storage_cost if rec is not None else None) or 0.0, disk)


def billed_since(inst: GpuInstance) -> datetime | None:
    """Since when ``pricePerHour`` applies."""
    return parse_optional_time(inst.status.billed_from or inst.status.rented_at)


async def _rebill(deps: Deps, inst: GpuInstance, price: float, now: datetime) -> dict[str, Any]:
    """Close the current billing period into the pool's spend; the patch of the next one."""
    since = billed_since(inst)
    ns = inst.metadata.namespace or "default"
    hours = max(0.0, (now - since).total_seconds()) / 3600 if since else 0.0
    spent = inst.status.price_per_hour * hours
    if spent > 0:
        metrics.SPEND.labels(ns, inst.spec.pool).inc(spent)
        today = budget.cost_today(inst.status.price_per_hour, since, now=now)

        def mutate(status: dict[str, Any]) -> dict[str, Any]:
            closed = GpuPool.model_validate({"status": status}).status.spend
            return {"spend": budget.close_spend(closed, today, now=now).model_dump(by_alias=True)}

        await update_status(deps.kube, kube.GPUPOOLS, ns, inst.spec.pool, mutate)
    return {
        "billedFrom": format_time(now),
        "costBefore": round(inst.status.cost_before + spent, 6),
        "pricePerHour": round(price, 6),
    }


async def stop(deps: Deps, inst: GpuInstance, pool: GpuPool, *, reason: str, message: str) -> None:
    """Stop the rental (disk kept): phase ``Stopped``, storage price, then the Vast.ai call."""
    assert inst.status.contract_id is not None
    ns, now = inst.metadata.namespace or "default", deps.now()
    rec = await deps.inventory.by_id(inst.status.contract_id)
    storage = storage_of(rec, pool)
    patch = {
        "phase": "Stopped", "reason": reason, "message": message, "stoppedAt": format_time(now),
        "storagePerHour": round(storage, 6), "comfyUrl": "", "jobs": 0, "probeFailures": 0,
        **await _rebill(deps, inst, storage, now),
    }  # fmt: skip
    await patch_status(deps.kube, kube.GPUINSTANCES, ns, inst.metadata.name, patch)
    metrics.COLD_TRANSITIONS.labels(ns, inst.spec.pool, "stop", reason).inc()
    event("GpuInstance", inst.metadata, "Stopped",
          f"{reason}: {message}; disk kept at ${storage:.4f}/h")  # fmt: skip
    await _call(deps, inst, "stop")


async def start(deps: Deps, inst: GpuInstance, pool: GpuPool, *, reason: str, message: str) -> None:
    """Start the stopped rental: phase ``Resuming`` (readiness again, at the address the
    rental reports after the start: the old URL is dropped), then the Vast.ai call."""
    assert inst.status.contract_id is not None
    ns, now = inst.metadata.namespace or "default", deps.now()
    rec = await deps.inventory.by_id(inst.status.contract_id)
    price = (rec.dph_total if rec is not None else None) or (
        inst.spec.offer.price_per_hour if inst.spec.offer else inst.status.storage_per_hour
    )
    patch = {
        "phase": "Resuming", "reason": reason, "message": message, "resumedAt": format_time(now),
        "comfyUrl": "", "readyAt": None, "runningAt": None, "answeringAt": None,
        "modelsAt": None, "probeFailures": 0,
        **await _rebill(deps, inst, price, now),
    }  # fmt: skip
    await patch_status(deps.kube, kube.GPUINSTANCES, ns, inst.metadata.name, patch)
    metrics.COLD_TRANSITIONS.labels(ns, inst.spec.pool, "start", reason).inc()
    event("GpuInstance", inst.metadata, "Resuming", f"{reason}: {message}")
    await _call(deps, inst, "start")


async def stopped_by_account(deps: Deps, inst: GpuInstance, pool: GpuPool) -> bool:
    """A serving instance Vast.ai stopped because the account's credit is gone (F18): it is
    kept ``Stopped`` (reason ``CreditExhausted``, its disk billed), not taken for a failed
    machine and replaced with rentals the account cannot pay for. True when so."""
    assert inst.status.contract_id is not None
    rec = await deps.inventory.by_id(inst.status.contract_id)
    if not lifecycle.stopped_by_vastai(liveness.rental_view(rec, pool.spec.template.comfy_port)):
        return False
    seen = deps.now() - timedelta(seconds=deps.inventory.age or 0.0)  # the listing's time
    if not await balance.confirm_out_of_credit(deps, since=seen):
        return False
    ns, now = inst.metadata.namespace or "default", deps.now()
    storage = storage_of(rec, pool)
    message = "Vast.ai stopped the machine: the account has no credit left; disk kept"
    patch = {
        "phase": "Stopped", "reason": balance.CREDIT_EXHAUSTED, "message": message,
        "stoppedAt": format_time(now), "storagePerHour": round(storage, 6), "comfyUrl": "",
        "probeFailures": 0, **await _rebill(deps, inst, storage, now),
    }  # fmt: skip
    await patch_status(deps.kube, kube.GPUINSTANCES, ns, inst.metadata.name, patch)
    metrics.COLD_TRANSITIONS.labels(ns, inst.spec.pool, "stop", balance.CREDIT_EXHAUSTED).inc()
    event("GpuInstance", inst.metadata, balance.CREDIT_EXHAUSTED, message, warning=True)
    return True


async def _call(deps: Deps, inst: GpuInstance, what: str) -> None:
    """The Vast.ai stop or start; a failure is logged and repeated by :func:`follow`."""
    assert inst.status.contract_id is not None
    try:
        if what == "stop":
            await deps.vastai.stop_instance(inst.status.contract_id)
        else:
            await deps.vastai.start_instance(inst.status.contract_id)
    except errors.VastaiError as exc:
        event("GpuInstance", inst.metadata, "ColdCallFailed",
              f"{what} of contract {inst.status.contract_id} failed, will retry: {exc}",
              warning=True)  # fmt: skip
    deps.inventory.invalidate()


def is_cold(inst: GpuInstance) -> bool:
    return inst.status.phase in COLD_PHASES


async def follow(deps: Deps, inst: GpuInstance, pool: GpuPool, log: kopf.Logger) -> bool:
    """One observation of a cold instance. True: the slow cadence (Stopped, nothing to do)."""
    assert inst.status.contract_id is not None
    ns, name = inst.metadata.namespace or "default", inst.metadata.name
    port = pool.spec.template.comfy_port
    rec = await deps.inventory.by_id(inst.status.contract_id)
    if rec is None and deps.inventory.age is not None and deps.inventory.age > 0:
        deps.inventory.invalidate()
        rec = await deps.inventory.by_id(inst.status.contract_id)
    now = deps.now()
    view = liveness.rental_view(rec, port)
    s = inst.status
    patch: dict[str, Any] = {}
    if rec is not None:
        patch.update(
            actualStatus=rec.actual_status,
            intendedStatus=rec.intended_status,
            curState=rec.cur_state,
            statusMsg=(rec.status_msg or "")[:500] or None,
        )
    probe = None
    if s.phase == "Stopped":
        verdict = resuming.decide_stopped(view, stopped_at=parse_optional_time(s.stopped_at),
                                          now=now)  # fmt: skip
        if verdict.restop:
            await _call(deps, inst, "stop")
    else:
        url = liveness.machine_url(deps, rec, port)
        if url and (refusal := liveness.refused_machine(deps, rec, url)):
            return await _give_up(deps, inst, pool, liveness.ADDRESS_REFUSED, refusal, now, patch)
        if url:
            patch["comfyUrl"] = url
            if not s.running_at:
                patch["runningAt"] = format_time(now)
            probe, stamps = await liveness.run_probe(deps, inst, pool, url)
            patch.update(stamps)
            patch["lastProbe"] = {
                "time": format_time(now),
                "ok": probe.ok,
                "reason": probe.reason,
                "message": probe.message[:300],
            }
        verdict = resuming.decide_resuming(
            view, probe, resumed_at=parse_optional_time(s.resumed_at), now=now,
            canary=pool.spec.readiness.canary.enabled, policy=pool.spec.failure_policy,
        )  # fmt: skip
        if verdict.restart:
            await _call(deps, inst, "start")
    decision = verdict.decision
    if decision.terminate:
        return await _give_up(deps, inst, pool, decision.reason, decision.message, now, patch)
    if decision.reason and (decision.reason, decision.message) != (s.reason, s.message):
        patch.update(reason=decision.reason, message=decision.message)
    patch["cost"] = liveness.accrued(inst, now)
    if decision.phase == "Ready":
        now = deps.now()
        patch.update(phase="Ready", readyAt=format_time(now))
    written = await _write_if(deps, ns, name, s.phase, patch)
    if written and decision.phase == "Ready":
        resumed = parse_optional_time(s.resumed_at)
        if resumed is not None:
            metrics.RESUME_SECONDS.labels(ns, pool.metadata.name).observe(
                (now - resumed).total_seconds()
            )
        event("GpuInstance", inst.metadata, "Resumed",
              f"started again and Ready at {patch.get('comfyUrl', s.comfy_url)}")  # fmt: skip
        log.info("Resumed: Ready again after a start.")
    return s.phase == "Stopped"


async def _write_if(deps: Deps, ns: str, name: str, phase: str, patch: dict[str, Any]) -> bool:
    """Write ``patch`` while the phase is still ``phase`` (the pool may have moved it)."""

    def mutate(status: dict[str, Any]) -> dict[str, Any] | None:
        return patch if status.get("phase") == phase else None

    result = await update_status(deps.kube, kube.GPUINSTANCES, ns, name, mutate)
    return result.outcome is Update.WRITTEN


async def _give_up(
    deps: Deps,
    inst: GpuInstance,
    pool: GpuPool,
    reason: str,
    message: str,
    now: datetime,
    patch: dict[str, Any],
) -> bool:
    """A cold instance that cannot come back: destroyed (the pool rents fresh if needed)."""
    ns = inst.metadata.namespace or "default"
    patch.update(reason=reason, message=message, cost=liveness.accrued(inst, now))
    await _write_if(deps, ns, inst.metadata.name, inst.status.phase, patch)
    event("GpuInstance", inst.metadata, reason, message, warning=True)
    if inst.status.phase == "Resuming":
        metrics.RESUME_FAILURES.labels(ns, pool.metadata.name, reason).inc()
    if reason in ("StatusMessageFailure", liveness.ADDRESS_REFUSED):
        await liveness.record_failure(deps, inst, pool, reason, message, now)
    await termination.terminate(deps, inst, reason=reason, message=message)
    return False
