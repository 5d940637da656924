"""A daemon's pause between two passes: until stopped, woken, or a number of seconds.

Not Kopf's ``stopped.wait(timeout)``: that one is an ``asyncio.wait_for`` with the
timeout inside, and when Kopf cancels a daemon (one it re-spawned at the operator's
exit, say, which never gets its stop flag) just as the timeout falls, the task ends with
``TimeoutError`` instead of ``CancelledError``. Kopf re-raises what a hung daemon ended
with, so the operator's exit failed. Here the timeout is asyncio.wait's own: reaching it
raises nothing, and a cancellation stays a cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib

import kopf


async def pause(stopped: kopf.DaemonStopped, seconds: float, *wakes: asyncio.Event) -> None:
    """Return once ``stopped`` is set, one of ``wakes`` is set, or ``seconds`` passed."""

    async def until_stopped() -> None:
        await stopped.wait()

    waiters: list[asyncio.Future[object]] = [asyncio.ensure_future(until_stopped())]
    waiters += [asyncio.ensure_future(wake.wait()) for wake in wakes]
    try:
        await asyncio.wait(waiters, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiters:
            task.cancel()
        for task in waiters:
            with contextlib.suppress(asyncio.CancelledError):
                await task
