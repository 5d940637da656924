"""Progress fan-out: one delivery task per watched job writes each change to every open
stream of it.

500 browsers watching one job: a task per stream, woken for every change, costs a queue
hand-over and a task switch per stream and change (≈ 20 µs each under load, most of the
fan-out's CPU; measured with ``bench/studio.py``). Here the job's one task takes the
change from its hub listener, encodes it once, and awaits each stream's ``send`` in turn:
a write to a socket with room completes without suspending, so a change costs a loop
over the streams. A stream whose client stopped reading (its transport paused for
:data:`SEND_TIMEOUT`) is closed rather than allowed to hold up the others any longer (the
deadline is per round of writes, one timer per change: a timer per write cost as much as
the writes).

A stream joins by sending its first snapshot itself (the hub's copy of the job), then
checks the hub's newest copy once more before it is marked ready — synchronously, so no
change can fall between its own writes and the task's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from starlette.types import Send

from warmpool.api import streams
from warmpool.api.hub import Hub, JobEvent, Listener
from warmpool.api.streams import SlowClientError
from warmpool.crds.generationjob import TERMINAL_PHASES

#: Seconds a paused client may hold one write before its stream is closed.
SEND_TIMEOUT = 2.0

Encode = Callable[[JobEvent], tuple[str, bytes]]


class _Stream:
    def __init__(self, send: Send) -> None:
        self.send = send
        self.last = b""
        self.ready = False
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def write(self, chunk: bytes) -> None:
        if chunk != self.last:
            self.last = chunk
            await self.send({"type": "http.response.body", "body": chunk, "more_body": True})


def _settle(stream: _Stream, error: Exception | None) -> None:
    if not stream.finished.done():
        if error is None:
            stream.finished.set_result(None)
        else:
            stream.finished.set_exception(error)


class _Job:
    """The streams of one job and the task delivering to them."""

    def __init__(self, fanout: Fanout, name: str) -> None:
        self.name = name
        self.streams: set[_Stream] = set()
        self.listener: Listener = fanout.hub.listen(name)
        self.task = asyncio.create_task(fanout._deliver(self), name=f"warmpool-fanout-{name}")


class Fanout:
    """Per job, the streams and their delivery task (``app.state.studio.fanout``)."""

    def __init__(self, hub: Hub, encode: Encode) -> None:
        self.hub = hub
        self.encode = encode
        self._jobs: dict[str, _Job] = {}

    @property
    def streams(self) -> int:
        return sum(len(j.streams) for j in self._jobs.values())

    async def stream(self, name: str, send: Send) -> None:
        """Write the job's ``progress`` events to ``send`` until its terminal phase (or its
        deletion), then ``done``."""
        job = self._jobs.get(name)
        if job is None:
            job = self._jobs[name] = _Job(self, name)
        stream = _Stream(send)
        job.streams.add(stream)  # joined before reading: nothing published is missed
        try:
            obj = await self.hub.current(name)
            phase = "Cancelled"
            while obj is not None:
                phase, chunk = self.encode(JobEvent("MODIFIED", obj))
                await stream.write(chunk)
                newest = self.hub.latest(name)
                if newest is None:  # deleted meanwhile
                    phase, chunk = self.encode(JobEvent("DELETED", obj))
                    await stream.write(chunk)
                    break
                if newest is not obj:
                    obj = newest
                    continue
                if phase in TERMINAL_PHASES or job.task.done():
                    break
                stream.ready = True  # the job's task writes from here (no await since check)
                await stream.finished
                return
            await stream.write(streams.encode("done", {"name": name, "phase": phase}))
        finally:
            job.streams.discard(stream)
            if not job.streams and self._jobs.get(name) is job:
                self._close(job)

    def _close(self, job: _Job) -> None:
        del self._jobs[job.name]
        job.task.cancel()
        self.hub.unlisten(job.listener)

    async def _deliver(self, job: _Job) -> None:
        phase = ""
        while phase not in TERMINAL_PHASES:
            change = await job.listener.queue.get()
            phase, chunk = self.encode(change)  # a deleted job's phase is Cancelled
            ended = phase in TERMINAL_PHASES
            done = streams.encode("done", {"name": job.name, "phase": phase}) if ended else b""
            ready = [s for s in job.streams if s.ready]
            at = 0
            while at < len(ready):
                try:
                    # One timer per round, not per write: a write to a socket with room
                    # never suspends; only a paused client's can run into the deadline.
                    async with asyncio.timeout(SEND_TIMEOUT):
                        while at < len(ready):
                            await ready[at].write(chunk)
                            if ended:
                                await ready[at].write(done)
                                _settle(ready[at], None)
                            at += 1
                except TimeoutError:
                    ready[at].ready = False
                    _settle(ready[at], SlowClientError(job.name))
                    at += 1

    async def close(self) -> None:
        """End every delivery task (shutdown)."""
        jobs = list(self._jobs.values())
        for job in jobs:
            self._close(job)
        for job in jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job.task


def encode_with(snapshot: Callable[[dict[str, Any], bool], dict[str, Any]]) -> Encode:
    """(phase, ``progress`` event) of a change, encoded once per change (``memo``)."""

    def encode(change: JobEvent) -> tuple[str, bytes]:
        memo = change.memo.get("progress")
        if memo is None:
            snap = snapshot(change.object, change.type == "DELETED")
            memo = change.memo["progress"] = (snap["phase"], streams.encode("progress", snap))
        phase, chunk = memo
        return phase, chunk

    return encode
