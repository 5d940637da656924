"""The pool policy: how many instances to rent, which to release or drain, conditions.

Pure: :func:`plan_pool` takes the pool spec, its instances (:class:`InstanceView`),
queued jobs, recent rental outcomes, the circuit-breaker time, spend today and
``now``, and returns a :class:`PoolPlan` of intents. The handler applies them:
one GpuInstance object per :class:`Rent`, delete the object per :class:`Release`,
set phase Draining per :class:`Drain`, write the conditions and ``breaker_until``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from warmpool.crds.common import ConditionStatus, format_time, parse_duration, parse_time
from warmpool.crds.gpuinstance import Phase
from warmpool.crds.gpupool import ArrivalDay, GpuPoolSpec, RentalOutcome
from warmpool.operator.decisions import budget
from warmpool.operator.decisions import warmup as learned

#: Why an instance was rented (``GpuInstance.spec.reason``).
WARM = "Warm"
DEMAND = "Demand"
HEDGE = "Hedge"
REPLACEMENT = "Replacement"

#: Circuit breaker: the last ``BREAKER_WINDOW`` outcomes younger than ``BREAKER_WINDOW_AGE``
#: trip it when at least half failed (and at least ``BREAKER_MIN_OUTCOMES`` are known).
BREAKER_WINDOW = 6
BREAKER_WINDOW_AGE = timedelta(hours=1)
BREAKER_MIN_OUTCOMES = 2
#: Backoff while the breaker is open: 1m, 2m, 4m, ... per consecutive failure, at most 30m.
BACKOFF_INITIAL = timedelta(minutes=1)
BACKOFF_MAX = timedelta(minutes=30)
#: Outcomes older than this are forgotten by :func:`record_outcome`.
OUTCOME_MAX_AGE = timedelta(days=1)

DEFAULT_BOOT = timedelta(minutes=5)
"""Expected rent → Ready time while no instance of the pool has shown its own (a
Vast.ai rental pulls the image and loads the models: minutes)."""

#: Phases before Ready, least progressed first (released first when not needed).
_PROGRESS: dict[str, int] = {"Pending": 0, "Renting": 1, "Provisioning": 2, "Starting": 3}


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


@dataclass(frozen=True)
class SetCondition:
    """A pool condition to write (the handler keeps ``lastTransitionTime``)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str


@dataclass
class PoolPlan:
    """Everything :func:`plan_pool` decided for one reconcile."""

    rents: list[Rent] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    drains: list[Drain] = field(default_factory=list)
    conditions: list[SetCondition] = field(default_factory=list)
    breaker_until: datetime | None = None
    """Write to ``status.breakerUntil`` (None clears it)."""
    events: list[tuple[str, str]] = field(default_factory=list)
    """(reason, message) of decisions that are not intents (budget blocks, breaker)."""
    replicas: int = 0
    """Instances that exist and are not being deleted (``status.replicas``)."""
    ready_replicas: int = 0
    """Instances that are Ready (``status.readyReplicas``)."""


def record_outcome(
    recent: Sequence[RentalOutcome], outcome: RentalOutcome, *, now: datetime, keep: int = 20
) -> list[RentalOutcome]:
    """The recent outcomes plus ``outcome``, oldest first, at most ``keep``, none older than a day.

    An earlier outcome of the same instance is replaced, so recording twice (a handler
    that runs again) does not count twice.
    """
    kept = [
        o
        for o in recent
        if o.instance != outcome.instance and now - parse_time(o.time) <= OUTCOME_MAX_AGE
    ]
    kept.append(outcome)
    kept.sort(key=lambda o: parse_time(o.time))
    return kept[-keep:] if keep > 0 else []


def breaker_backoff(consecutive_failures: int) -> timedelta:
    """How long the breaker stays open: 1m doubling per consecutive failure, at most 30m."""
    doublings = min(max(consecutive_failures, 1) - 1, 16)
    return min(BACKOFF_MAX, BACKOFF_INITIAL * (1 << doublings))


@dataclass(frozen=True)
class Breaker:
    """The circuit breaker's state, as :func:`assess_breaker` reads it."""

    state: Literal["closed", "open", "half-open"]
    until: datetime | None
    """What to store in ``status.breakerUntil`` (None when closed)."""
    consecutive: int
    """Failed outcomes since the last success."""
    failed: int
    """Failures in the window."""
    window: int
    """Outcomes in the window."""
    reasons: str
    """Failure reasons in the window, e.g. ``LoadingTimeout×2, StatusMessageFailure×1``."""
    trip: str
    """``ConsecutiveFailures`` or ``RecentFailures`` when tripped, else ""."""


