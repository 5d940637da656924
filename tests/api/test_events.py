"""Progress as Server-Sent Events, fed by one shared watch (T5)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from waiting import eventually

from warmpool.api.hub import Hub

GOOD = {"pool": "sdxl", "prompt": "a lighthouse at dusk"}
Studio = Any
Driver = Any


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
        if data:
            events.append((name, json.loads(data)))
    return events


def hub_of(http: Any) -> Hub:
    hub: Hub = http.app.state.studio.hub
    return hub


def streams_of(http: Any) -> int:
    """Open progress streams (all jobs)."""
    count: int = http.app.state.studio.fanout.streams
    return count


async def test_events_arrive_in_order_until_the_terminal_phase(
    studio: Studio, drive: Driver, png: Any
) -> None:
    http = await studio()
    name = (await http.post("/api/v1/generations", json=GOOD)).json()["name"]
    hub = hub_of(http)
    stream = asyncio.create_task(http.get(f"/api/v1/generations/{name}/events"))
    await eventually(lambda: hub.listener_count == 1, timeout=10, what="the listener")

    await drive.set_status(name, {"phase": "Scheduled"})
    for value in (3, 12, 24):
        progress = {"value": value, "max": 24, "percent": value * 100 // 24}
        await drive.set_status(name, {"phase": "Running", "progress": progress})
    await drive.succeed(name, png())

    response = await asyncio.wait_for(stream, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    kinds = [e for e, _ in events]
    assert kinds == ["progress"] * 6 + ["done"]
    phases = [(d["phase"], d.get("percent")) for _, d in events]
    assert phases == [
        ("Queued", 0),
        ("Scheduled", 0),
        ("Running", 12),
        ("Running", 50),
        ("Running", 100),
        ("Succeeded", 100),
        ("Succeeded", None),
    ]
    assert events[5][1]["outputs"][0]["url"] == f"/api/v1/generations/{name}/outputs/0"
    assert hub.listener_count == 0


async def test_a_finished_job_answers_at_once(studio: Studio, drive: Driver) -> None:
    http = await studio()
    name = (await http.post("/api/v1/generations", json=GOOD)).json()["name"]
    await drive.set_status(name, {"phase": "Failed", "message": "out of memory"})
    r = await asyncio.wait_for(http.get(f"/api/v1/generations/{name}/events"), timeout=10)
    events = parse_sse(r.text)
    assert [(e, d["phase"]) for e, d in events] == [("progress", "Failed"), ("done", "Failed")]
    assert events[0][1]["message"] == "out of memory"


async def test_deleting_the_job_ends_the_stream_as_cancelled(studio: Studio) -> None:
    http = await studio()
    name = (await http.post("/api/v1/generations", json=GOOD)).json()["name"]
    hub = hub_of(http)
    stream = asyncio.create_task(http.get(f"/api/v1/generations/{name}/events"))
    await eventually(lambda: hub.listener_count == 1, timeout=10, what="the listener")
    assert (await http.delete(f"/api/v1/generations/{name}")).status_code == 204
    events = parse_sse((await asyncio.wait_for(stream, timeout=10)).text)
    assert [d["phase"] for _, d in events] == ["Queued", "Cancelled", "Cancelled"]


async def test_many_listeners_share_one_watch(studio: Studio, drive: Driver, png: Any) -> None:
    http = await studio()
    name = (await http.post("/api/v1/generations", json=GOOD)).json()["name"]
    hub = hub_of(http)
    await eventually(lambda: hub.synced.is_set(), timeout=10, what="the hub")
    watches = hub.watches_started
    streams = [
        asyncio.create_task(http.get(f"/api/v1/generations/{name}/events")) for _ in range(20)
    ]
    await eventually(lambda: streams_of(http) == 20, timeout=10, what="20 listeners")
    assert hub.listener_count == 1  # one hub listener for the job, whatever the streams
    await drive.set_status(name, {"phase": "Running"})
    await drive.succeed(name, png())
    for response in await asyncio.wait_for(asyncio.gather(*streams), timeout=20):
        assert [d["phase"] for _, d in parse_sse(response.text)][-2:] == ["Succeeded"] * 2
    assert hub.watches_started == watches  # no watch per listener
    assert hub.reads <= 1  # and one API read for all of them, not one each


async def test_a_listener_joining_late_starts_from_the_hubs_copy(
    studio: Studio, drive: Driver, png: Any
) -> None:
    """While somebody listens, the hub keeps the job's newest state: a new listener starts
    from it (no API read), and sees the progress reached before it joined."""
    http = await studio()
    name = (await http.post("/api/v1/generations", json=GOOD)).json()["name"]
    hub = hub_of(http)
    first = asyncio.create_task(http.get(f"/api/v1/generations/{name}/events"))
    await eventually(lambda: hub.listener_count == 1, timeout=10, what="the first listener")
    progress = {"value": 7, "max": 10, "percent": 70}
    await drive.set_status(name, {"phase": "Running", "progress": progress})
    await eventually(lambda: hub.jobs.get(name, ("", ""))[1] == "Running", timeout=10,
                     what="the hub saw Running")  # fmt: skip
    reads = hub.reads
    late = asyncio.create_task(http.get(f"/api/v1/generations/{name}/events"))
    await eventually(lambda: streams_of(http) == 2, timeout=10, what="the late listener")
    await drive.succeed(name, png())
    for response in await asyncio.wait_for(asyncio.gather(first, late), timeout=20):
        assert parse_sse(response.text)[-1][1]["phase"] == "Succeeded"
    late_events = parse_sse((await late).text)
    assert late_events[0][1]["phase"] == "Running" and late_events[0][1]["percent"] == 70
    assert hub.reads == reads


async def test_unknown_job_stream_is_404(studio: Studio) -> None:
    http = await studio()
    assert (await http.get("/api/v1/generations/nope/events")).status_code == 404
