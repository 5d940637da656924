"""The watchdog of a job's attempt: stalls, a silent instance, an end never announced.

:func:`watch` runs beside the follower of a :class:`.runner.Run` and returns when the
attempt must end otherwise: ``stalled`` (a silent websocket and an unchanged ComfyUI
queue for ``stallTimeout``), ``instance_lost`` (ComfyUI stopped answering, or the prompt
is neither queued, running nor in the history), or ``finished`` (in the history, its end
never seen). It also renews the lease of a job whose writes are far apart. A busy
neighbour on the same instance (the shared ``activity``) shows the instance is alive: a
prompt queued behind it is waiting, not stalled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from warmpool.crds.common import format_time, parse_duration
from warmpool.operator import errors
from warmpool.operator.adapters import comfy
from warmpool.operator.controllers.jobs.facts import InstanceFacts, PoolFacts, lease_end
from warmpool.operator.controllers.jobs.ledger import InstanceKey
from warmpool.operator.controllers.jobs.outcomes import JobWriter
from warmpool.operator.deps import Deps


class Run(Protocol):
    """What the watchdog reads of an attempt (:class:`.runner.Run`); it renews the lease
    through the writer and moves ``last_activity`` when ComfyUI's queue moves."""

    deps: Deps
    client: comfy.ComfyClient | None
    pool: PoolFacts
    inst: InstanceFacts
    ns: str
    writer: JobWriter
    monotonic: Callable[[], float]
    activity: dict[InstanceKey, float]
    last_activity: float
    submitted: bool
    prompt_id: str


#: Time-out of each look at the instance (queue, history).
QUICK = 3.0


async def watch(run: Run) -> tuple[str, str]:
    """A silent websocket and an unchanged ComfyUI queue for ``stallTimeout`` → stall.

    Also ``("finished", "")`` when the prompt is in the history but its end never
    came over the websocket (ComfyUI keeps no replay: an end sent while the socket was
    reconnecting is announced to nobody).
    """
    client = run.client
    assert client is not None
    stall = parse_duration(run.pool.jobs.stall_timeout).total_seconds()
    tick = min(max(stall / 5, 0.05), 0.5)
    early = min(1.0, stall / 2)
    snapshot: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    key = (run.ns, run.inst.name)
    while True:
        await asyncio.sleep(tick)
        if run.writer.last_write and run.monotonic() - run.writer.last_write >= (
            run.pool.jobs.lease_seconds / 3
        ):
            run.writer.enqueue({"leaseExpiresAt": format_time(lease_end(run.deps.now(), run.pool))})
        silent = run.monotonic() - max(run.last_activity, run.activity.get(key, 0.0))
        if not run.submitted:  # not accepted yet (run_prompt's own time-outs apply)
            continue
        if silent < early:
            snapshot = None
            continue
        try:
            queue = await asyncio.wait_for(client.queue_state(), QUICK)
        except (errors.ComfyError, TimeoutError) as exc:
            if silent >= stall:
                return "instance_lost", f"ComfyUI stopped answering: {exc}"
            continue
        if run.prompt_id not in queue.running and run.prompt_id not in queue.pending:
            with contextlib.suppress(errors.ComfyError, TimeoutError):
                if await asyncio.wait_for(client.history(run.prompt_id), QUICK):
                    return "finished", ""
            if silent >= stall:
                return "instance_lost", "the prompt is neither queued nor running any more"
            continue
        if silent < stall / 2:
            continue
        state = (queue.running, queue.pending)
        if snapshot != state:
            if snapshot is not None:
                run.last_activity = run.monotonic()
            snapshot = state
        elif silent >= stall:
            return "stalled", f"no progress for {run.pool.jobs.stall_timeout}"
