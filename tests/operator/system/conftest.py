"""T3/T4 fixtures: the real Kopf operator over HTTP against the emulated API and simulators.

``run_operator`` starts ``warmpool.operator.main.run`` as a task with short intervals,
pointed at the ``cluster`` fixture (through a kubeconfig) and at a Vast.ai
simulator; the test waits on conditions with deadlines, never on sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jobsys
import pytest
from pydantic import SecretStr
from waiting import eventually

from warmpool.operator import main
from warmpool.operator.settings import OperatorSettings
from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer, start_vastai

API_KEY = "sim-key-0123456789"
#: What the simulators need: every simulated machine is on 127.0.0.1.
LOOPBACK = ["127.0.0.0/8"]


@pytest.fixture
def kubeconfig(cluster: RunningCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


OperatorRunner = Callable[..., contextlib.AbstractAsyncContextManager[OperatorSettings]]


@pytest.fixture
def run_operator(
    kubeconfig: Path, tmp_path: Path, cluster: RunningCluster, caplog: pytest.LogCaptureFixture
) -> OperatorRunner:
    """``async with run_operator(vastai_url=...) as settings:`` runs the operator.

    When it stops, its logs are checked for secrets: the Vast.ai key and every
    per-instance ComfyUI token must never appear in them.
    """
    caplog.set_level(logging.DEBUG, logger="warmpool")

    @contextlib.asynccontextmanager
    async def runner(*, health: bool = False, **overrides: Any) -> AsyncIterator[OperatorSettings]:
        values: dict[str, Any] = {
            "vastai_url": "http://127.0.0.1:9",
            "vastai_api_key": SecretStr(API_KEY),
            "vastai_timeout": 2.0,
            "vastai_deadline": 10.0,
            "reconcile_interval": 1.0,
            "probe_interval": 0.2,
            "inventory_refresh": 0.3,
            "offer_cache": 0.5,
            "orphan_grace": 2.0,
            "artifacts_url": f"file://{tmp_path / 'artifacts'}",
            "watch_timeout": 2.0,  # Kopf's shutdown waits for open watches to end
            "allowed_machine_networks": LOOPBACK,  # the simulators' machines are on 127.0.0.1
            **overrides,
        }
        settings = OperatorSettings(**values)
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(main.run(settings, stop_flag=stop, ready_flag=ready,
                                            health=health))  # fmt: skip
        try:
            await eventually(lambda: ready.is_set() or task.done(), what="operator ready")
            if task.done():
                task.result()
            yield settings
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)
            assert_no_secrets(caplog.text, cluster)

    return runner


def assert_no_secrets(logs: str, cluster: RunningCluster) -> None:
    """Neither the API key nor any instance token appears in the logs."""
    secrets = [API_KEY]
    for secret in cluster.list("v1", "Secret", "default"):
        for value in (secret.get("data") or {}).values():
            secrets.append(base64.b64decode(value).decode(errors="replace"))
    leaked = [s[:4] + "…" for s in secrets if s and s in logs]
    assert not leaked, f"secrets in the operator's logs: {leaked}"


@pytest.fixture
async def vastai_sim() -> AsyncIterator[VastaiServer]:
    """The Vast.ai simulator, fast: a 4-minute boot takes about a second."""
    server = await start_vastai(api_key=API_KEY, time_scale=240.0, seed=7)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def sim() -> AsyncIterator[VastaiServer]:
    """For job tests, fast: a 4-step job takes milliseconds of simulated GPU time."""
    server = await jobsys.start_jobs_vastai()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def slow_sim() -> AsyncIterator[VastaiServer]:
    """For job tests, slow steps (about 80 ms each): a 30-step job runs about 2.5 s."""
    server = await jobsys.start_jobs_vastai(step_seconds=20.0)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def artifacts_url(tmp_path: Path) -> str:
    return f"file://{tmp_path / 'artifacts'}"
