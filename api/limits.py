"""Per-user request rate limit: a sliding one-minute window kept in memory.

One studio replica keeps its own counts; with several replicas a user gets up to
``replicas × limit`` per minute, which is acceptable for a fairness limit (the
queued-jobs limit, counted from the cluster, is exact).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class RateLimiter:
    """``hit(user)`` returns 0 when allowed, else the seconds to wait (for ``Retry-After``)."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_users: int = 10000,
    ) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._max_users = max_users
        self._hits: dict[str, deque[float]] = {}

    def hit(self, user: str) -> int:
        now = self._clock()
        window = self._hits.get(user)
        if window is None:
            if len(self._hits) >= self._max_users:
                self._forget_idle(now)
            window = self._hits[user] = deque()
        while window and now - window[0] >= WINDOW_SECONDS:
            window.popleft()
        if len(window) >= self.per_minute:
            return max(1, math.ceil(WINDOW_SECONDS - (now - window[0])))
        window.append(now)
        return 0

    def _forget_idle(self, now: float) -> None:
        for name in [u for u, w in self._hits.items() if not w or now - w[-1] >= WINDOW_SECONDS]:
            del self._hits[name]


class FailureLimiter:
    """Failed sign-ins counted per key (a client address, a user name) over one minute:
    ``blocked(*keys)`` gives the seconds to wait once any key reached the limit."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10000,
    ) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def _window(self, key: str, now: float) -> deque[float] | None:
        window = self._failures.get(key)
        while window and now - window[0] >= WINDOW_SECONDS:
            window.popleft()
        return window

    def blocked(self, *keys: str) -> int:
        now = self._clock()
        waits = [
            max(1, math.ceil(WINDOW_SECONDS - (now - w[0])))
            for k in keys
            if (w := self._window(k, now)) and len(w) >= self.per_minute
        ]
        return max(waits, default=0)

    def failed(self, *keys: str) -> None:
        now = self._clock()
        if len(self._failures) >= self._max_keys:
            for key in [k for k, w in self._failures.items() if not w or now - w[-1] >= 60]:
                del self._failures[key]
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)
