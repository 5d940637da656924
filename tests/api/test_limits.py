"""The limits' pure arithmetic and the in-process stores (T1): the sliding window counter,
failed sign-ins, and queue-slot admission under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import pytest

from warmpool.api import limits, slots
from warmpool.api.limits import FailureLimiter, RateLimiter
from warmpool.api.slots import MemorySlots

ONE_S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("limit", "previous", "now", "expected"),
    [
        (10, 0, 120.0, 10),
        (10, 10, 120.0, 0),  # the minute just ended counts in full
        (10, 10, 150.0, 5),  # half of it lies within the last 60 s
        (10, 10, 179.9, 9),  # almost none of it, but a trace is a whole request
        (10, 30, 150.0, 0),  # never below zero
        (3, 1, 121.0, 2),  # a part of a request is a whole one
    ],
    ids=["nothing-before", "full-previous", "half-previous", "previous-gone", "floor", "ceil"],
)
def test_allowance(limit: int, previous: int, now: float, expected: int) -> None:
    assert limits.allowance(limit, previous, now) == expected


@pytest.mark.parametrize(
    ("limit", "previous", "current", "now", "expected"),
    [
        (2, 0, 2, 30.0, 60),  # next window, when the two weigh half
        (2, 2, 0, 60.0, 30),  # this window, once half of the previous is gone
        (2, 2, 1, 90.0, 30),  # the rest of this window
        (5, 0, 1, 10.0, 1),  # room now: at least a second
    ],
    ids=["into-next-window", "later-this-window", "window-end", "at-least-one"],
)
def test_retry_after(limit: int, previous: int, current: int, now: float, expected: int) -> None:
    assert limits.retry_after(limit, previous, current, now) == expected


def test_retry_after_is_when_the_allowance_grows() -> None:
    """Waiting what retry_after says always leaves room (checked over a grid)."""
    for previous in range(0, 8):
        for current in range(0, 8):
            for tenth in range(0, 600, 7):
                now = 600.0 + tenth / 10
                wait = limits.retry_after(5, previous, current, now)
                later = now + wait
                if limits.window_of(later) == limits.window_of(now):
                    assert current < limits.allowance(5, previous, later)
                elif limits.window_of(later) == limits.window_of(now) + 1:
                    assert limits.allowance(5, current, later) > 0


async def test_a_refused_request_is_not_counted() -> None:
    now = [600.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert [await limiter.hit("ada") for _ in range(5)][:2] == [0, 0]
    now[0] = 690.0  # next window, half of the previous (2, not 5) still counted
    assert await limiter.hit("ada") == 0


async def test_failures_block_each_key_that_reached_the_limit() -> None:
    now = [600.0]
    failures = FailureLimiter(2, clock=lambda: now[0])
    await failures.failed("client:1", "name:ada")
    assert await failures.blocked("client:1") == 0
    await failures.failed("client:1")
    assert await failures.blocked("client:1") > 0
    assert await failures.blocked("client:2", "name:ada") == 0
    assert await failures.blocked("client:2", "client:1") > 0  # any key blocks
    now[0] = 600.0 + 120  # two windows on: forgotten
    assert await failures.blocked("client:1") == 0


def test_unfinished_counts_recent_admissions_the_watch_has_not_seen() -> None:
    """run-1 is seen unfinished (counted once), done-1 seen ended (not counted), new-1
    not seen yet (counted)."""
    seen = {"run-1", "done-1"}.__contains__
    assert slots.unfinished(["run-1"], ["run-1", "new-1", "done-1"], seen) == 2
    assert slots.unfinished([], ["new-1", "new-2"], seen) == 2
    assert slots.unfinished(["run-1", "run-2"], [], seen) == 2


async def test_memory_slots_expire_oldest_first_and_keep_the_rest() -> None:
    """Slots leave after the horizon, in admission order; a clock that steps back a
    little keeps the order (and the slot) rather than expiring a newer one early."""
    store = MemorySlots()
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    recents: list[set[str]] = []

    async def count(recent: Collection[str]) -> int:
        recents.append(set(recent))
        return len(recent)

    for i in range(5):
        assert await store.reserve("ada", f"j{i}", limit=99, count=count, now=t0 + i * ONE_S)
    assert await store.reserve("ada", "back", limit=99, count=count, now=t0)  # clock stepped
    later = t0 + slots.HORIZON + 2.5 * ONE_S
    assert await store.reserve("ada", "x", limit=99, count=count, now=later)
    assert recents[-1] == {"j3", "j4", "back"}


async def test_memory_slots_admit_exactly_the_limit_at_once() -> None:
    """Twenty submissions of one user at the same moment, limit 3: three places. The
    count awaits (as the API listing does), so without the lock all twenty would pass."""
    store = MemorySlots()
    now = datetime(2030, 1, 1, tzinfo=UTC)

    async def count(recent: Collection[str]) -> int:
        await asyncio.sleep(0)
        return len(recent)

    admitted = await asyncio.gather(
        *(store.reserve("ada", f"j{i}", limit=3, count=count, now=now) for i in range(20))
    )
    assert sum(admitted) == 3
    await store.release("j0")  # a create that failed gives its place back
    assert await store.reserve("ada", "j20", limit=3, count=count, now=now)
    assert await store.reserve("bob", "b0", limit=3, count=count, now=now)  # per user
    later = now + slots.HORIZON + timedelta(seconds=1)  # the watch has them by now
    assert await store.reserve("ada", "j21", limit=3, count=count, now=later)
