"""The pool policy: how many instances to rent, which to release or drain, conditions.

Pure: :func:`plan_pool` takes the pool spec, its instances (:class:`InstanceView`),
queued jobs, recent rental outcomes, the circuit-breaker time, spend today and
``now``, and returns a :class:`PoolPlan` of intents. The handler applies them:
one GpuInstance object per :class:`Rent`, delete the object per :class:`Release`,
set phase Draining per :class:`Drain`, write the conditions and ``breaker_until``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from warmpool.crds.common import parse_duration
from warmpool.crds.gpuinstance import Phase
from warmpool.crds.gpupool import ArrivalDay, GpuPoolSpec, ModelSpec, RentalOutcome
from warmpool.operator.decisions import breaker, budget, conditions, downloads
from warmpool.operator.decisions import warmup as learned

#: Why an instance was rented (``GpuInstance.spec.reason``).
WARM = "Warm"
DEMAND = "Demand"
HEDGE = "Hedge"
REPLACEMENT = "Replacement"

DEFAULT_BOOT = timedelta(minutes=5)
"""Expected rent → Ready time while no instance of the pool has shown its own (a
Vast.ai rental pulls the image and loads the models: minutes)."""

#: Phases before Ready, least progressed first (released first when not needed). A start
#: of a stopped instance (``Resuming``, the cold tier) is Ready within about a minute,
#: sooner than a fresh rental in any phase: it is kept over them.
_PROGRESS: dict[str, int] = {
    "Pending": 0,
    "Renting": 1,
    "Provisioning": 2,
    "Starting": 3,
    "Resuming": 4,
}


@dataclass(frozen=True)
class InstanceView:
    """One GpuInstance of the pool, as the policy needs it.

    Pass every GpuInstance object of the pool, in any phase, including those being
    deleted: they still cost money until their rental is destroyed.
    ``price_per_hour`` of a Pending instance is the price of the offer it chose.
    """

    name: str
    phase: Phase
    created_at: datetime
    rented_at: datetime | None = None
    ready_at: datetime | None = None
    last_job_at: datetime | None = None
    jobs: int = 0
    template_hash: str = ""
    price_per_hour: float = 0.0
    machine_id: int | None = None
    reason: str = WARM
    deleting: bool = False


@dataclass(frozen=True)
class Rent:
    """Create one GpuInstance (one rental). ``count`` is always 1: one Rent per rental."""

    reason: str
    count: int = 1
    message: str = ""


@dataclass(frozen=True)
class Release:
    """Delete the GpuInstance ``name`` (its finalizer destroys the rental)."""

    name: str
    reason: str
    message: str = ""


@dataclass(frozen=True)
class Drain:
    """Stop placing jobs on ``name`` (phase Draining); it is released once idle."""

    name: str
    reason: str
    message: str = ""


@dataclass
class PoolPlan:
    """Everything :func:`plan_pool` decided for one reconcile."""

    rents: list[Rent] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    drains: list[Drain] = field(default_factory=list)
    conditions: list[conditions.SetCondition] = field(default_factory=list)
    breaker_until: datetime | None = None
    """Write to ``status.breakerUntil`` (None clears it)."""
    events: list[tuple[str, str]] = field(default_factory=list)
    """(reason, message) of decisions that are not intents (budget blocks, breaker)."""
    replicas: int = 0
    """Instances that exist and are not being deleted (``status.replicas``)."""
    ready_replicas: int = 0
    """Instances that are Ready (``status.readyReplicas``)."""
    desired: int = 0
    """Instances wanted (rule 3): the cold tier starts stopped ones toward it."""
    allowance: int = 0
    """Active instances the pool may hold: ``desired``, plus ``hedge`` on a cold start."""


def idle_since(instance: InstanceView) -> datetime:
    """When the instance last did something: its last job, becoming ready, or creation."""
    times = [t for t in (instance.created_at, instance.ready_at, instance.last_job_at) if t]
    return max(times)


def expected_boot(
    instances: Sequence[InstanceView],
    *,
    models: Sequence[ModelSpec] = (),
    download_mbps: float | None = None,
) -> timedelta:
    """Median rent → Ready time of the pool's instances that got there (or the default,
    plus the declared model bytes over ``download_mbps``: :func:`downloads.boot_with_models`)."""
    boots = sorted(
        i.ready_at - (i.rented_at or i.created_at) for i in instances if i.ready_at is not None
    )
    observed = boots[len(boots) // 2] if boots else None
    return downloads.boot_with_models(
        observed, default=DEFAULT_BOOT, models=models, download_mbps=download_mbps
    )


def worth_having(ready: int, queued_seconds: float, *, concurrency: int, boot: timedelta) -> int:
    """Instances (Ready or coming) worth having for ``queued_seconds`` of queued work.

    A rental made now serves only after a boot (``boot``, :func:`expected_boot`);
    the ``ready`` instances absorb a boot's worth of work per slot before it could.
    Only the work beyond that is worth more instances: one per boot's worth of it per
    slot, so the queue drains within about two boots instead of the rentals arriving
    after it is empty.
    """
    per_instance = max(boot.total_seconds(), 1.0) * concurrency
    beyond = max(queued_seconds, 0.0) - ready * per_instance
    return ready + (math.ceil(beyond / per_instance) if beyond > 0 else 0)


def plan_pool(
    *,
    spec: GpuPoolSpec,
    instances: Sequence[InstanceView],
    queued_jobs: int,
    template_hash: str,
    recent_rentals: Sequence[RentalOutcome],
    breaker_until: datetime | None,
    spend_today: float,
    now: datetime,
    rental_price: float | None = None,
    recent_arrivals: Sequence[datetime] = (),
    queued_seconds: float | None = None,
    arrival_days: Sequence[ArrivalDay] = (),
    fleet: budget.FleetSpend | None = None,
) -> PoolPlan:
    """What to rent, release and drain now, the conditions, and the breaker time.

    ``rental_price`` is the expected $/hour of one new rental (the best matching
    offer); default ``spec.offer.maxPricePerHour``, or 0 when neither is known.
    ``recent_arrivals`` are the times jobs of the pool were submitted, at least
    ``warmup.window`` back (only ``spec.warmup`` reads them). ``queued_seconds`` is
    the expected run time of the queued jobs, summed (None: unknown, one instance
    per queued job). ``arrival_days`` are the pool's arrivals per hour of day
    (``status.arrivals``, only ``warmup.coverage`` reads them). ``fleet`` is the
    operator-wide daily cap over every pool (None: no such cap).

    Rules, in order:

    1. ``paused``: release every instance, rent nothing.
    2. Failed instances are released (``Failed``); drifted ones (template hash differs)
       are released when idle or drained when running a job (``Drifted``); draining
       ones are released once their jobs are done (``Drained``).
    3. The *active* instances are the others that are Ready or on their way
       (Pending..Starting). ``desired = min(ceiling, max(floor, ceil((queued + jobs
       on active) / concurrencyPerInstance)))``, the demand term capped by the
       instances worth having for ``queued_seconds`` of work (:func:`worth_having`:
       no rental that would boot after the Ready ones drained the queue), where
       ``floor`` is ``replicas``, or
       ``warmup.replicas`` while jobs arrive at ``warmup.minArrivalsPerHour`` or more,
       or during the learned busy hours (predictive warm-up, :func:`warm_floor`). On a
       cold start (no active instance Ready) the pool may hold ``desired + hedge``
       active instances.
    4. Above that allowance, not-ready instances are released first (least progressed,
       most expensive, newest first: ``Surplus``; this releases hedge losers once one
       is Ready). Ready instances above the ceiling are released when idle or drained
       when busy (``ScaledDown``); ready instances above ``desired`` are released after
       ``idleTimeout`` without a job (``Idle``), idle-most-expensive-newest first.
       An instance running a job is never released, except when paused.
    5. Below ``desired``, one :class:`Rent` per missing instance: ``Warm`` up to
       ``floor``, ``Demand`` beyond; on a cold start ``hedge`` extra ``Hedge``
       rentals; up to the number of failed/drifted instances they are labelled
       ``Replacement``. Each passes the breaker (open: none; half-open: one trial when
       no rental started since the breaker expired) and :func:`budget.may_rent`,
       counting every instance of the pool (also those still provisioning).
    """
    plan = PoolPlan()
    failure_policy = spec.failure_policy
    alive = [i for i in instances if not i.deleting and i.phase != "Terminating"]
    plan.replicas = len(alive)
    plan.ready_replicas = sum(1 for i in alive if i.phase == "Ready")
    breaker_state = breaker.assess_breaker(
        recent_rentals,
        breaker_until=breaker_until,
        max_consecutive_failures=failure_policy.max_consecutive_failures,
        now=now,
    )
    plan.breaker_until = breaker_state.until
    hourly = budget.current_hourly(instances)

    if spec.paused:
        plan.releases = [Release(i.name, "Paused", "the pool is paused") for i in alive]
        plan.conditions = conditions.pool_conditions(
            spec,
            ready=plan.ready_replicas,
            renting=len(plan.rents),
            breaker=breaker_state,
            coming=0,
            budget_verdict=None,
            hourly=hourly,
            spend_today=spend_today,
        )
        return plan

    # 2. Failed, drifted, drained.
    replacing = 0
    active: list[InstanceView] = []
    for i in alive:
        if i.phase == "Failed":
            plan.releases.append(Release(i.name, "Failed", "the instance failed"))
            replacing += 1
        elif i.template_hash != template_hash:
            replacing += 1
            if i.jobs == 0:
                plan.releases.append(Release(i.name, "Drifted", _drift(i, template_hash)))
            elif i.phase != "Draining":
                plan.drains.append(Drain(i.name, "Drifted", _drift(i, template_hash)))
        elif i.phase == "Draining":
            if i.jobs == 0:
                plan.releases.append(Release(i.name, "Drained", "drained: no job left"))
        else:
            active.append(i)

    # 3. How many are wanted.
    ready = [i for i in active if i.phase == "Ready"]
    coming = [i for i in active if i.phase != "Ready"]
    concurrency = spec.jobs.concurrency_per_instance
    busy = sum(i.jobs for i in active)
    demand = math.ceil((max(queued_jobs, 0) + busy) / concurrency)
    if queued_seconds is not None:
        boot = expected_boot(
            alive, models=spec.template.models, download_mbps=spec.offer.min_download_mbps
        )
        worth = worth_having(len(ready), queued_seconds, concurrency=concurrency, boot=boot)
        demand = min(demand, worth)
    floor = learned.warm_floor(spec, recent_arrivals, now=now, arrival_days=arrival_days)
    desired = min(spec.ceiling, max(floor, demand))
    cold = not ready
    allowance = desired + (spec.hedge if cold and desired > 0 else 0)
    plan.desired, plan.allowance = desired, allowance

    # 4. Surplus.
    surplus = len(active) - allowance
    by_progress = sorted(
        coming,
        key=lambda i: (_PROGRESS.get(i.phase, 0), -i.price_per_hour, -_ts(i.created_at), i.name),
    )
    for i in by_progress[: max(surplus, 0)]:
        plan.releases.append(
            Release(i.name, "Surplus", f"not ready and not needed ({len(active)} for {allowance})")
        )
        coming.remove(i)
    remaining = len(ready) + len(coming)
    above_ceiling = max(remaining - spec.ceiling, 0)
    ranked = sorted(
        ready,
        key=lambda i: (i.jobs > 0, -i.price_per_hour, -_ts(i.created_at), i.name),
    )
    for i in ranked[:above_ceiling]:
        message = f"{remaining} instances above maxReplicas {spec.ceiling}"
        if i.jobs == 0:
            plan.releases.append(Release(i.name, "ScaledDown", message))
        else:
            plan.drains.append(Drain(i.name, "ScaledDown", message))
    idle_extra = remaining - above_ceiling - desired
    idle_timeout = parse_duration(spec.idle_timeout)
    for i in ranked[above_ceiling:]:
        if idle_extra <= 0:
            break
        if i.jobs == 0 and now - idle_since(i) >= idle_timeout:
            plan.releases.append(
                Release(i.name, "Idle", f"no job for {spec.idle_timeout}, above {desired} wanted")
            )
            idle_extra -= 1

    # 5. Rentals.
    missing = max(desired - len(active), 0)
    warm = min(max(min(floor, desired) - len(active), 0), missing)
    reasons = [WARM] * warm + [DEMAND] * (missing - warm)
    if cold and missing > 0:
        reasons += [HEDGE] * max(min(spec.hedge, allowance - len(active) - missing), 0)
    relabel = min(replacing, warm + (missing - warm))
    reasons = [REPLACEMENT] * relabel + reasons[relabel:]
    verdict: budget.BudgetVerdict | None = None
    if reasons:
        allowed = len(reasons)
        if breaker_state.state == "open":
            allowed = 0
            held_back = f"{len(reasons)} rental(s) held back: {breaker.message(breaker_state)}"
            plan.events.append(("CircuitOpen", held_back))
        elif breaker_state.state == "half-open":
            until = breaker_state.until
            trial = any(until is not None and i.created_at >= until for i in coming)
            allowed = 0 if trial else 1
            plan.events.append(
                ("CircuitHalfOpen", "a trial rental is running" if trial else "trying one rental")
            )
        price = rental_price if rental_price is not None else spec.offer.max_price_per_hour or 0.0
        hours_left = budget.hours_left_today(now)
        planned = hourly
        for reason in reasons[:allowed]:
            verdict = budget.may_rent(
                price,
                spec.budget,
                current_hourly=hourly,
                spend_today=spend_today,
                hours_left_today=hours_left,
                fleet=None
                if fleet is None
                else replace(fleet, current_hourly=fleet.current_hourly + hourly - planned),
            )
            if not verdict.allowed:
                plan.events.append(("BudgetBlocked", verdict.message))
                break
            plan.rents.append(Rent(reason, message=_rent_message(reason, spec, desired)))
            hourly += price
    plan.conditions = conditions.pool_conditions(
        spec,
        ready=plan.ready_replicas,
        renting=len(plan.rents),
        breaker=breaker_state,
        coming=len(coming),
        budget_verdict=verdict,
        hourly=hourly,
        spend_today=spend_today,
    )
    return plan


def _ts(when: datetime) -> float:
    return when.timestamp()


def _drift(instance: InstanceView, template_hash: str) -> str:
    return f"template {instance.template_hash or '-'} differs from the pool's {template_hash}"


def _rent_message(reason: str, spec: GpuPoolSpec, desired: int) -> str:
    if reason == HEDGE:
        return f"cold start: hedging with {spec.hedge} extra candidate(s)"
    if reason == DEMAND:
        return f"jobs are queued: scaling toward {desired} (at most {spec.ceiling})"
    if reason == REPLACEMENT:
        return "replacing a failed or drifted instance"
    return f"keeping {spec.replicas} warm"
