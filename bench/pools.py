"""Benchmark: a pool scaled to N instances against the simulators (issue 5).

Figures, printed and written to ``bench/results/pools.json``:
- Vast.ai requests per reconcile interval in steady state, by endpoint, for a small and a
  large pool (listing must not grow with the number of instances: one per interval);
- time from the ``replicas`` change to every rental requested, and to every instance Ready;
- operator CPU seconds and peak RSS (the operator runs as its own process, as in a cluster);
- the operator's Kubernetes API requests per reconcile interval in steady state, by method.

- issue 16's figure: operator CPU milliseconds per idle Ready instance per reconcile
  interval (the steady-state CPU ÷ instances).

Run: ``.venv/bin/python bench/pools.py [--sizes 5 50] [--time-scale 240]``. No assertions.
``WARMPOOL_BENCH_PROFILE=DIR`` also records a py-spy profile of the steady window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from stack import API, POOL, RESULTS, operator_stack, wait_until


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the peak resident set of a live process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


async def run(size: int, *, time_scale: float, interval: float, window: float) -> dict[str, Any]:
    async with operator_stack(
        "pools",
        machines=max(40, size + 20),
        seed=3,
        interval=interval,
        probe_interval=1.0,
        cluster_options={"request_log_limit": 1000},
        vastai_options={"time_scale": time_scale},
    ) as stack:
        stack.name = f"pools-{size}"
        stack.create_pool(replicas=0, maxReplicas=size)
        # The operator is up once it has reconciled the pool (start-up is not measured).
        await wait_until(lambda: stack.pool_status().get("observedGeneration"), 60,
                         "operator started")  # fmt: skip
        cpu0 = stack.cpu_seconds()
        async with httpx.AsyncClient(base_url=stack.cluster.url) as http:
            await http.patch(
                f"/apis/{API}/namespaces/default/gpupools/{POOL}/scale",
                json={"spec": {"replicas": size}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
        sim = stack.sim
        requested = await wait_until(lambda: len(sim.state.rentals) >= size, 300,
                                     "rentals requested")  # fmt: skip
        all_ready = await wait_until(
            lambda: stack.pool_status().get("readyReplicas", 0) >= size, 600, "all ready"
        )
        cpu_to_ready = stack.cpu_seconds() - cpu0
        before = dict(sim.state.requests)
        api_before = dict(stack.cluster.emulator.methods)
        cpu1 = stack.cpu_seconds()
        await stack.start_profile()
        await asyncio.sleep(window)  # steady state, measured over a fixed window
        cpu_steady = stack.cpu_seconds() - cpu1
        await stack.stop_profile()
        after = dict(sim.state.requests)
        api = {m: n - api_before.get(m, 0) for m, n in stack.cluster.emulator.methods.items()}
        per_interval = {
            route: round((after.get(route, 0) - before.get(route, 0)) * interval / window, 2)
            for route in after
            if after.get(route, 0) != before.get(route, 0)
        }
        per_interval_cpu = cpu_steady * interval / window
        api_per_interval = {m: round(n * interval / window, 2) for m, n in sorted(api.items()) if n}
        return {
            "operator_cpu_ms_per_idle_ready_instance_per_interval (goal <= 2)": round(
                per_interval_cpu * 1000 / size, 2
            ),
            "instances": size,
            "reconcile_interval_s": interval,
            "seconds_to_all_rentals_requested": round(requested, 2),
            "seconds_to_all_ready": round(all_ready, 2),
            "vastai_requests_per_interval": per_interval,
            # The operator's Kubernetes API requests (watch streams opened included).
            "api_requests_per_interval": api_per_interval,
            "operator_cpu_seconds_to_ready": round(cpu_to_ready, 2),
            "operator_cpu_seconds_per_interval_steady": round(cpu_steady * interval / window, 3),
            "operator_peak_rss_mb": round(peak_rss_mb(stack.operator.pid), 1),
        }


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
