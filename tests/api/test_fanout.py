"""The progress fan-out (``api/fanout.py``): one delivery task per job writes each change
to every stream; a client that stops reading is closed, the others go on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from waiting import eventually

from warmpool.api import fanout as fanout_module
from warmpool.api import jobs
from warmpool.api.fanout import Fanout, SlowClientError, encode_with
from warmpool.api.hub import Hub, JobEvent

NS = "default"


def job(phase: str, value: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "warmpool.dev/v1alpha1",
        "kind": "GenerationJob",
        "metadata": {"name": "j1", "namespace": NS, "uid": "u1"},
        "spec": {"pool": "sdxl", "prompt": "p", "owner": "ada"},
        "status": {"phase": phase, "progress": {"value": value, "max": 10}},
    }


class FakeKube:
    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj

    async def get(self, *args: Any) -> dict[str, Any]:
        return self.obj


class Sink:
    def __init__(self, *, stall: bool = False) -> None:
        self.bodies: list[bytes] = []
        self.stall = stall

    async def __call__(self, message: dict[str, Any]) -> None:
        if self.stall and self.bodies:  # takes the first write, then never again
            await asyncio.Event().wait()
        self.bodies.append(message["body"])


async def test_each_change_reaches_every_stream_and_a_stalled_one_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout_module, "SEND_TIMEOUT", 0.05)
    hub = Hub(FakeKube(job("Queued")), NS)  # type: ignore[arg-type]
    fan = Fanout(hub, encode_with(jobs.progress_of))
    sinks = [Sink(), Sink(), Sink(stall=True)]
    streams = [asyncio.create_task(fan.stream("j1", sink)) for sink in sinks]
    await eventually(lambda: all(s.bodies for s in sinks), timeout=10, what="snapshots")
    assert hub.listener_count == 1  # one per job, not per stream

    hub.publish(JobEvent("MODIFIED", job("Running", 5)))
    await eventually(lambda: len(sinks[0].bodies) == 2, timeout=10, what="the change")
    with pytest.raises(SlowClientError):
        await asyncio.wait_for(streams[2], timeout=10)  # the stalled client is let go
    hub.publish(JobEvent("MODIFIED", job("Succeeded", 10)))
    await asyncio.wait_for(asyncio.gather(*streams[:2]), timeout=10)

    for sink in sinks[:2]:
        phases = [b.split(b'"phase": "')[1].split(b'"')[0] for b in sink.bodies]
        assert phases == [b"Queued", b"Running", b"Succeeded", b"Succeeded"]
        assert sink.bodies[-1].startswith(b"event: done")
    assert hub.listener_count == 0 and fan.streams == 0  # all gone with the streams
