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
