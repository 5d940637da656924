"""Fixtures shared by every test suite.

``cluster``: the emulated Kubernetes API (``warmpool.sim.cluster``) with the warmpool CRDs, on a
loopback port, one per test. Talk to it over HTTP at ``cluster.url`` (or ``cluster_http``), point
Kopf or kubectl at it with ``cluster.write_kubeconfig(path)``, or read/create objects directly
with ``cluster.get(...)``, ``cluster.list(...)``, ``cluster.create(...)``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from warmpool.sim.cluster import RunningCluster, start_cluster


@pytest.fixture
async def cluster() -> AsyncIterator[RunningCluster]:
    running = await start_cluster()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def cluster_http(cluster: RunningCluster) -> AsyncIterator[httpx.AsyncClient]:
    # Plain HTTP on loopback: verify=False only skips loading CA certificates (0.2 s each).
    async with httpx.AsyncClient(base_url=cluster.url, timeout=10, verify=False) as http:
        yield http


def _current_loop(policy: asyncio.AbstractEventLoopPolicy) -> Any:
    return getattr(getattr(policy, "_local", None), "_loop", None)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Iterator[Any]:
    """Close the event loop that looptime's hook creates around a *sync* test.

    looptime calls ``policy.get_event_loop()`` for every test that sees pytest-asyncio's
    ``event_loop_policy``; for a sync test that creates a new loop which nobody closes, and its
    socket pair later fails an unrelated test with an unraisable ``ResourceWarning``.
    """
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        return (yield)
    policy = asyncio.get_event_loop_policy()
    before = _current_loop(policy)
    try:
        return (yield)
    finally:
        after = _current_loop(policy)
        if after is not None and after is not before and not after.is_running():
            after.close()
            policy.set_event_loop(before)
