"""Benchmark: a pool scaled to N instances against the simulators (issue 5).

Figures, printed and written to ``bench/results/pools.json``:
- Vast.ai requests per reconcile interval in steady state, by endpoint, for a small and a
  large pool (listing must not grow with the number of instances: one per interval);
- time from the ``replicas`` change to every rental requested, and to every instance Ready;
- operator CPU seconds and peak RSS (the operator runs as its own process, as in a cluster).

Run: ``.venv/bin/python bench/pools.py [--sizes 5 50] [--time-scale 240]``. No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from warmpool.sim.cluster import start_cluster
from warmpool.sim.vastai import start_vastai
from warmpool.sim.vastai_catalogue import generate_machines

API = "warmpool.dev/v1alpha1"
RESULTS = Path(__file__).parent / "results"


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the peak resident set of a live process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


async def wait_until(probe: Any, timeout: float) -> float:
    start = time.monotonic()
    while not probe():
        if time.monotonic() - start > timeout:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def run(size: int, *, time_scale: float, interval: float, window: float) -> dict[str, Any]:
    cluster = await start_cluster(request_log_limit=1000)
    machines = generate_machines(3, count=max(40, size + 20))
    key = secrets.token_hex(8)
    sim = await start_vastai(api_key=key, time_scale=time_scale, seed=3, machines=machines)
    workdir = Path(f"/tmp/warmpool-bench-pools-{os.getpid()}")
    kubeconfig = cluster.write_kubeconfig(workdir / "kubeconfig")
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "WARMPOOL_VASTAI_URL": sim.url,
        "WARMPOOL_VASTAI_API_KEY": key,
        "WARMPOOL_RECONCILE_INTERVAL": str(interval),
        "WARMPOOL_INVENTORY_REFRESH": str(interval),
        "WARMPOOL_PROBE_INTERVAL": "1",
        "WARMPOOL_HEALTH_PORT": "0",
        "WARMPOOL_LOG_LEVEL": "WARNING",
        "WARMPOOL_ARTIFACTS_URL": f"file://{workdir / 'artifacts'}",
    }
    binary = str(Path(sys.executable).parent / "warmpool-operator")
    proc = await asyncio.create_subprocess_exec(binary, env=env)
    ps = psutil.Process(proc.pid)
    try:
        cluster.create({
            "apiVersion": API, "kind": "GpuPool",
            "metadata": {"name": "bench", "namespace": "default"},
            "spec": {"replicas": 0, "maxReplicas": size, "idleTimeout": "1h", "hedge": 0,
                     "offer": {"maxPricePerHour": 50, "minReliability": 0.5},
                     "template": {"diskGb": 20},
                     "readiness": {"canary": {"steps": 1, "size": 64}}},
        })  # fmt: skip
        await asyncio.sleep(3)  # operator start-up (not measured)
        cpu0 = sum(ps.cpu_times()[:2])
        async with httpx.AsyncClient(base_url=cluster.url) as http:
            await http.patch(
                "/apis/warmpool.dev/v1alpha1/namespaces/default/gpupools/bench/scale",
                json={"spec": {"replicas": size}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
        requested = await wait_until(lambda: len(sim.state.rentals) >= size, timeout=300)

        def ready() -> bool:
            pool = cluster.get(API, "GpuPool", "bench", "default") or {}
            return bool((pool.get("status") or {}).get("readyReplicas", 0) >= size)

        all_ready = await wait_until(ready, timeout=600)
        cpu_to_ready = sum(ps.cpu_times()[:2]) - cpu0
        before = dict(sim.state.requests)
        cpu1 = sum(ps.cpu_times()[:2])
        await asyncio.sleep(window)  # steady state, measured over a fixed window
        cpu_steady = sum(ps.cpu_times()[:2]) - cpu1
        after = dict(sim.state.requests)
        per_interval = {
            route: round((after.get(route, 0) - before.get(route, 0)) * interval / window, 2)
            for route in after
            if after.get(route, 0) != before.get(route, 0)
        }
        return {
            "instances": size,
            "reconcile_interval_s": interval,
            "seconds_to_all_rentals_requested": round(requested, 2),
            "seconds_to_all_ready": round(all_ready, 2),
            "vastai_requests_per_interval": per_interval,
            "operator_cpu_seconds_to_ready": round(cpu_to_ready, 2),
            "operator_cpu_seconds_per_interval_steady": round(cpu_steady * interval / window, 3),
            "operator_peak_rss_mb": round(peak_rss_mb(proc.pid), 1),
        }
    finally:
        proc.terminate()
        await proc.wait()
        await sim.stop()
        await cluster.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50])
    parser.add_argument("--time-scale", type=float, default=240.0)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=30.0)
    args = parser.parse_args()
    results = [await run(n, time_scale=args.time_scale, interval=args.interval,
                         window=args.window) for n in args.sizes]  # fmt: skip
    for r in results:
        print(f"\n== pool of {r['instances']} instances (interval {r['reconcile_interval_s']} s)")
        for key, value in r.items():
            if key != "vastai_requests_per_interval":
                print(f"  {key:45} {value}")
        print("  Vast.ai requests per reconcile interval (steady state):")
        for route, n in sorted(r["vastai_requests_per_interval"].items()):
            print(f"    {route:55} {n}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pools.json").write_text(json.dumps(results, indent=2))
    print(f"\nwrote {RESULTS / 'pools.json'}")


if __name__ == "__main__":
    asyncio.run(main())
