"""T1: the Vast.ai credit drop against the spend the operator counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warmpool.operator.decisions import drift
from warmpool.operator.decisions.drift import BalanceSample

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def at(minutes_ago: float, credit: float, accounted: float) -> BalanceSample:
    return BalanceSample(NOW - timedelta(minutes=minutes_ago), credit, accounted)


@pytest.mark.parametrize(
    ("samples", "drift_", "exceeded", "reason"),
    [
        pytest.param([], 0.0, False, drift.MEASURING, id="no-sample"),
        pytest.param([at(0, 100, 0)], 0.0, False, drift.MEASURING, id="one-sample"),
        pytest.param([at(30, 100, 1.0), at(0, 96, 5.0)], 0.0, False, drift.RECONCILED,
                     id="drop-matches-the-count"),
        pytest.param([at(30, 100, 1.0), at(0, 90, 5.0)], 6.0, True, drift.DRIFT,
                     id="the-account-paid-more"),
        pytest.param([at(30, 100, 1.0), at(0, 99, 12.0)], -10.0, True, drift.DRIFT,
                     id="the-operator-counted-more"),
        pytest.param([at(30, 100, 0.0), at(0, 95, 0.0)], 5.0, False, drift.RECONCILED,
                     id="exactly-the-threshold"),
        pytest.param([at(90, 200, 0.0), at(30, 100, 1.0), at(0, 96, 5.0)], 0.0, False,
                     drift.RECONCILED, id="older-than-the-window-forgotten"),
        pytest.param([at(40, 50, 0.0), at(30, 150, 1.0), at(0, 146, 5.0)], 0.0, False,
                     drift.RECONCILED, id="a-top-up-restarts-the-window"),
        pytest.param([at(20, 150, 0.0), at(10, 151, 1.0)], 0.0, False, drift.MEASURING,
                     id="only-a-top-up-left"),
        pytest.param([at(0, 100, 0.0), at(0, 90, 0.0)], 10.0, True, drift.DRIFT,
                     id="same-instant"),
    ],
)  # fmt: skip
def test_assess_drift(
    samples: list[BalanceSample], drift_: float, exceeded: bool, reason: str
) -> None:
    verdict = drift.assess_drift(samples, now=NOW, window=HOUR, threshold=5.0)
    assert (verdict.drift, verdict.exceeded, verdict.reason) == (
        pytest.approx(drift_),
        exceeded,
        reason,
    )


def test_a_new_utc_day_restarts_the_window() -> None:
    """The operator's count is per UTC day: samples of yesterday are not compared with
    today's (the count fell to 0 at midnight, which would look like a refund)."""
    midnight = datetime(2024, 5, 2, tzinfo=UTC)
    samples = [
        BalanceSample(midnight - timedelta(minutes=20), 100.0, 40.0),
        BalanceSample(midnight + timedelta(minutes=5), 98.0, 1.0),
        BalanceSample(midnight + timedelta(minutes=10), 97.0, 2.0),
    ]
    now = midnight + timedelta(minutes=10)
    assert drift.keep_samples(samples, now=now, window=HOUR) == samples[1:]
    verdict = drift.assess_drift(samples, now=now, window=HOUR, threshold=0.5)
    assert (verdict.drift, verdict.reason) == (pytest.approx(0.0), drift.RECONCILED)
    assert verdict.span == timedelta(minutes=5)


def test_the_message_names_both_figures() -> None:
    verdict = drift.assess_drift(
        [at(30, 100, 1.0), at(0, 90, 5.0)], now=NOW, window=HOUR, threshold=5.0
    )
    assert verdict.message == (
        "over 30 min the Vast.ai credit dropped $10.00, the operator counted $4.00"
        " (drift $+6.00, threshold $5.00)"
    )


def test_min_span() -> None:
    samples = [at(2, 100, 0.0), at(0, 50, 0.0)]
    early = drift.assess_drift(
        samples, now=NOW, window=HOUR, threshold=1.0, min_span=timedelta(minutes=5)
    )
    assert early.reason == drift.MEASURING
