"""Learned warm-up: hourly arrival counts per day and the busy hours they give."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from warmpool.crds.gpupool import ArrivalDay, GpuPoolSpec
from warmpool.operator.decisions import warmup

NOW = datetime(2024, 5, 8, 12, 30, tzinfo=UTC)


def day(iso: str, **hours: int) -> ArrivalDay:
    counts = [0] * 24
    for key, n in hours.items():
        counts[int(key[1:])] = n
    return ArrivalDay(day=iso, hours=counts)


def at(iso_day: str, hour: int, minute: int = 0) -> datetime:
    d = date.fromisoformat(iso_day)
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=UTC)


# ---------------------------------------------------------------- record_arrivals


def test_record_counts_arrivals_per_utc_hour() -> None:
    got = warmup.record_arrivals(
        [], [at("2024-05-08", 9, 5), at("2024-05-08", 9, 50), at("2024-05-08", 11)], now=NOW,
        keep=7,
    )  # fmt: skip
    assert got == [day("2024-05-08", h9=2, h11=1)]


def test_record_is_idempotent_and_never_lowers_a_count() -> None:
    stored = [day("2024-05-08", h9=5)]
    again = warmup.record_arrivals(stored, [at("2024-05-08", 9), at("2024-05-08", 10)], now=NOW,
                                   keep=7)  # fmt: skip
    assert again == [day("2024-05-08", h9=5, h10=1)]
    assert warmup.record_arrivals(again, [at("2024-05-08", 10)], now=NOW, keep=7) == again


def test_record_keeps_today_and_keep_days_back_oldest_first() -> None:
    stored = [day("2024-04-30", h1=1), day("2024-05-01", h1=1), day("2024-05-07", h1=1)]
    got = warmup.record_arrivals(stored, [at("2024-05-08", 1)], now=NOW, keep=7)
    assert [d.day for d in got] == ["2024-05-01", "2024-05-07", "2024-05-08"]


def test_record_ignores_future_times() -> None:
    assert warmup.record_arrivals([], [NOW + timedelta(minutes=1)], now=NOW, keep=7) == []


# ---------------------------------------------------------------- busy_hours


@pytest.mark.parametrize(
    ("days", "coverage", "expected"),
    [
        pytest.param([], 0.95, None, id="nothing-known"),
        pytest.param([day("2024-05-08", h9=10)], 0.95, None, id="only-today-is-not-whole"),
        pytest.param([day("2024-05-07")], 0.95, frozenset(), id="a-quiet-day-nothing-warm"),
        pytest.param([day("2024-05-07", h9=6, h10=3, h3=1)], 0.9, frozenset({9, 10}),
                     id="busiest-first"),
        pytest.param([day("2024-05-07", h9=6, h10=3, h3=1)], 0.95, frozenset({9, 10, 3}),
                     id="more-coverage-more-hours"),
        pytest.param([day("2024-05-07", h9=6, h10=3, h3=1)], 0.5, frozenset({9}),
                     id="half"),
        pytest.param([day("2024-05-06", h9=1), day("2024-05-07", h10=2)], 0.6,
                     frozenset({10}), id="summed-over-days"),
        pytest.param([day("2024-05-07", h4=1, h5=1)], 0.5, frozenset({4}), id="tie-earlier"),
    ],
)  # fmt: skip
def test_busy_hours(
    days: list[ArrivalDay], coverage: float, expected: frozenset[int] | None
) -> None:
    assert warmup.busy_hours(days, coverage=coverage, today=NOW.date()) == expected


@pytest.mark.parametrize(
    ("now", "lead", "expected"),
    [
        pytest.param(at("2024-05-08", 9, 30), timedelta(0), True, id="inside"),
        pytest.param(at("2024-05-08", 8, 55), timedelta(minutes=10), True, id="lead-before"),
        pytest.param(at("2024-05-08", 8, 40), timedelta(minutes=10), False, id="too-early"),
        pytest.param(at("2024-05-08", 11, 0), timedelta(minutes=10), False, id="after"),
        pytest.param(at("2024-05-08", 7, 30), timedelta(hours=2), True, id="long-lead"),
    ],
)
def test_learned_warm(now: datetime, lead: timedelta, expected: bool) -> None:
    assert warmup.learned_warm(frozenset({9, 10}), now=now, lead=lead) is expected


# ---------------------------------------------------------------- the warm floor


def pool(**warm: object) -> GpuPoolSpec:
    return GpuPoolSpec.model_validate(
        {"replicas": 0, "maxReplicas": 3, "warmup": {"replicas": 1, **warm}}
    )


WEEK = [day(f"2024-05-0{d}", h9=5, h10=5, h12=5, h13=5, h3=1) for d in range(1, 8)]


@pytest.mark.parametrize(
    ("spec", "now", "recent", "expected"),
    [
        pytest.param(pool(coverage=0.9), at("2024-05-08", 12, 30), [], 1,
                     id="busy-hour-warm-without-recent-jobs"),
        pytest.param(pool(coverage=0.9), at("2024-05-08", 3, 30), [at("2024-05-08", 3, 10)], 0,
                     id="quiet-hour-cold-despite-a-recent-job"),
        pytest.param(pool(coverage=0.9), at("2024-05-08", 8, 52), [], 1, id="warm-ahead"),
        pytest.param(pool(coverage=0.9, lead="0s"), at("2024-05-08", 8, 52), [], 0,
                     id="no-lead"),
        pytest.param(pool(coverage=0), at("2024-05-08", 3, 30), [at("2024-05-08", 3, 10)], 1,
                     id="coverage-0-is-the-rate-rule"),
        pytest.param(pool(), at("2024-05-08", 12, 30), [], 1, id="learned-by-default"),
    ],
)  # fmt: skip
def test_warm_floor_learned(
    spec: GpuPoolSpec, now: datetime, recent: list[datetime], expected: int
) -> None:
    assert warmup.warm_floor(spec, recent, now=now, arrival_days=WEEK) == expected


def test_warm_floor_falls_back_to_the_rate_rule_until_a_whole_day_is_known() -> None:
    today_only = [day("2024-05-08", h3=1)]
    recent = [at("2024-05-08", 3, 10)]
    spec = pool(coverage=0.9)
    assert (
        warmup.warm_floor(spec, recent, now=at("2024-05-08", 3, 30), arrival_days=today_only) == 1
    )
    assert warmup.warm_floor(spec, [], now=at("2024-05-08", 3, 30), arrival_days=today_only) == 0


def test_an_unused_pool_stops_following_its_history() -> None:
    """No job in the last 24 hours: the busy hours of last week keep nothing warm."""
    stale = WEEK[:-2]  # the last arrivals were on 2024-05-06
    spec = pool(coverage=0.9)
    assert warmup.warm_floor(spec, [], now=at("2024-05-08", 12, 30), arrival_days=stale) == 0
    assert warmup.warm_floor(spec, [], now=at("2024-05-08", 12, 30), arrival_days=WEEK) == 1


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        pytest.param(at("2024-05-07", 12, 30), 5 + 1, id="last-24h"),
        pytest.param(at("2024-05-07", 13, 0), 5 + 1, id="hour-ending-after-counts"),
        pytest.param(at("2024-05-07", 14, 0), 1, id="hour-ended-before"),
        pytest.param(at("2024-05-09", 0, 0), 0, id="future"),
    ],
)
def test_arrived_since(since: datetime, expected: int) -> None:
    days = [day("2024-05-07", h9=5, h13=5), day("2024-05-08", h3=1)]
    assert warmup.arrived_since(days, since) == expected
