"""T1: spend per UTC day and whether one more rental fits the budget."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from warmpool.crds.gpupool import BudgetSpec, SpendStatus
from warmpool.operator.decisions import budget
from warmpool.operator.decisions.budget import BudgetVerdict

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
MIDNIGHT = datetime(2024, 5, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Live:
    rented_at: datetime | None
    price_per_hour: float


def caps(hourly: float | None = None, daily: float | None = None) -> BudgetSpec:
    return BudgetSpec(max_hourly_spend=hourly, max_daily_spend=daily)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(NOW, 12.0, id="noon"),
        pytest.param(MIDNIGHT, 24.0, id="midnight"),
        pytest.param(MIDNIGHT + timedelta(hours=23, minutes=30), 0.5, id="half-hour-left"),
        pytest.param(
            datetime(2024, 5, 1, 1, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=-5))),
            23.0,
            id="non-utc-aware-now",
        ),
    ],
)
def test_hours_left_today(now: datetime, expected: float) -> None:
    assert budget.hours_left_today(now) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("price", "rented_at", "expected"),
    [
        pytest.param(0.5, NOW - timedelta(hours=2), 1.0, id="two-hours-today"),
        pytest.param(
            0.5, NOW - timedelta(hours=20), 6.0, id="rented-yesterday-counts-from-midnight"
        ),
        pytest.param(0.5, None, 0.0, id="not-rented-yet"),
        pytest.param(0.5, NOW + timedelta(minutes=1), 0.0, id="future-clamped"),
        pytest.param(1.2, NOW - timedelta(minutes=30), 0.6, id="half-hour"),
    ],
)
def test_cost_today(price: float, rented_at: datetime | None, expected: float) -> None:
    assert budget.cost_today(price, rented_at, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("closed", "instances", "expected"),
    [
        pytest.param(SpendStatus(), [], 0.0, id="nothing"),
        pytest.param(SpendStatus(day="2024-05-01", closed=3.0), [], 3.0, id="closed-today"),
        pytest.param(SpendStatus(day="2024-04-30", closed=3.0), [], 0.0, id="closed-yesterday"),
        pytest.param(
            SpendStatus(day="2024-05-01", closed=1.5),
            [
                Live(NOW - timedelta(hours=1), 0.4),
                Live(NOW - timedelta(hours=13), 1.0),
                Live(None, 0.9),
            ],
            1.5 + 0.4 + 12.0,
            id="closed-plus-live-since-midnight",
        ),
    ],
)
def test_spend_today(closed: SpendStatus, instances: list[Live], expected: float) -> None:
    assert budget.spend_today(closed, instances, now=NOW) == pytest.approx(expected)


def test_current_hourly_sums_every_instance() -> None:
    assert budget.current_hourly([Live(None, 0.4), Live(NOW, 0.35)]) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("closed", "cost", "expected"),
    [
        pytest.param(SpendStatus(), 1.25, SpendStatus(day="2024-05-01", closed=1.25), id="first"),
        pytest.param(
            SpendStatus(day="2024-05-01", closed=2.0),
            0.5,
            SpendStatus(day="2024-05-01", closed=2.5),
            id="same-day-adds",
        ),
        pytest.param(
            SpendStatus(day="2024-04-30", closed=9.0),
            0.5,
            SpendStatus(day="2024-05-01", closed=0.5),
            id="rolls-over-at-midnight",
        ),
    ],
)
def test_close_spend(closed: SpendStatus, cost: float, expected: SpendStatus) -> None:
    assert budget.close_spend(closed, cost, now=NOW) == expected


OK = BudgetVerdict(True, "WithinBudget", "the rental fits the budget")


@pytest.mark.parametrize(
    ("price", "caps_", "hourly", "spent", "hours_left", "expected"),
    [
        pytest.param(5.0, caps(), 100.0, 1000.0, 1.0, OK, id="no-caps"),
        pytest.param(0.4, caps(hourly=1.0), 0.0, 0.0, 12.0, OK, id="first-of-three"),
        pytest.param(0.4, caps(hourly=1.0), 0.4, 0.0, 12.0, OK, id="second-of-three"),
        pytest.param(
            0.4,
            caps(hourly=1.0),
            0.8,
            0.0,
            12.0,
            BudgetVerdict(
                False,
                "HourlyCap",
                "renting at $0.40/h would bring the pool to $1.20/h, above maxHourlySpend $1.00/h",
            ),
            id="third-crosses-hourly",
        ),
        pytest.param(0.5, caps(hourly=1.0), 0.5, 0.0, 12.0, OK, id="exactly-at-hourly-cap"),
        pytest.param(0.1, caps(hourly=0.3), 0.2, 0.0, 12.0, OK, id="float-sum-at-cap"),
        pytest.param(
            0.5,
            caps(daily=10.0),
            1.0,
            8.6,
            12.0,
            BudgetVerdict(
                False,
                "DailyCap",
                "spent $8.60 today; with this rental the pool would reach $10.10 within 60 min,"
                " above maxDailySpend $10.00",
            ),
            id="next-hour-would-cross-daily",
        ),
        pytest.param(0.5, caps(daily=10.0), 1.0, 8.5, 12.0, OK, id="next-hour-exactly-daily"),
        pytest.param(
            0.5, caps(daily=10.0), 1.0, 8.6, 0.25, OK, id="midnight-near-shortens-horizon"
        ),
        pytest.param(
            0.0,
            caps(daily=10.0),
            0.0,
            10.0,
            12.0,
            BudgetVerdict(
                False,
                "DailyCap",
                "spent $10.00 today; with this rental the pool would reach $10.00 within 60 min,"
                " above maxDailySpend $10.00",
            ),
            id="daily-already-spent",
        ),
        pytest.param(
            0.4,
            caps(hourly=1.0, daily=1.0),
            0.8,
            0.5,
            12.0,
            BudgetVerdict(
                False,
                "HourlyCap",
                "renting at $0.40/h would bring the pool to $1.20/h, above maxHourlySpend $1.00/h",
            ),
            id="hourly-checked-first",
        ),
    ],
)
def test_may_rent(
    price: float,
    caps_: BudgetSpec,
    hourly: float,
    spent: float,
    hours_left: float,
    expected: BudgetVerdict,
) -> None:
    verdict = budget.may_rent(
        price, caps_, current_hourly=hourly, spend_today=spent, hours_left_today=hours_left
    )
    assert verdict == expected


def test_one_dollar_an_hour_rents_at_most_two_forty_cent_machines() -> None:
    """$1/hour with $0.40 offers → at most two rentals, whatever the demand."""
    hourly, rented = 0.0, 0
    for _ in range(5):
        verdict = budget.may_rent(
            0.4, caps(hourly=1.0), current_hourly=hourly, spend_today=0.0, hours_left_today=12
        )
        if verdict.allowed:
            hourly += 0.4
            rented += 1
    assert rented == 2


def test_policy_instances_are_accruing() -> None:
    """The pool handler passes ``policy.InstanceView`` objects straight to budget."""
    from warmpool.operator.decisions.policy import InstanceView

    views = [
        InstanceView(name="a", phase="Ready", created_at=NOW, rented_at=NOW - timedelta(hours=2)),
        InstanceView(name="b", phase="Pending", created_at=NOW, price_per_hour=0.5),
    ]
    views = [replace(views[0], price_per_hour=0.25), views[1]]
    assert budget.spend_today(SpendStatus(), views, now=NOW) == pytest.approx(0.5)
    assert budget.current_hourly(views) == pytest.approx(0.75)
