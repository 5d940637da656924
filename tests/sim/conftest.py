"""Fixtures for the simulator tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from warmpool.sim.clock import ScaledClock
from warmpool.sim.comfyui import ComfyServer, start_comfyui

# ---------------------------------------------------------------- ComfyUI simulator

COMFY_TOKEN = "comfy-token-SECRET-0123456789"
#: Fast simulated timings: a 5-step 512² job takes well under 0.1 s of real time.
COMFY_FAST: dict[str, Any] = {"step_seconds": 0.05, "load_seconds": 0.5, "node_seconds": 0.01}


@pytest.fixture
async def comfy_sim() -> AsyncIterator[ComfyServer]:
    server = await start_comfyui(token=COMFY_TOKEN, clock=ScaledClock(50.0), **COMFY_FAST)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def comfy_http(comfy_sim: ComfyServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {COMFY_TOKEN}"}
    async with httpx.AsyncClient(base_url=comfy_sim.url, headers=headers, timeout=10) as http:
        yield http


# ---------------------------------------------------------------- end ComfyUI simulator


# ---------------------------------------------------------------- Vast.ai simulator

VASTAI_SIM_KEY = "vast-sim-key-SECRET-42"


@pytest.fixture
def vastai_fast_timing() -> Any:
    from warmpool.sim.vastai_state import Timing

    # simulated seconds; with time_scale=100 a boot takes ~0.1-0.3 s of real time
    return Timing(
        loading_after=(1.0, 3.0),
        pull=(10.0, 20.0),
        ports_after=(0.0, 2.0),
        reboot=(1.0, 2.0),
        unknown_before_offline=5.0,
    )


@pytest.fixture
async def vastai_sim(vastai_fast_timing: Any) -> AsyncIterator[Any]:
    """The Vast.ai simulator without ComfyUI servers (fast, for API tests)."""
    from warmpool.sim.vastai import start_vastai

    server = await start_vastai(
        api_key=VASTAI_SIM_KEY, time_scale=100.0, comfy=False, timing=vastai_fast_timing
    )
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def vastai_sim_comfy(vastai_fast_timing: Any) -> AsyncIterator[Any]:
    """The Vast.ai simulator whose running rentals serve a ComfyUI simulator."""
    from warmpool.sim.vastai import start_vastai

    server = await start_vastai(
        api_key=VASTAI_SIM_KEY,
        time_scale=100.0,
        comfy=True,
        comfy_options=COMFY_FAST,
        timing=vastai_fast_timing,
    )
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def vastai_http(vastai_sim: Any) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {VASTAI_SIM_KEY}"}
    async with httpx.AsyncClient(base_url=vastai_sim.url, headers=headers, timeout=10) as http:
        yield http


@pytest.fixture
def vastai_sim_key() -> str:
    return VASTAI_SIM_KEY


# ---------------------------------------------------------------- end Vast.ai simulator
