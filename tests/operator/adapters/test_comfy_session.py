"""The instance's one websocket session against the ComfyUI simulator: several prompts on
one socket, queue order by ``number``, a dropped socket, a restart that loses the queue,
a refused token."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from waiting import eventually

from warmpool.crds.generationjob import GenerationJobSpec
from warmpool.operator import errors
from warmpool.operator.adapters import comfy, comfy_session
from warmpool.operator.decisions import workflows
from warmpool.sim.clock import ScaledClock
from warmpool.sim.comfyui import ComfyServer, start_comfyui

TOKEN = "comfy-token-SECRET-0123456789"


@pytest.fixture
async def comfy_server() -> AsyncIterator[ComfyServer]:
    """A simulator whose sampler steps take about 40 ms (a 40-step prompt: 1.6 s)."""
    server = await start_comfyui(token=TOKEN, clock=ScaledClock(50.0), step_seconds=2.0,
                                 load_seconds=0.5, node_seconds=0.01)  # fmt: skip
    try:
        yield server
    finally:
        await server.stop()


def graph(seed: int, steps: int = 4) -> dict[str, Any]:
    spec = GenerationJobSpec(pool="p", prompt="a lighthouse", quality="low", width=64,
                             height=64, steps=steps, seed=seed)  # fmt: skip
    return workflows.build_workflow(spec, namespace="ns", job=f"job-{seed}").graph


@pytest.fixture
async def session(
    comfy_server: ComfyServer, comfy_http: httpx.AsyncClient
) -> AsyncIterator[comfy_session.ComfySession]:
    client = comfy.ComfyClient(comfy_http, comfy_server.url, TOKEN)
    found = comfy_session.ComfySession(client, linger=0.1)
    try:
        yield found
    finally:
        await found.aclose()


async def test_one_socket_follows_several_prompts(
    session: comfy_session.ComfySession, comfy_server: ComfyServer
) -> None:
    """Five prompts at once on one socket: each followed to its outputs, one ``/ws``
    connection in all, and no history read (the outputs came with ``executed``)."""
    events: dict[int, list[str]] = {n: [] for n in range(5)}
    results = await asyncio.gather(*(
        session.run_prompt(graph(seed=n), number=float(n), deadline=30,
                           on_progress=lambda e, n=n: events[n].append(e.kind))
        for n in range(5)
    ))  # fmt: skip
    assert all(len(r.outputs) == 1 for r in results)
    assert len({r.prompt_id for r in results}) == 5
    assert comfy_server.requests["GET /ws"] == 1
    assert comfy_server.requests["GET /history/{prompt_id}"] == 0
    assert all(e[0] == "queued" and "started" in e and e[-1] == "success" for e in events.values())
    assert session.following == ()


async def test_queued_prompts_run_in_the_order_of_their_numbers(
    session: comfy_session.ComfySession, comfy_server: ComfyServer
) -> None:
    """While one prompt runs, two more are queued; ComfyUI takes the lower ``number``
    first whatever order they were submitted in (a job queued ahead never overtakes the
    one placed before it)."""
    started: list[str] = []

    def note(event: comfy.ProgressEvent) -> None:
        if event.kind == "started":
            started.append(event.prompt_id)

    two, three = str(uuid.uuid4()), str(uuid.uuid4())
    first = asyncio.create_task(session.run_prompt(graph(1, steps=40), number=1.0,
                                                   on_progress=note, deadline=30))  # fmt: skip
    await eventually(lambda: started, timeout=10, what="the first prompt running")
    late = asyncio.create_task(session.run_prompt(graph(3), prompt_id=three, number=3.0,
                                                  on_progress=note, deadline=30))  # fmt: skip
    await eventually(lambda: len(comfy_server.queue) == 1, timeout=10, what="one queued")
    early = asyncio.create_task(session.run_prompt(graph(2), prompt_id=two, number=2.0,
                                                   on_progress=note, deadline=30))  # fmt: skip
    await asyncio.gather(first, late, early)
    assert started[1:] == [two, three]


async def test_a_dropped_socket_reconnects_and_every_prompt_still_ends(
    session: comfy_session.ComfySession, comfy_server: ComfyServer
) -> None:
    """The socket drops while one prompt runs and one waits (the server stays up): the
    session reconnects on the same client id, each follower looks its prompt up, and both
    end with their outputs."""
    progressed = asyncio.Event()

    def note(event: comfy.ProgressEvent) -> None:
        if event.kind == "progress":
            progressed.set()

    running = asyncio.create_task(session.run_prompt(graph(1, steps=40), on_progress=note,
                                                     deadline=30, poll_interval=0.05))  # fmt: skip
    waiting = asyncio.create_task(session.run_prompt(graph(2, steps=5), deadline=30,
                                                     poll_interval=0.05))  # fmt: skip
    await asyncio.wait_for(progressed.wait(), 10)
    await comfy_server.drop_websockets()
    first, second = await asyncio.gather(running, waiting)
    assert len(first.outputs) == len(second.outputs) == 1
    assert session.connections == 2
    assert comfy_server.requests["GET /ws"] == 2


async def test_a_prompt_lost_in_a_restart_is_reported_lost(
    session: comfy_session.ComfySession, comfy_server: ComfyServer
) -> None:
    """ComfyUI restarts mid-prompt (queue and history lost): after the reconnection the
    follower finds its prompt nowhere and says so, instead of waiting to its deadline."""
    progressed = asyncio.Event()

    def note(event: comfy.ProgressEvent) -> None:
        if event.kind == "progress":
            progressed.set()

    task = asyncio.create_task(session.run_prompt(graph(1, steps=100), on_progress=note,
                                                  deadline=30, poll_interval=0.05))  # fmt: skip
    await asyncio.wait_for(progressed.wait(), 10)
    await comfy_server.restart()
    with pytest.raises(errors.ComfyPromptLostError):
        await task


async def test_a_refused_token_fails_the_prompt_at_once(
    comfy_server: ComfyServer, comfy_http: httpx.AsyncClient
) -> None:
    client = comfy.ComfyClient(comfy_http, comfy_server.url, "wrong-token")
    session = comfy_session.ComfySession(client)
    try:
        with pytest.raises(errors.ComfyAuthError):
            await asyncio.wait_for(session.run_prompt(graph(1), deadline=30), 3)
        assert session.failed
        assert comfy_server.prompts_seen == []
    finally:
        await session.aclose()


async def test_the_socket_closes_when_nothing_is_followed(
    session: comfy_session.ComfySession, comfy_server: ComfyServer
) -> None:
    """Linger passed without a prompt to follow: the socket closes (an instance that went
    away costs no reconnection attempts); the next prompt opens it again."""
    await session.run_prompt(graph(1), deadline=30)
    assert session.client_id in comfy_server.sockets
    await eventually(lambda: session.client_id not in comfy_server.sockets, timeout=10,
                     what="the idle socket closed")  # fmt: skip
    assert not session.up
    await session.run_prompt(graph(2), deadline=30)
    assert comfy_server.requests["GET /ws"] == 2
