"""Learned warm-up: the pool's arrivals per hour of day, and the hours worth keeping warm.

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

from warmpool.crds.gpupool import ArrivalDay

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