def assess_breaker(
    recent: Sequence[RentalOutcome],
    *,
    breaker_until: datetime | None,
    max_consecutive_failures: int,
    now: datetime,
) -> Breaker:
    """Read the breaker from the recent outcomes and the stored ``breaker_until``.

    - It trips when the newest outcome is a failure and either
      ``max_consecutive_failures`` failed in a row, or at least half of the window
      (the last 6 outcomes within an hour, at least 2) failed. A success closes it.
    - Tripped with no ``breaker_until``, or with a failure at or after it (the
      half-open trial failed): open until ``now + breaker_backoff(consecutive)``.
    - Tripped before ``breaker_until``: open. At or after it: half-open (one trial).
    """
    dated = sorted(((parse_time(o.time), o) for o in recent), key=lambda pair: pair[0])
    window = [o for t, o in dated if now - t <= BREAKER_WINDOW_AGE][-BREAKER_WINDOW:]
    failures = [o for o in window if not o.ok]
    consecutive = 0
    for _, o in reversed(dated):
        if o.ok:
            break
        consecutive += 1
    counts = Counter(o.reason or "Unknown" for o in failures)
    reasons = ", ".join(
        f"{r}×{n}" for r, n in sorted(counts.items(), key=lambda rn: (-rn[1], rn[0]))
    )
    trip = ""
    if dated and not dated[-1][1].ok:
        if consecutive >= max_consecutive_failures:
            trip = "ConsecutiveFailures"
        elif len(window) >= BREAKER_MIN_OUTCOMES and 2 * len(failures) >= len(window):
            trip = "RecentFailures"

    def breaker(state: Literal["closed", "open", "half-open"], until: datetime | None) -> Breaker:
        return Breaker(
            state=state,
            until=until,
            consecutive=consecutive,
            failed=len(failures),
            window=len(window),
            reasons=reasons,
            trip=trip,
        )

    if not trip:
        return breaker("closed", None)
    newest = dated[-1][0]
    if breaker_until is None or newest >= breaker_until:
        return breaker("open", now + breaker_backoff(consecutive))
    if now < breaker_until:
        return breaker("open", breaker_until)
    return breaker("half-open", breaker_until)


def idle_since(instance: InstanceView) -> datetime:
    """When the instance last did something: its last job, becoming ready, or creation."""
    times = [t for t in (instance.created_at, instance.ready_at, instance.last_job_at) if t]
    return max(times)


def arrival_rate(arrivals: Sequence[datetime], *, window: timedelta, now: datetime) -> float:
    """Jobs per hour that arrived in ``(now - window, now]``."""
    hours = window.total_seconds() / 3600.0
    if hours <= 0:
        return 0.0
    return sum(1 for t in arrivals if now - window < t <= now) / hours


def warm_floor(
    spec: GpuPoolSpec,
    recent_arrivals: Sequence[datetime],
    *,
    now: datetime,
    arrival_days: Sequence[ArrivalDay] = (),
) -> int:
    """Instances to keep ready without queued jobs: ``replicas``, or ``warmup.replicas``
    while at least ``warmup.minArrivalsPerHour`` jobs arrived per hour over its window —
    or, with ``warmup.coverage``, a whole day of ``arrival_days`` known and a job in the
    last 24 hours, during the learned busy hours instead (:mod:`.warmup`)."""
    warmup = spec.warmup
    if warmup is None or warmup.replicas <= spec.replicas:
        return spec.replicas
    if warmup.coverage > 0 and learned.arrived_since(arrival_days, now - timedelta(days=1)):
        busy = learned.busy_hours(arrival_days, coverage=warmup.coverage, today=now.date())
        if busy is not None:
            lead = parse_duration(warmup.lead)
            warm = learned.learned_warm(busy, now=now, lead=lead)
            return warmup.replicas if warm else spec.replicas
    rate = arrival_rate(recent_arrivals, window=parse_duration(warmup.window), now=now)
    return warmup.replicas if rate >= warmup.min_arrivals_per_hour else spec.replicas


