"""Per-minute limits: requests per user, failed sign-ins per client address and user name.

Both count in windows of one minute and judge with the *sliding window counter*: the
previous minute's count, weighted by how much of it still lies within the last 60 s, plus
the current minute's count (so a burst at a minute's end does not double the limit at the
next one's start). The arithmetic is the pure functions below; the counts live in a
:class:`Counters` store:

- :class:`MemoryCounters`, in this process: one studio replica (SQLite records; the chart
  refuses more replicas with SQLite);
- ``records.shared.DbCounters``, in the records database (PostgreSQL): every replica
  counts in the same rows, and an admission is one atomic statement (an upsert that only
  increments below the allowance), so two replicas admitting the same user's request at
  the same moment cannot both take the last place.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

WINDOW_SECONDS = 60.0


# ------------------------------------------------------------------ the arithmetic (pure)


def window_of(now: float) -> int:
    """The window (Unix minute) ``now`` falls in."""
    return int(now // WINDOW_SECONDS)


def previous_weight(now: float) -> float:
    """The share of the previous window still within the last minute."""
    return 1.0 - (now % WINDOW_SECONDS) / WINDOW_SECONDS


def allowance(limit: int, previous: int, now: float) -> int:
    """How many the current window may hold now, given the previous window's count."""
    return max(0, limit - math.ceil(previous * previous_weight(now) - 1e-9))


def retry_after(limit: int, previous: int, current: int, now: float) -> int:
    """Whole seconds (at least 1) until one more fits, if nothing else is counted."""
    into = now % WINDOW_SECONDS
    room = limit - current - 1  # needs previous × weight ≤ room
    if room >= 0:
        at = WINDOW_SECONDS * (1 - room / previous) if previous else 0.0
        if at < WINDOW_SECONDS:
            return max(1, math.ceil(at - into))
    # In the next window the current count is the previous one.
    at = WINDOW_SECONDS * (1 - (limit - 1) / current) if current > limit - 1 else 0.0
    return max(1, math.ceil(WINDOW_SECONDS - into + at))


# ------------------------------------------------------------------ the stores


class Counters(Protocol):
    """Counts per (key, window)."""

    async def counts(self, key: str, windows: tuple[int, int]) -> tuple[int, int]:
        """The counts of ``key`` in the two windows (0 when none)."""
        ...

    async def take(self, key: str, window: int, allowed: int) -> bool:
        """Count one more in ``window`` if it holds fewer than ``allowed``, atomically."""
        ...

    async def add(self, keys: Sequence[str], window: int) -> None:
        """Count one more for each key, unconditionally."""
        ...


class MemoryCounters:
    """:class:`Counters` in this process (one replica)."""

    def __init__(self, *, max_keys: int = 20000) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._max_keys = max_keys
        self._window = 0

    def _prune(self, window: int) -> None:
        if window != self._window or len(self._counts) >= self._max_keys:
            self._window = window
            for k in [k for k in self._counts if k[1] < window - 1]:
                del self._counts[k]

    async def counts(self, key: str, windows: tuple[int, int]) -> tuple[int, int]:
        return self._counts.get((key, windows[0]), 0), self._counts.get((key, windows[1]), 0)

    async def take(self, key: str, window: int, allowed: int) -> bool:
        self._prune(window)
        have = self._counts.get((key, window), 0)
        if have >= allowed:
            return False
        self._counts[(key, window)] = have + 1
        return True

    async def add(self, keys: Sequence[str], window: int) -> None:
        self._prune(window)
        for key in keys:
            self._counts[(key, window)] = self._counts.get((key, window), 0) + 1


# ------------------------------------------------------------------ the limiters


class RateLimiter:
    """``await hit(key)`` counts a request: 0 when allowed, else the seconds to wait (for
    ``Retry-After``); a refused request is not counted."""

    def __init__(
        self,
        per_minute: int,
        counters: Counters | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_minute = per_minute
        self.counters: Counters = counters or MemoryCounters()
        self._clock = clock

    async def hit(self, key: str) -> int:
        now = self._clock()
        window = window_of(now)
        key = f"rate:{key}"
        previous, current = await self.counters.counts(key, (window - 1, window))
        allowed = allowance(self.per_minute, previous, now)
        if current < allowed and await self.counters.take(key, window, allowed):
            return 0
        return retry_after(self.per_minute, previous, max(current, allowed), now)


class FailureLimiter:
    """Failed sign-ins counted per key (a client address, a user name):
    ``await blocked(*keys)`` gives the seconds to wait once any key reached the limit."""

    def __init__(
        self,
        per_minute: int,
        counters: Counters | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_minute = per_minute
        self.counters: Counters = counters or MemoryCounters()
        self._clock = clock

    async def blocked(self, *keys: str) -> int:
        now = self._clock()
        window = window_of(now)
        waits = [0]
        for key in keys:
            previous, current = await self.counters.counts(f"fail:{key}", (window - 1, window))
            if current >= allowance(self.per_minute, previous, now):
                waits.append(retry_after(self.per_minute, previous, current, now))
        return max(waits)

    async def failed(self, *keys: str) -> None:
        await self.counters.add([f"fail:{k}" for k in keys], window_of(self._clock()))
