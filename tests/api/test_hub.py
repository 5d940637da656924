"""The studio's job hub (``api/hub.py``): the per-user counts of unfinished jobs that
admission reads, exact across a re-list."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from warmpool.api.hub import Hub

NS = "default"


def job(name: str, phase: str = "Queued") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS, "resourceVersion": "1"},
        "spec": {"pool": "sdxl", "prompt": "p", "owner": "ada"},
        "status": {"phase": phase},
    }


class SlowList:
    """A list that answers when told to (with the jobs it had when it was *asked*), and a
    watch that reports nothing."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()

    async def list_with_version(self, *args: Any) -> tuple[list[dict[str, Any]], str]:
        snapshot = list(self.items)
        self.asked.set()
        await self.answer.wait()
        return snapshot, "7"

    async def watch(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield None  # pragma: no cover


async def test_a_job_created_while_the_list_is_in_flight_stays_counted() -> None:
    """The list's snapshot predates the job this replica created meanwhile: the re-list
    must not forget it (the watch reports it only later), or a burst of submissions
    during a re-list would pass the per-user limit."""
    kube = SlowList([job("old-running", "Running"), job("old-done", "Succeeded")])
    hub = Hub(kube, NS)  # type: ignore[arg-type]
    hub.start()
    try:
        await asyncio.wait_for(kube.asked.wait(), 10)
        hub.created(job("new-1"))
        kube.answer.set()
        await asyncio.wait_for(hub.synced.wait(), 10)
        assert set(hub.unfinished_names("ada")) == {"old-running", "new-1"}
        assert hub.seen("new-1") and hub.seen("old-done") and not hub.seen("other")
    finally:
        await hub.stop()


async def test_a_job_created_after_the_list_is_counted_once() -> None:
    kube = SlowList([])
    kube.answer.set()
    hub = Hub(kube, NS)  # type: ignore[arg-type]
    hub.start()
    try:
        await asyncio.wait_for(hub.synced.wait(), 10)
        hub.created(job("new-1"))
        hub.created(job("new-1"))
        assert hub.seen("new-1")
        assert list(hub.unfinished_names("ada")) == ["new-1"]
    finally:
        await hub.stop()
