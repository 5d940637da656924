"""Fixtures shared by every test suite.

``cluster``: the emulated Kubernetes API (``warmpool.sim.cluster``) with the warmpool CRDs, on a
loopback port, one per test. Talk to it over HTTP at ``cluster.url`` (or ``cluster_http``), point
Kopf or kubectl at it with ``cluster.write_kubeconfig(path)``, or read/create objects directly
with ``cluster.get(...)``, ``cluster.list(...)``, ``cluster.create(...)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

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
