"""Simulated time for the simulators: real time multiplied by a time-scale factor.

With ``time_scale=60`` a one-minute boot takes one real second. Simulators read
``clock.now()`` (simulated seconds since the epoch) and sleep with
``await clock.sleep(simulated_seconds)``; tests may inject a clock whose time
they move by hand (:class:`ManualClock`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """What a simulator needs from time."""

    time_scale: float

    def now(self) -> float:
        """Simulated seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of simulated time."""
        ...


class ScaledClock:
    """Simulated time running ``time_scale`` times faster than the wall clock."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self._origin_wall = time.time()
        self._origin_mono = time.monotonic()

    def now(self) -> float:
        elapsed = time.monotonic() - self._origin_mono
        return self._origin_wall + elapsed * self.time_scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.time_scale)


class ManualClock:
    """A clock that only moves when told to; sleepers wake when time passes them."""

    def __init__(self, start: float = 1_764_000_000.0) -> None:
        self.time_scale = 1.0
        self._now = start
        self._changed = asyncio.Condition()

    def now(self) -> float:
        return self._now

    async def advance(self, seconds: float) -> None:
        self._now += seconds
        async with self._changed:
            self._changed.notify_all()

    async def sleep(self, seconds: float) -> None:
        wake_at = self._now + max(0.0, seconds)
        async with self._changed:
            await self._changed.wait_for(lambda: self._now >= wake_at)