def expected_boot(instances: Sequence[InstanceView]) -> timedelta:
    """Median rent → Ready time of the pool's instances that got there (or the default)."""
    boots = sorted(
        i.ready_at - (i.rented_at or i.created_at) for i in instances if i.ready_at is not None
    )
    return boots[len(boots) // 2] if boots else DEFAULT_BOOT


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
) -> PoolPlan:
    """What to rent, release and drain now, the conditions, and the breaker time.

    ``rental_price`` is the expected $/hour of one new rental (the best matching
    offer); default ``spec.offer.maxPricePerHour``, or 0 when neither is known.
    ``recent_arrivals`` are the times jobs of the pool were submitted, at least
    ``warmup.window`` back (only ``spec.warmup`` reads them). ``queued_seconds`` is
    the expected run time of the queued jobs, summed (None: unknown, one instance
    per queued job). ``arrival_days`` are the pool's arrivals per hour of day
    (``status.arrivals``, only ``warmup.coverage`` reads them).

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
    breaker = assess_breaker(
        recent_rentals,
        breaker_until=breaker_until,
        max_consecutive_failures=failure_policy.max_consecutive_failures,
        now=now,
    )
    plan.breaker_until = breaker.until
    hourly = budget.current_hourly(instances)

    if spec.paused:
        plan.releases = [Release(i.name, "Paused", "the pool is paused") for i in alive]
        plan.conditions = _conditions(
            spec,
            plan,
            breaker,
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
        boot = expected_boot(alive)
        worth = worth_having(len(ready), queued_seconds, concurrency=concurrency, boot=boot)
        demand = min(demand, worth)
    floor = warm_floor(spec, recent_arrivals, now=now, arrival_days=arrival_days)
    desired = min(spec.ceiling, max(floor, demand))
    cold = not ready
    allowance = desired + (spec.hedge if cold and desired > 0 else 0)

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
        if breaker.state == "open":
            allowed = 0
            plan.events.append(
                ("CircuitOpen", f"{len(reasons)} rental(s) held back: {_breaker_message(breaker)}")
            )
        elif breaker.state == "half-open":
            trial = any(breaker.until is not None and i.created_at >= breaker.until for i in coming)
            allowed = 0 if trial else 1
            plan.events.append(
                ("CircuitHalfOpen", "a trial rental is running" if trial else "trying one rental")
            )
        price = rental_price if rental_price is not None else spec.offer.max_price_per_hour or 0.0
        hours_left = budget.hours_left_today(now)
        for reason in reasons[:allowed]:
            verdict = budget.may_rent(
                price,
                spec.budget,
                current_hourly=hourly,
                spend_today=spend_today,
                hours_left_today=hours_left,
            )
            if not verdict.allowed:
                plan.events.append(("BudgetBlocked", verdict.message))
                break
            plan.rents.append(Rent(reason, message=_rent_message(reason, spec, desired)))
            hourly += price
    plan.conditions = _conditions(
        spec,
        plan,
        breaker,
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


def _breaker_message(breaker: Breaker) -> str:
    text = (
        f"{breaker.failed} of {breaker.window} recent rentals failed,"
        f" {breaker.consecutive} in a row"
    )
    if breaker.reasons:
        text += f" ({breaker.reasons})"
    if breaker.until is not None:
        text += f"; next attempt after {format_time(breaker.until)}"
    return text


def _conditions(
    spec: GpuPoolSpec,
    plan: PoolPlan,
    breaker: Breaker,
    *,
    coming: int,
    budget_verdict: budget.BudgetVerdict | None,
    hourly: float,
    spend_today: float,
) -> list[SetCondition]:
    ready, replicas = plan.ready_replicas, spec.replicas
    counts = f"{ready}/{replicas} ready"
    if spec.paused:
        ready_cond = SetCondition("Ready", "True" if replicas == 0 else "False", "Paused", counts)
        scaling = SetCondition("ScalingUp", "False", "Paused", "the pool is paused")
    else:
        ok = ready >= replicas or replicas == 0
        ready_cond = SetCondition(
            "Ready",
            "True" if ok else "False",
            "ReplicasReady" if ok else "ReplicasNotReady",
            counts,
        )
        if plan.rents:
            scaling = SetCondition("ScalingUp", "True", "Renting", f"renting {len(plan.rents)}")
        elif coming:
            scaling = SetCondition("ScalingUp", "True", "InstancesStarting", f"{coming} starting")
        else:
            scaling = SetCondition("ScalingUp", "False", "Steady", counts)
    if breaker.state == "closed":
        degraded = SetCondition("Degraded", "False", "Healthy", "rentals succeed")
        healthy = SetCondition(
            "RentalsHealthy",
            "True",
            "Healthy",
            f"{breaker.failed} of {breaker.window} recent rentals failed",
        )
    else:
        reason = "CircuitOpen" if breaker.state == "open" else "CircuitHalfOpen"
        degraded = SetCondition("Degraded", "True", reason, _breaker_message(breaker))
        healthy = SetCondition("RentalsHealthy", "False", breaker.trip, _breaker_message(breaker))
    caps = spec.budget
    if budget_verdict is not None and not budget_verdict.allowed:
        exceeded = SetCondition(
            "BudgetExceeded", "True", budget_verdict.reason, budget_verdict.message
        )
    elif caps.max_daily_spend is not None and spend_today >= caps.max_daily_spend:
        exceeded = SetCondition(
            "BudgetExceeded",
            "True",
            budget.DAILY_CAP,
            f"spent ${spend_today:.2f} today, maxDailySpend ${caps.max_daily_spend:.2f}",
        )
    elif caps.max_hourly_spend is not None and hourly > caps.max_hourly_spend + 1e-9:
        exceeded = SetCondition(
            "BudgetExceeded",
            "True",
            budget.HOURLY_CAP,
            f"${hourly:.2f}/h above maxHourlySpend ${caps.max_hourly_spend:.2f}/h",
        )
    else:
        exceeded = SetCondition(
            "BudgetExceeded",
            "False",
            budget.WITHIN_BUDGET,
            f"${hourly:.2f}/h, ${spend_today:.2f} today",
        )
    paused = SetCondition(
        "Paused",
        "True" if spec.paused else "False",
        "Paused" if spec.paused else "Running",
        "the pool is paused" if spec.paused else "the pool is running",
    )
    return [ready_cond, scaling, degraded, exceeded, healthy, paused]
