"""The cold tier: stopped instances that keep their disk, started again before renting.

Pure: views of the pool's instances in, intents out; ``now`` is passed in. The pool
handler applies them around :func:`policy.plan_pool`, in this order:

1. :func:`check_cold` on the cold instances (phases ``Stopped``/``Resuming``):
   :class:`Destroy` drifted, expired (``maxAge``), surplus (above ``cold.replicas``)
   and failed starts (no progress within ``resumeTimeout``; a start whose GPU was
   taken — ``intended_status=running`` with ``cur_state=stopped`` for
   :data:`SCHEDULING_GRACE` — is given up too, and ``Destroy.failed`` is False: the
   machine did nothing wrong, it is not recorded in the host ledger nor the breaker);
2. :func:`budget_cuts`: at a budget cap, stopped instances are destroyed (largest
   storage $/hour first) before anything else — storage is never paid silently;
3. :func:`policy.plan_pool` with every instance *except* the ``Stopped`` ones
   (``Resuming`` ones are passed: they count as coming, like a rental booting, and are
   kept over fresh rentals when some are surplus) and the spec of :func:`planning_spec`
   (``cold.idleTimeout`` while the tier has room);
4. :func:`plan_stops`: ``Idle`` releases of plan_pool become :class:`Stop` while the
   tier has room, the machine is healthy and the template current (the others wait
   for the pool's own ``idleTimeout``); ``Surplus``
   releases of ``Resuming`` instances (a hedge that lost) are stopped again, and of
   fresh rentals are kept booting (:class:`Keep`) while the tier has room — they are
   stopped once Ready and idle, so a start whose GPU was taken does not shrink the
   tier for good;
5. :func:`plan_starts`: each :class:`policy.Rent` of plan_pool starts a stopped
   instance instead when one can (healthy machine, current template, newest first);
   :func:`plan_races`: while fresh rentals still booting stand in for the instances
   plan_pool wants, stopped ones are started beside them (Ready in about a minute
   instead of several).

A stopped instance bills storage only: :func:`storage_per_hour` of its offer's
``storage_cost`` ($/GB/month, Vast.ai contract §11) and the template's disk.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from warmpool.crds.common import parse_duration, parse_time
from warmpool.crds.gpuinstance import Phase
from warmpool.crds.gpupool import BudgetSpec, GpuPoolSpec, HostFailure
from warmpool.operator.decisions import budget, policy

#: Stable reasons (events, ``status.reason``, metrics labels).
IDLE_COLD = "IdleCold"
"""Stop: idle above the warm floor, kept cold."""
RESUME = "Resume"
"""Start: a rental was wanted; a stopped instance serves it."""
COLD_FILL = "ColdFill"
"""Keep: a fresh rental no longer needed boots on to refill the tier (stopped once idle)."""
RACE = "Race"
"""Start: a fresh rental still booting stands in for a wanted instance; a start is sooner."""
RESUME_SURPLUS = "ResumeSurplus"
"""Stop: a started instance no longer needed (a hedge that lost), stopped again."""
GPU_TAKEN = "GpuTaken"
RESUME_TIMEOUT = "ResumeTimeout"
MAX_AGE = "MaxAge"
DRIFTED = "Drifted"
COLD_SURPLUS = "ColdSurplus"
BUDGET_CAP = "BudgetCap"
PAUSED = "Paused"

HOURS_PER_MONTH = 720.0
"""Vast.ai prices storage per GB per month of 720 hours (contract §11)."""
SCHEDULING_GRACE = timedelta(seconds=30)
"""A start still ``cur_state=stopped`` after this long found its GPU taken ("stuck in
scheduling for more than 30 s means the resources are taken", contract §5.6/F17)."""


@dataclass(frozen=True)
class ColdView:
    """One cold GpuInstance (phase ``Stopped`` or ``Resuming``)."""

    name: str
    phase: Phase
    stopped_at: datetime
    template_hash: str
    machine_id: int | None = None
    storage_per_hour: float = 0.0
    """:func:`storage_per_hour` of its offer and disk."""
    resumed_at: datetime | None = None
    """When the start was asked for (``Resuming``)."""
    intended_status: str | None = None
    cur_state: str | None = None


@dataclass(frozen=True)
class Stop:
    """Stop the rental of ``name`` (disk kept): phase ``Stopped``."""

    name: str
    reason: str
    message: str = ""


@dataclass(frozen=True)
class Keep:
    """Do not release ``name`` (plan_pool's ``Surplus``): it boots on to refill the tier."""

    name: str
    reason: str
    message: str = ""


@dataclass(frozen=True)
class Start:
    """Start the stopped rental of ``name`` again: phase ``Resuming``; re-read its
    public IP and ports before probing (they change, contract F19)."""

    name: str
    reason: str
    message: str = ""


@dataclass(frozen=True)
class Destroy:
    """Destroy the rental of cold ``name`` (delete the object; the finalizer destroys)."""

    name: str
    reason: str
    message: str = ""
    failed: bool = False
    """Record as a failed rental (host ledger, breaker): only a start that hung."""


def storage_per_hour(storage_cost: float, disk_gb: float) -> float:
    """$/hour of a stopped instance: ``storage_cost`` ($/GB/month) × disk GB / 720."""
    return max(storage_cost, 0.0) * max(disk_gb, 0.0) / HOURS_PER_MONTH


def failed_machines(
    ledger: Sequence[HostFailure], *, cooldown: timedelta, now: datetime
) -> set[int]:
    """Machines with a failure in the host ledger within ``cooldown``: not healthy."""
    return {f.machine_id for f in ledger if now - parse_time(f.time) < cooldown}


def check_cold(
    cold: Sequence[ColdView], *, spec: GpuPoolSpec, template_hash: str, now: datetime
) -> list[Destroy]:
    """Cold instances to destroy now (see the module docstring, step 1)."""
    if spec.paused:
        return [Destroy(c.name, PAUSED, "the pool is paused") for c in cold]
    max_age = parse_duration(spec.cold.max_age)
    timeout = parse_duration(spec.cold.resume_timeout)
    out: list[Destroy] = []
    kept: list[ColdView] = []
    for c in cold:
        if c.phase == "Resuming":
            started = c.resumed_at or c.stopped_at
            waited = now - started
            taken = c.intended_status == "running" and c.cur_state == "stopped"
            if taken and waited >= min(SCHEDULING_GRACE, timeout):
                out.append(
                    Destroy(c.name, GPU_TAKEN, f"GPU taken: still scheduling after {_s(waited)}")
                )
            elif waited >= timeout:
                out.append(
                    Destroy(
                        c.name,
                        RESUME_TIMEOUT,
                        f"not ready {_s(waited)} after the start (resumeTimeout"
                        f" {spec.cold.resume_timeout})",
                        failed=True,
                    )
                )
        elif c.template_hash != template_hash:
            out.append(
                Destroy(
                    c.name,
                    DRIFTED,
                    f"template {c.template_hash or '-'} differs from {template_hash}",
                )
            )
        elif now - c.stopped_at >= max_age:
            out.append(Destroy(c.name, MAX_AGE, f"stopped for {_s(now - c.stopped_at)}"))
        else:
            kept.append(c)
    oldest_first = sorted(kept, key=lambda c: (c.stopped_at, c.name))
    for c in oldest_first[: max(len(kept) - spec.cold.replicas, 0)]:
        out.append(Destroy(c.name, COLD_SURPLUS, f"above cold.replicas {spec.cold.replicas}"))
    return out


def next_deadline(cold: Sequence[ColdView], *, spec: GpuPoolSpec) -> datetime | None:
    """The next time :func:`check_cold` may decide something new (requeue the pool then)."""
    max_age = parse_duration(spec.cold.max_age)
    timeout = parse_duration(spec.cold.resume_timeout)
    times = []
    for c in cold:
        if c.phase == "Resuming":
            started = c.resumed_at or c.stopped_at
            times += [started + min(SCHEDULING_GRACE, timeout), started + timeout]
        else:
            times.append(c.stopped_at + max_age)
    return min(times, default=None)


def budget_cuts(
    cold: Sequence[ColdView],
    *,
    caps: BudgetSpec,
    warm_hourly: float,
    spend_today: float,
    now: datetime,
) -> list[Destroy]:
    """Stopped instances to destroy because the pool is at a budget cap.

    ``warm_hourly`` is :func:`budget.current_hourly` of every other instance. The pool
    must fit ``maxHourlySpend`` with its storage and, like :func:`budget.may_rent`,
    run for the next hour (or until midnight) within ``maxDailySpend``; stopped
    instances go first, largest storage $/hour first, until it does. Once the day's
    cap is reached, every stopped instance goes.
    """
    stopped = sorted(
        (c for c in cold if c.phase == "Stopped"),
        key=lambda c: (-c.storage_per_hour, c.stopped_at, c.name),
    )
    hourly = warm_hourly + sum(c.storage_per_hour for c in stopped)
    horizon = min(1.0, budget.hours_left_today(now))
    out: list[Destroy] = []
    for c in stopped:
        over_hour = caps.max_hourly_spend is not None and hourly > caps.max_hourly_spend + 1e-9
        over_day = caps.max_daily_spend is not None and (
            spend_today >= caps.max_daily_spend - 1e-9
            or spend_today + hourly * horizon > caps.max_daily_spend + 1e-9
        )
        if not (over_hour or over_day):
            break
        which = "maxHourlySpend" if over_hour else "maxDailySpend"
        out.append(Destroy(c.name, BUDGET_CAP, f"at {which}: storage is not kept"))
        hourly -= c.storage_per_hour
    return out


def storage_fits(
    storage: float, caps: BudgetSpec, *, current_hourly: float, spend_today: float, now: datetime
) -> bool:
    """Whether keeping ``storage`` $/hour more fits the budget (:func:`budget.may_rent`);
    when it does not, :func:`plan_stops` gets ``at_cap=True`` and idle ones are destroyed."""
    return budget.may_rent(
        storage,
        caps,
        current_hourly=current_hourly,
        spend_today=spend_today,
        hours_left_today=budget.hours_left_today(now),
    ).allowed


def planning_spec(spec: GpuPoolSpec, cold: Sequence[ColdView]) -> GpuPoolSpec:
    """The spec :func:`policy.plan_pool` plans with (step 3): ``idleTimeout`` is
    ``cold.idleTimeout`` while fewer than ``cold.replicas`` instances are cold — an idle
    machine that can be stopped is stopped sooner, since a start undoes it in about a
    minute; the ones without room wait for the pool's own (:func:`plan_stops`)."""
    stop_after = spec.cold.idle_timeout
    if len(cold) >= spec.cold.replicas:
        return spec
    if parse_duration(stop_after) >= parse_duration(spec.idle_timeout):
        return spec
    return spec.model_copy(update={"idle_timeout": stop_after})


def plan_stops(
    releases: Sequence[policy.Release],
    instances: Sequence[policy.InstanceView],
    cold: Sequence[ColdView],
    *,
    spec: GpuPoolSpec,
    template_hash: str,
    unhealthy_machines: Collection[int] = (),
    storage: dict[str, float] | None = None,
    at_cap: bool = False,
    now: datetime | None = None,
) -> tuple[list[Stop], list[Keep], list[policy.Release]]:
    """Which of plan_pool's releases stop, or are kept, instead (step 4); the rest stay.

    An ``Idle`` release of a Ready instance stops while fewer than ``cold.replicas``
    instances are cold, its template is current and its machine healthy (not in
    ``unhealthy_machines``), cheapest to keep first (GPU price, then ``storage``
    $/hour by name, then newest). A ``Surplus`` release of a ``Resuming`` instance is
    always stopped again. A ``Surplus`` release of a fresh rental (a hedge that lost,
    most progressed first) is kept booting while the tier has room (:class:`Keep`,
    ``ColdFill``): once Ready and idle it is stopped, so a start whose GPU was taken
    does not shrink the tier for good. ``at_cap`` (the budget refuses storage): none.
    With ``now``, an ``Idle`` release that does not stop is dropped while its instance
    has idled less than the pool's ``idleTimeout`` (it was released after the shorter
    ``cold.idleTimeout`` of :func:`planning_spec`): destroyed only after the pool's own.
    """
    by_name = {i.name: i for i in instances}
    room = spec.cold.replicas - len(cold)
    stops: list[Stop] = []
    keeps: list[Keep] = []
    rest: list[policy.Release] = []
    costs = storage or {}
    candidates: list[policy.InstanceView] = []
    fresh: list[policy.InstanceView] = []
    for r in releases:
        inst = by_name.get(r.name)
        healthy = (
            inst is not None
            and inst.template_hash == template_hash
            and inst.machine_id not in unhealthy_machines
        )
        if inst is None or at_cap or spec.cold.replicas == 0:
            rest.append(r)
        elif r.reason == "Surplus" and inst.phase == "Resuming":
            stops.append(Stop(r.name, RESUME_SURPLUS, "started but no longer needed"))
        elif r.reason == "Surplus" and healthy and inst.phase in _FRESH:
            fresh.append(inst)
        elif r.reason == "Idle" and inst.phase == "Ready" and inst.jobs == 0 and healthy:
            candidates.append(inst)
        else:
            rest.append(r)
    fresh.sort(key=lambda i: (-_FRESH.index(i.phase), i.created_at, i.name))
    for inst in fresh:
        if len(keeps) < room:
            keeps.append(Keep(inst.name, COLD_FILL, "not needed now: boots on to refill the tier"))
        else:
            rest.extend(r for r in releases if r.name == inst.name)
    room -= len(keeps)
    candidates.sort(
        key=lambda i: (i.price_per_hour, costs.get(i.name, 0.0), -i.created_at.timestamp(), i.name)
    )
    after = min(spec.idle_timeout, spec.cold.idle_timeout, key=parse_duration)
    for n, inst in enumerate(candidates):
        if n < room:
            stops.append(Stop(inst.name, IDLE_COLD, f"idle for {after}: kept cold"))
        else:
            rest.extend(r for r in releases if r.name == inst.name)
    if now is not None:
        timeout = parse_duration(spec.idle_timeout)
        rest = [
            r
            for r in rest
            if not (
                r.reason == "Idle"
                and r.name in by_name
                and now - policy.idle_since(by_name[r.name]) < timeout
            )
        ]
    return stops, keeps, rest


def plan_starts(
    rents: Sequence[policy.Rent],
    cold: Sequence[ColdView],
    *,
    template_hash: str,
    unhealthy_machines: Collection[int] = (),
    excluded: Collection[str] = (),
) -> tuple[list[Start], list[policy.Rent]]:
    """Which of plan_pool's rentals a stopped instance serves instead (step 5).

    Stopped instances with the current template on healthy machines, newest stopped
    first, one per :class:`policy.Rent` (any reason); the rents left over are rented
    fresh. ``excluded`` are names already destroyed this reconcile.
    """
    usable = sorted(
        (
            c
            for c in cold
            if c.phase == "Stopped"
            and c.template_hash == template_hash
            and c.machine_id not in unhealthy_machines
            and c.name not in excluded
        ),
        key=lambda c: (-c.stopped_at.timestamp(), c.name),
    )
    starts = [
        Start(c.name, RESUME, f"serves a {r.reason} rental: {r.message}".rstrip(": "))
        for c, r in zip(usable, rents, strict=False)
    ]
    return starts, list(rents[len(starts) :])


def plan_races(
    plan: policy.PoolPlan,
    instances: Sequence[policy.InstanceView],
    cold: Sequence[ColdView],
    *,
    starts: Sequence[Start],
    releases: Sequence[policy.Release],
    template_hash: str,
    unhealthy_machines: Collection[int] = (),
    excluded: Collection[str] = (),
) -> list[Start]:
    """Stopped instances to start beside fresh rentals still booting (step 5, after
    :func:`plan_starts`).

    plan_pool counts a fresh rental on its way as one of the instances it wants, and
    rents (or, through :func:`plan_starts`, starts) only what is missing beyond it. A
    fresh rental is Ready minutes after it was made, a start in about a minute: while
    the instances that are Ready, ``Resuming`` or started now fall short of what the
    plan wants (``plan.allowance``: ``desired``, plus ``hedge`` on a cold start) and fresh
    rentals are booting (not in ``releases``, what is left to release after
    :func:`plan_stops`), stopped instances are started toward
    it — on a cold start ``hedge`` more, as for rentals —, the ones :func:`plan_starts`
    would pick. The loser of each race is a
    ``Surplus`` of plan_pool once enough are Ready (the fresh one first: ``Resuming``
    ranks as the most progressed), kept booting to refill the tier while it has room.
    """
    going = {r.name for r in releases}
    alive = [
        i for i in instances if not i.deleting and i.phase != "Terminating" and i.name not in going
    ]
    fresh = sum(1 for i in alive if i.phase in _FRESH and i.template_hash == template_hash)
    soon = sum(1 for i in alive if i.phase in ("Ready", "Resuming")) + len(starts)
    wanted = plan.allowance - soon
    if wanted <= 0 or not fresh:
        return []
    begun = {s.name for s in starts}
    racers, _ = plan_starts(
        [policy.Rent(RACE)] * (wanted + len(begun)),
        cold,
        template_hash=template_hash,
        unhealthy_machines=unhealthy_machines,
        excluded={*excluded, *begun},
    )
    message = "a fresh rental is still booting: a start is Ready sooner"
    return [Start(s.name, RACE, message) for s in racers[:wanted]]


_FRESH: tuple[Phase, ...] = ("Pending", "Renting", "Provisioning", "Starting")
"""A fresh rental on its way, least progressed first."""


def _s(delta: timedelta) -> str:
    return f"{delta.total_seconds():.0f}s"
