"""Spend reconciled with the Vast.ai account: does the credit drop match what we counted?

Pure: samples in, a verdict out; ``now`` is passed in. Every check the operator takes one
:class:`BalanceSample`: the account's credit left (``GET /users/current/``) and the
dollars every served pool spent today by the operator's own count
(:func:`budget.spend_today` summed, the figure of the operator-wide cap). Over the
window, the account's drop minus the operator's count is the *drift*: positive when the
account paid more than the operator counted (rentals it does not know about on the same
account, bandwidth, a price it did not expect), negative when it counted more (it accrues
from the rental, Vast.ai bills compute only once running).

A rise of the credit is a top-up, and a new UTC day resets the operator's count: both
start the window afresh (:func:`keep_samples`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: Condition ``SpendReconciled`` reasons (stable words; also the metric and event words).
RECONCILED = "Reconciled"
DRIFT = "SpendDrift"
MEASURING = "Measuring"

_EPSILON = 1e-6


@dataclass(frozen=True)
class BalanceSample:
    """One look at the account and at the operator's own count."""

    at: datetime
    credit: float
    """Dollars left on the Vast.ai account."""
    accounted: float
    """Dollars every served pool spent today (UTC), by the operator's count."""


@dataclass(frozen=True)
class DriftVerdict:
    """The drift over the window and whether it is past the threshold."""

    drift: float
    """Account drop minus the operator's count, dollars (0 while measuring)."""
    exceeded: bool
    reason: str
    """``Reconciled``, ``SpendDrift`` or ``Measuring``."""
    message: str
    span: timedelta = timedelta(0)
    """Time between the first and the last sample compared."""


def _day(when: datetime) -> str:
    return when.astimezone(UTC).date().isoformat()


def keep_samples(
    samples: Sequence[BalanceSample], *, now: datetime, window: timedelta
) -> list[BalanceSample]:
    """The samples worth comparing: within ``window`` of ``now``, of the last sample's UTC
    day, and after the last top-up (a sample whose credit rose over the one before)."""
    kept = [s for s in samples if now - window <= s.at <= now]
    if not kept:
        return []
    day = _day(kept[-1].at)
    kept = [s for s in kept if _day(s.at) == day]
    start = 0
    for i in range(1, len(kept)):
        if kept[i].credit > kept[i - 1].credit + _EPSILON:
            start = i
    return kept[start:]


def assess_drift(
    samples: Sequence[BalanceSample],
    *,
    now: datetime,
    window: timedelta,
    threshold: float,
    min_span: timedelta = timedelta(0),
) -> DriftVerdict:
    """Compare the first and the last of :func:`keep_samples`: drift past ``threshold``
    dollars (either way) is ``SpendDrift``; fewer than two samples, or less than
    ``min_span`` between them, is ``Measuring``."""
    kept = keep_samples(samples, now=now, window=window)
    if len(kept) < 2 or kept[-1].at - kept[0].at < min_span:
        return DriftVerdict(0.0, False, MEASURING, "not enough balance samples yet")
    first, last = kept[0], kept[-1]
    dropped = first.credit - last.credit
    counted = last.accounted - first.accounted
    drift = dropped - counted
    span = last.at - first.at
    minutes = span.total_seconds() / 60
    text = (
        f"over {minutes:.0f} min the Vast.ai credit dropped ${dropped:.2f}, the operator"
        f" counted ${counted:.2f} (drift ${drift:+.2f}, threshold ${threshold:.2f})"
    )
    if abs(drift) > threshold + _EPSILON:
        return DriftVerdict(drift, True, DRIFT, text, span)
    return DriftVerdict(drift, False, RECONCILED, text, span)
