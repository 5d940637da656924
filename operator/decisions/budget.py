"""Spending: what a pool has spent today and whether one more rental fits the budget.

Pure: amounts in dollars, rates in $/hour, ``now`` passed in. A UTC day is the
accounting period of ``maxDailySpend``.

How spend is kept: ``status.spend`` (:class:`SpendStatus`) holds the dollars of
rentals already *released* today ("closed"); live rentals accrue
``price × hours since max(rented_at, start of the UTC day)``. When the finalizer
destroys a rental, the handler adds that rental's :func:`cost_today` to the closed
amount with :func:`close_spend`; the object disappears right after, so the rental
moves from "live" to "closed" without being counted twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from warmpool.crds.gpupool import BudgetSpec, SpendStatus

WITHIN_BUDGET = "WithinBudget"
HOURLY_CAP = "HourlyCap"
DAILY_CAP = "DailyCap"

_DAY = timedelta(days=1)
_EPSILON = 1e-9


class Accruing(Protocol):
    """What budget needs of an instance (``policy.InstanceView`` is one)."""

    @property
    def rented_at(self) -> datetime | None: ...

    @property
    def price_per_hour(self) -> float: ...


@dataclass(frozen=True)
class BudgetVerdict:
    """Whether one more rental fits; ``reason`` is a stable CamelCase word."""

    allowed: bool
    reason: str
    """``WithinBudget``, ``HourlyCap`` or ``DailyCap``."""
    message: str


def start_of_day(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s UTC day."""
    utc = now.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


def hours_left_today(now: datetime) -> float:
    """Hours from ``now`` to the next UTC midnight (0 < x <= 24)."""
    return (start_of_day(now) + _DAY - now).total_seconds() / 3600.0


def cost_today(price_per_hour: float, rented_at: datetime | None, *, now: datetime) -> float:
    """Dollars a live rental accrued today: price × hours since max(rented_at, midnight UTC)."""
    if rented_at is None:
        return 0.0
    since = max(rented_at, start_of_day(now))
    hours = max(0.0, (now - since).total_seconds() / 3600.0)
    return price_per_hour * hours


def spend_today(closed: SpendStatus, instances: Sequence[Accruing], *, now: datetime) -> float:
    """Closed spend of rentals released today plus what the live rentals accrued today.

    Every instance passed in counts as live when it has ``rented_at``: pass every
    GpuInstance object of the pool (an object exists until its rental is destroyed).
    """
    day = start_of_day(now).date().isoformat()
    closed_today = closed.closed if closed.day == day else 0.0
    live = sum(cost_today(i.price_per_hour, i.rented_at, now=now) for i in instances)
    return closed_today + live


def current_hourly(instances: Sequence[Accruing]) -> float:
    """Sum of $/hour of the instances given (all objects of the pool, any phase)."""
    return sum(i.price_per_hour for i in instances)


def close_spend(closed: SpendStatus, cost: float, *, now: datetime) -> SpendStatus:
    """Add ``cost`` to the closed spend of today, starting a new day at UTC midnight."""
    day = start_of_day(now).date().isoformat()
    before = closed.closed if closed.day == day else 0.0
    return SpendStatus(day=day, closed=before + cost)


def may_rent(
    price_per_hour: float,
    budget: BudgetSpec,
    *,
    current_hourly: float,
    spend_today: float,
    hours_left_today: float,
) -> BudgetVerdict:
    """Whether one more rental at ``price_per_hour`` fits the pool's budget.

    - hourly cap: ``current_hourly + price <= maxHourlySpend``, where
      ``current_hourly`` sums every instance of the pool, including those still
      renting or provisioning;
    - daily cap: the rental is refused when ``spend_today + (current_hourly + price)
      × min(1 h, hours_left_today)`` would exceed ``maxDailySpend``: the pool must be
      able to run everything it has, plus this rental, for the next hour (or until
      midnight) without crossing the day's cap.
    """
    hourly_cap = budget.max_hourly_spend
    after = current_hourly + price_per_hour
    if hourly_cap is not None and after > hourly_cap + _EPSILON:
        return BudgetVerdict(
            allowed=False,
            reason=HOURLY_CAP,
            message=(
                f"renting at ${price_per_hour:.2f}/h would bring the pool to ${after:.2f}/h,"
                f" above maxHourlySpend ${hourly_cap:.2f}/h"
            ),
        )
    daily_cap = budget.max_daily_spend
    if daily_cap is not None:
        horizon = min(1.0, max(0.0, hours_left_today))
        projected = spend_today + after * horizon
        if spend_today >= daily_cap - _EPSILON or projected > daily_cap + _EPSILON:
            return BudgetVerdict(
                allowed=False,
                reason=DAILY_CAP,
                message=(
                    f"spent ${spend_today:.2f} today; with this rental the pool would reach"
                    f" ${projected:.2f} within {horizon * 60:.0f} min,"
                    f" above maxDailySpend ${daily_cap:.2f}"
                ),
            )
    return BudgetVerdict(allowed=True, reason=WITHIN_BUDGET, message="the rental fits the budget")
