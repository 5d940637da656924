"""A daemon's pause (:func:`pause.pause`) ends on its stop flag, a wake-up or its timeout,
and a cancellation stays a cancellation: Kopf's own ``stopped.wait(timeout)`` can end a
cancelled daemon with ``TimeoutError`` when the cancel falls on its timeout, and Kopf
re-raised that out of the operator at its exit (seen in its logs: issue 16's flaky
shutdown)."""

from __future__ import annotations

import asyncio

import pytest
from kopf._cogs.aiokits.aioenums import AsyncFlagWaiter, FlagSetter
from kopf._core.intents.stoppers import DaemonStoppingReason

from warmpool.operator.controllers.pause import pause


def flag() -> tuple[FlagSetter[DaemonStoppingReason], AsyncFlagWaiter[DaemonStoppingReason]]:
    setter: FlagSetter[DaemonStoppingReason] = FlagSetter()
    return setter, AsyncFlagWaiter(setter)


def others() -> set[asyncio.Task[object]]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


async def test_the_pause_ends_after_its_seconds_when_nothing_happens() -> None:
    _, stopped = flag()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await pause(stopped, 0.05)
    assert loop.time() - started >= 0.04
    assert not stopped
    assert not others()


async def test_the_stop_flag_ends_the_pause_at_once() -> None:
    setter, stopped = flag()
    task = asyncio.ensure_future(pause(stopped, 3600))
    await asyncio.sleep(0)
    assert not task.done()
    setter.set(DaemonStoppingReason.OPERATOR_EXITING)
    await asyncio.wait_for(task, 5)
    assert not others()


async def test_a_wake_ends_the_pause_at_once_and_a_set_one_does_not_wait() -> None:
    _, stopped = flag()
    wake = asyncio.Event()
    task = asyncio.ensure_future(pause(stopped, 3600, wake))
    await asyncio.sleep(0)
    wake.set()
    await asyncio.wait_for(task, 5)
    await asyncio.wait_for(pause(stopped, 3600, wake), 5)
    assert not stopped


async def test_a_negative_pause_returns() -> None:
    _, stopped = flag()
    await asyncio.wait_for(pause(stopped, -1.0), 5)


async def test_a_cancelled_pause_raises_cancelled_and_leaves_no_task_behind() -> None:
    _, stopped = flag()
    wake = asyncio.Event()
    task = asyncio.ensure_future(pause(stopped, 3600, wake))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not others()


@pytest.mark.parametrize("offset", [-0.002, -0.001, 0.0, 0.001, 0.002])
async def test_a_cancel_that_falls_on_the_timeout_is_never_a_timeout_error(offset: float) -> None:
    _, stopped = flag()
    loop = asyncio.get_running_loop()
    outcomes: set[str] = set()
    for _ in range(40):
        task = asyncio.ensure_future(pause(stopped, 0.005))
        loop.call_later(0.005 + offset, task.cancel)
        try:
            await task
            outcomes.add("ended")
        except asyncio.CancelledError:
            outcomes.add("cancelled")
        except TimeoutError:  # what Kopf's stopped.wait(0.005) can end with here
            outcomes.add("timeout")
    assert "timeout" not in outcomes
    assert outcomes <= {"ended", "cancelled"}
