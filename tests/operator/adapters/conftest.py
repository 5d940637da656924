"""Fixtures for the adapter tests (T2: respx / MockTransport, no network)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from warmpool.operator.adapters import vastai

VASTAI_URL = "https://vast.test"
VASTAI_KEY = "sk-vast-0123456789abcdef-SECRET"


class FakeTime:
    """A monotonic clock that moves only when the client sleeps; records the sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def close_stray_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """The looptime plugin makes the policy create an event loop for sync tests and
    nobody closes it: the next async test then fails on an unclosed-socket warning."""
    yield
    if not asyncio.iscoroutinefunction(request.function):
        policy = asyncio.get_event_loop_policy()
        try:
            loop = policy.get_event_loop()
        except RuntimeError:  # none set: nothing to close
            return
        if not loop.is_running():
            loop.close()
            policy.set_event_loop(None)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def vastai_http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


@pytest.fixture
def vastai_mock() -> Iterator[respx.MockRouter]:
    with respx.mock(using="httpx", base_url=VASTAI_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
def vastai_client(
    vastai_http: httpx.AsyncClient, vastai_mock: respx.MockRouter, fake_time: FakeTime
) -> vastai.VastaiClient:
    return vastai.VastaiClient(
        vastai_http,
        base_url=VASTAI_URL,
        api_key=SecretStr(VASTAI_KEY),
        timeout=5.0,
        deadline=60.0,
        max_attempts=5,
        backoff_initial=0.5,
        backoff_max=8.0,
        sleep=fake_time.sleep,
        clock=fake_time,
    )


@pytest.fixture
def vastai_key() -> str:
    return VASTAI_KEY


# ---------------------------------------------------------------- ComfyUI

COMFY_URL = "http://comfy.test:8188"
COMFY_TOKEN = "comfy-token-SECRET-0123456789"


@pytest.fixture
async def comfy_http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


@pytest.fixture
def comfy_mock() -> Iterator[respx.MockRouter]:
    with respx.mock(using="httpx", base_url=COMFY_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def comfy_server() -> AsyncIterator[Any]:
    """A real ComfyUI simulator on a loopback port, with fast simulated timings."""
    from warmpool.sim.clock import ScaledClock
    from warmpool.sim.comfyui import start_comfyui

    server = await start_comfyui(
        token=COMFY_TOKEN, clock=ScaledClock(50.0),
        step_seconds=0.05, load_seconds=0.5, node_seconds=0.01,
    )  # fmt: skip
    try:
        yield server
    finally:
        await server.stop()


# ---------------------------------------------------------------- end ComfyUI
