"""Warm-up: the instances to keep ready without queued jobs (:func:`warm_floor`), from the
recent arrival rate or, learned, from the pool's arrivals per hour of day.

A pool with ``spec.warmup.coverage`` above 0 keeps, in its status, how many jobs were submitted
in each UTC hour of today and of the last ``warmup.days`` days (:func:`record_arrivals`).
Over the whole days it has seen, the busiest hours that together held ``coverage`` of
the arrivals are kept warm (:func:`busy_hours`), from ``warmup.lead`` before each
(:func:`learned_warm`). This is the cheapest set of hours that meets a wait target on
a load that repeats from day to day: the hours with the most arrivals per warm hour
come first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

from warmpool.crds.common import parse_duration
from warmpool.crds.gpupool import ArrivalDay, GpuPoolSpec

HOURS = 24


def record_arrivals(
    days: Sequence[ArrivalDay], arrivals: Iterable[datetime], *, now: datetime, keep: int
) -> list[ArrivalDay]:
    """``days`` with ``arrivals`` counted in, oldest first, today and ``keep`` days back.

    Each hour keeps the larger of its stored count and the count of ``arrivals`` in it,
    so the same arrivals may be passed again (every reconcile, after a restart) without
    being counted twice, and jobs deleted since do not lower a count.
    """
    seen: dict[str, list[int]] = {}
    for t in arrivals:
        if t > now:
            continue
        seen.setdefault(t.date().isoformat(), [0] * HOURS)[t.hour] += 1
    merged = {d.day: list(d.hours) for d in days}
    for day, hours in seen.items():
        old = merged.get(day, [0] * HOURS)
        merged[day] = [max(a, b) for a, b in zip(old, hours, strict=True)]
    oldest = (now.date() - timedelta(days=keep)).isoformat()
    return [ArrivalDay(day=day, hours=merged[day]) for day in sorted(merged) if day >= oldest]


def busy_hours(
    days: Sequence[ArrivalDay], *, coverage: float, today: date
) -> frozenset[int] | None:
    """The fewest UTC hours that held ``coverage`` of the arrivals of the whole days seen.

    None while no whole day (before ``today``) is known. Hours with more arrivals come
    first, the earlier hour on a tie.
    """
    whole = [d for d in days if d.day < today.isoformat()]
    if not whole:
        return None
    totals = [sum(d.hours[h] for d in whole) for h in range(HOURS)]
    need = coverage * sum(totals)
    busy: set[int] = set()
    covered = 0
    for hour in sorted(range(HOURS), key=lambda h: (-totals[h], h)):
        if covered >= need or totals[hour] == 0:
            break
        busy.add(hour)
        covered += totals[hour]
    return frozenset(busy)


def arrived_since(days: Sequence[ArrivalDay], since: datetime) -> int:
    """Arrivals counted in the hours that end after ``since``."""
    total = 0
    for d in days:
        start = datetime.fromisoformat(d.day).replace(tzinfo=since.tzinfo)
        for hour, n in enumerate(d.hours):
            if start + timedelta(hours=hour + 1) > since:
                total += n
    return total


def learned_warm(busy: frozenset[int], *, now: datetime, lead: timedelta) -> bool:
    """True when ``now`` is in a busy hour, or one begins within ``lead``."""
    t, until = now, now + lead
    while t <= until:
        if t.hour in busy:
            return True
        t = t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return False


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
    if warmup.coverage > 0 and arrived_since(arrival_days, now - timedelta(days=1)):
        busy = busy_hours(arrival_days, coverage=warmup.coverage, today=now.date())
        if busy is not None:
            lead = parse_duration(warmup.lead)
            warm = learned_warm(busy, now=now, lead=lead)
            return warmup.replicas if warm else spec.replicas
    rate = arrival_rate(recent_arrivals, window=parse_duration(warmup.window), now=now)
    return warmup.replicas if rate >= warmup.min_arrivals_per_hour else spec.replicas
