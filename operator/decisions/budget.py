"""Spending: what a pool has spent today and whether one more rental fits the budget.

Pure: amounts in dollars, rates in $/hour, ``now`` passed in. A UTC day is the
accounting period of ``maxDailySpend``.

How spend is kept: ``status.spend`` (:class:`SpendStatus`) holds the dollars of
rentals already *released* today ("closed"); live rentals accrue
``price × hours since max(rented_at, start of the UTC day)``. When the finalizer
destroys a rental, the handler adds that rental's :func:`cost_today` to the closed
amount with :func:`close_spend`; the object disappears right after, so the rental
moves from "live" to "closed" without being counted twice.

At a daily cap (:func:`plan_cap`): with ``onExceeded: Release`` idle instances are
released at once and busy ones drained (released once their jobs are done); with
``Block`` they keep running. Either way :func:`may_rent` refuses every rental until
the UTC day turns. The operator-wide cap (:class:`FleetSpend`, a setting of the
operator) is the same rule over the spend of every pool it serves: the ceiling a
namespace editor, who sets their own pools' budgets, cannot lift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from warmpool.crds.gpuinstance import Phase
from warmpool.crds.gpupool import BudgetSpec, OnExceeded, SpendStatus

WITHIN_BUDGET = "WithinBudget"
HOURLY_CAP = "HourlyCap"
DAILY_CAP = "DailyCap"
OPERATOR_DAILY_CAP = "OperatorDailyCap"
"""The operator-wide daily cap (a setting) refuses the rental or holds the pool."""
BUDGET_EXCEEDED = "BudgetExceeded"
"""Reason of the releases and drains made at a daily cap (events, ``status.reason``,
``warmpool_terminations_total``)."""

_DAY = timedelta(days=1)
_EPSILON = 1e-9


class Accruing(Protocol):
    """What budget needs of an instance (``policy.InstanceView`` is one)."""

    @property
    def rented_at(self) -> datetime | None: ...

    @property
    def price_per_hour(self) -> float: ...


class Held(Protocol):
    """What :func:`plan_cap` needs of an instance (``policy.InstanceView`` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def phase(self) -> Phase: ...

    @property
    def jobs(self) -> int: ...

    @property
    def deleting(self) -> bool: ...


@dataclass(frozen=True)
class FleetSpend:
    """Every pool the operator serves, against the operator-wide daily cap."""

    daily_cap: float
    """``WARMPOOL_OPERATOR_DAILY_BUDGET_USD``, dollars per UTC day."""
    spend_today: float
    """:func:`spend_today` summed over every pool."""
    current_hourly: float
    """:func:`current_hourly` summed over every pool."""
    on_exceeded: OnExceeded = "Release"


@dataclass(frozen=True)
class CapCut:
    """At a daily cap: release ``name`` now, or drain it (released once its jobs end)."""

    name: str
    drain: bool
    message: str
    reason: str = BUDGET_EXCEEDED


@dataclass(frozen=True)
class CapPlan:
    """What :func:`plan_cap` decided: the verdict (not allowed at a cap) and the cuts."""

    verdict: BudgetVerdict
    cuts: list[CapCut]


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
    fleet: FleetSpend | None = None,
) -> BudgetVerdict:
    """Whether one more rental at ``price_per_hour`` fits the pool's budget (and the
    operator-wide cap ``fleet``, by the same daily rule over every pool: its
    ``current_hourly`` must include the rentals planned in this pass).

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
    if fleet is not None:
        horizon = min(1.0, max(0.0, hours_left_today))
        projected = fleet.spend_today + (fleet.current_hourly + price_per_hour) * horizon
        if (
            fleet.spend_today >= fleet.daily_cap - _EPSILON
            or projected > fleet.daily_cap + _EPSILON
        ):
            return BudgetVerdict(
                allowed=False,
                reason=OPERATOR_DAILY_CAP,
                message=(
                    f"every pool together spent ${fleet.spend_today:.2f} today; with this rental"
                    f" they would reach ${projected:.2f} within {horizon * 60:.0f} min,"
                    f" above the operator's daily cap ${fleet.daily_cap:.2f}"
                ),
            )
    return BudgetVerdict(allowed=True, reason=WITHIN_BUDGET, message="the rental fits the budget")


def daily_cap_reached(
    budget: BudgetSpec, *, spend_today: float, fleet: FleetSpend | None = None
) -> tuple[BudgetVerdict, OnExceeded] | None:
    """The daily cap the pool has reached (its own first, then the operator's) and what to do
    there; None below both. Reached means spent, not projected: ``spend >= cap``."""
    cap = budget.max_daily_spend
    if cap is not None and spend_today >= cap - _EPSILON:
        message = f"spent ${spend_today:.2f} today, maxDailySpend ${cap:.2f}"
        return BudgetVerdict(False, DAILY_CAP, message), budget.on_exceeded
    if fleet is not None and fleet.spend_today >= fleet.daily_cap - _EPSILON:
        message = (
            f"every pool together spent ${fleet.spend_today:.2f} today,"
            f" the operator's daily cap is ${fleet.daily_cap:.2f}"
        )
        return BudgetVerdict(False, OPERATOR_DAILY_CAP, message), fleet.on_exceeded
    return None


def plan_cap(
    instances: Sequence[Held],
    budget: BudgetSpec,
    *,
    spend_today: float,
    fleet: FleetSpend | None = None,
) -> CapPlan | None:
    """At a daily cap (:func:`daily_cap_reached`): the verdict, and with ``Release`` the cuts.

    None below every daily cap. With ``Block``: no cuts (rentals are refused by
    :func:`may_rent`). With ``Release``: every instance that is not already going
    (deleting, ``Terminating``) is cut: released when it has no job, drained when it
    has one (a ``Draining`` instance with jobs is left to finish: the pool policy
    releases it once idle). Nothing is kept warm: ``replicas`` yields to the cap.
    """
    reached = daily_cap_reached(budget, spend_today=spend_today, fleet=fleet)
    if reached is None:
        return None
    verdict, on_exceeded = reached
    if on_exceeded == "Block":
        return CapPlan(verdict, [])
    cuts = []
    for i in sorted(instances, key=lambda i: i.name):
        if i.deleting or i.phase == "Terminating":
            continue
        if i.jobs == 0:
            message = f"released at the cap: {verdict.message}"
            cuts.append(CapCut(i.name, drain=False, message=message))
        elif i.phase != "Draining":
            cuts.append(
                CapCut(i.name, drain=True, message=f"released after its job: {verdict.message}")
            )
    return CapPlan(verdict, cuts)
