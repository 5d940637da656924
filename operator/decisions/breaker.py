"""The pool's circuit breaker over recent rental outcomes. Pure.

Rentals that keep failing (a bad image, a market of broken hosts) open the breaker:
no rental for a backoff that doubles per consecutive failure; then one trial
(half-open); a success closes it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from warmpool.crds.common import format_time, parse_time
from warmpool.crds.gpupool import RentalOutcome

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


def message(breaker: Breaker) -> str:
    """The breaker's state in words (conditions and events)."""
    text = (
        f"{breaker.failed} of {breaker.window} recent rentals failed,"
        f" {breaker.consecutive} in a row"
    )
    if breaker.reasons:
        text += f" ({breaker.reasons})"
    if breaker.until is not None:
        text += f"; next attempt after {format_time(breaker.until)}"
    return text
