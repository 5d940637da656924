"""Waiting on conditions with a deadline (never sleeping to let things settle).

``tests/support`` is on ``sys.path`` through pytest's ``pythonpath`` option (the
repository root never is), so tests ``from waiting import eventually``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None] | T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
    state: Callable[[], object] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy; fail after ``timeout`` seconds.

    The failure shows the probe's last answer; a probe that answers a bare ``False``
    hides what the test waited on, so ``state()`` (when given) is shown too: the phases,
    the status, the rentals seen last."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        last = result
        if loop.time() >= deadline:
            extra = f"; state: {state()!r}" if state is not None else ""
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}; last: {last!r}{extra}"
            )
        await asyncio.sleep(interval)


async def progressing(
    count: Callable[[], int],
    goal: int,
    *,
    stall: float = 30.0,
    interval: float = 0.2,
    what: str = "progress",
    state: Callable[[], object] | None = None,
) -> None:
    """Wait until ``count()`` reaches ``goal``; fail when it stops growing for ``stall`` s.

    For work whose total time is CPU time (hundreds of jobs through one process): on a
    loaded machine it takes longer but keeps moving, and a hang still fails after
    ``stall`` seconds. The failure names the last count and ``state()`` when given.
    """
    loop = asyncio.get_running_loop()
    best, moved = -1, loop.time()
    while True:
        now = count()
        if now >= goal:
            return
        if now > best:
            best, moved = now, loop.time()
        elif loop.time() - moved >= stall:
            extra = f"; {state()!r}" if state is not None else ""
            raise AssertionError(f"{what}: stuck at {now}/{goal} for {stall}s{extra}")
        await asyncio.sleep(interval)
