"""What the operator benchmarks share: the emulated API, the Vast.ai simulator and the
operator as its own process (as in a cluster), a benchmark pool, and waiting on a
condition with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from warmpool.sim.cluster import RunningCluster, start_cluster
from warmpool.sim.vastai import VastaiServer, start_vastai
from warmpool.sim.vastai_catalogue import generate_machines

API = "warmpool.dev/v1alpha1"
RESULTS = Path(__file__).parent / "results"
POOL = "bench"

#: ``WARMPOOL_BENCH_PROFILE=DIR``: a py-spy profile of the operator over the measured
#: window, written to ``DIR/<benchmark>.txt`` (collapsed stacks, ``--format raw``).
PROFILE_DIR = os.environ.get("WARMPOOL_BENCH_PROFILE")
#: ``WARMPOOL_BENCH_PROFILE_RATE``: samples per second (an idle operator needs a high rate).
PROFILE_RATE = os.environ.get("WARMPOOL_BENCH_PROFILE_RATE", "50")
#: ``WARMPOOL_BENCH_PROFILE_BLOCKING=1``: py-spy stops the process for each sample (slower,
#: but whole stacks; non-blocking samples lose a quarter of them to torn stacks).
PROFILE_BLOCKING = os.environ.get("WARMPOOL_BENCH_PROFILE_BLOCKING") == "1"


@dataclass
class Stack:
    cluster: RunningCluster
    sim: VastaiServer
    operator: psutil.Process

    profiler: asyncio.subprocess.Process | None = None
    name: str = "bench"

    async def start_profile(self) -> None:
        """Sample the operator with py-spy until :meth:`stop_profile` (when
        ``WARMPOOL_BENCH_PROFILE`` names a folder; nothing otherwise)."""
        if not PROFILE_DIR or self.profiler is not None:
            return
        out = Path(PROFILE_DIR) / f"{self.name}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        spy = str(Path(sys.executable).parent / "py-spy")
        self.profiler = await asyncio.create_subprocess_exec(
            spy, "record", "--pid", str(self.operator.pid), "--format", "raw",
            "--rate", PROFILE_RATE, *([] if PROFILE_BLOCKING else ["--nonblocking"]),
            "--output", str(out),
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    async def stop_profile(self) -> None:
        """py-spy writes its profile when interrupted."""
        if self.profiler is None:
            return
        self.profiler.send_signal(signal.SIGINT)
        await self.profiler.wait()
        self.profiler = None

    def cpu_seconds(self) -> float:
        """User + system CPU of the operator process so far."""
        return float(sum(self.operator.cpu_times()[:2]))

    def pool_status(self) -> dict[str, Any]:
        pool = self.cluster.get(API, "GpuPool", POOL, "default") or {}
        return dict(pool.get("status") or {})

    def create_pool(self, **spec: Any) -> None:
        """The benchmark pool: cheap offers, a small disk, a one-step canary; no hedging."""
        self.cluster.create({
            "apiVersion": API, "kind": "GpuPool",
            "metadata": {"name": POOL, "namespace": "default"},
            "spec": {"idleTimeout": "1h", "hedge": 0,
                     "offer": {"maxPricePerHour": 50, "minReliability": 0.5},
                     "template": {"diskGb": 20},
                     "readiness": {"canary": {"steps": 1, "size": 64}}, **spec},
        })  # fmt: skip


async def wait_until(probe: Callable[[], Any], timeout: float, what: str) -> float:
    """Seconds until ``probe()`` holds; TimeoutError after ``timeout``."""
    start = time.monotonic()
    while not probe():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"benchmark condition not reached: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


@contextlib.asynccontextmanager
async def operator_stack(
    name: str,
    *,
    machines: int,
    seed: int,
    interval: float,
    probe_interval: float,
    cluster_options: dict[str, Any] | None = None,
    vastai_options: dict[str, Any] | None = None,
) -> AsyncIterator[Stack]:
    """The emulated API and the Vast.ai simulator in this process, the operator in its own."""
    cluster = await start_cluster(**(cluster_options or {}))
    key = secrets.token_hex(8)
    sim = await start_vastai(api_key=key, seed=seed,
                             machines=generate_machines(seed, count=machines),
                             **(vastai_options or {}))  # fmt: skip
    workdir = Path(f"/tmp/warmpool-bench-{name}-{os.getpid()}")
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.write_kubeconfig(workdir / "kubeconfig")),
        "WARMPOOL_VASTAI_URL": sim.url,
        "WARMPOOL_VASTAI_API_KEY": key,
        "WARMPOOL_RECONCILE_INTERVAL": str(interval),
        "WARMPOOL_ALLOWED_MACHINE_NETWORKS": '["127.0.0.0/8"]',  # the simulated machines
        "WARMPOOL_INVENTORY_REFRESH": str(interval),
        "WARMPOOL_PROBE_INTERVAL": str(probe_interval),
        "WARMPOOL_HEALTH_PORT": "0",
        "WARMPOOL_LOG_LEVEL": "WARNING",
        "WARMPOOL_ARTIFACTS_URL": f"file://{workdir / 'artifacts'}",
    }
    binary = str(Path(sys.executable).parent / "warmpool-operator")
    proc = await asyncio.create_subprocess_exec(binary, env=env)
    stack = Stack(cluster, sim, psutil.Process(proc.pid), name=name)
    try:
        yield stack
    finally:
        await stack.stop_profile()
        proc.terminate()
        await proc.wait()
        await sim.stop()
        await cluster.stop()
