"""Benchmark: a pool scaled to N instances against the simulators (issue 5).

Figures, printed and written to ``bench/results/pools.json``:
- Vast.ai requests per reconcile interval in steady state, by endpoint, for a small and a
  large pool (listing must not grow with the number of instances: one per interval);
- time from the ``replicas`` change to every rental requested, and to every instance Ready;
- operator CPU seconds and peak RSS (the operator runs as its own process, as in a cluster);
- the operator's Kubernetes API requests per reconcile interval in steady state, by method.

- issue 16's figure: operator CPU milliseconds per idle Ready instance per reconcile
  interval (the steady-state CPU ÷ instances), and beside it the same figure as a ratio
  against a reference measured over the same window of the same run: the CPU this process
  spends meanwhile, i.e. the emulated Kubernetes API, the Vast.ai simulator and the
  simulated ComfyUI machines answering the operator (its watch streams, its listing, its
  status writes, its liveness probes). Both sides move with the machine and the load
  alike; the ratio says how much CPU the operator burns per unit of work it asks of the
  servers it talks to (an idle operator that still talks a lot scores low per request but
  shows in the requests per interval, printed too, by method and resource);
- the operator's Kubernetes API requests per interval by method, resource and subresource
  (what is left once nothing changes: watch streams, listings, status writes).

The steady window begins ``--settle`` seconds after every instance is Ready: the first
probe after the canary (``WARMPOOL_READY_PROBE_INTERVAL``, 30 s, later) writes its verdict's
new message once per instance, which is the way to Ready, not idling. A Ready instance
whose observation does not change writes its clock fields every ``WARMPOOL_STATUS_REFRESH``
(300 s) only: a window shorter than that leaves those writes out, ``--window 300`` or more
counts them at their share.

Run: ``.venv/bin/python bench/pools.py [--sizes 5 50] [--window 60] [--settle 40]``. No
assertions.
``WARMPOOL_BENCH_PROFILE=DIR`` also records a py-spy profile of the steady window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
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


def request_kind(r: Any) -> str:
    """``LIST gpuinstances``, ``PATCH gpupools status``...: the action, resource, subresource."""
    action = (r.action.value if r.action else r.method.value).upper()
    what = r.resource.plural if r.resource else str(r.url.path)
    return " ".join(filter(None, [action, what, r.subresource]))


async def run(
    size: int, *, time_scale: float, interval: float, window: float, settle: float
) -> dict[str, Any]:
    async with operator_stack(
        "pools",
        machines=max(40, size + 20),
        seed=3,
        interval=interval,
        probe_interval=1.0,
        cluster_options={"request_log_limit": 100_000},
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
        await asyncio.sleep(settle)  # the first probe after Ready has written its verdict
        before = dict(sim.state.requests)
        api_before = dict(stack.cluster.emulator.methods)
        log_before = len(stack.cluster.emulator._requests)
        await stack.start_profile()
        cpu1, own1 = stack.cpu_seconds(), time.process_time()
        await asyncio.sleep(window)  # steady state, measured over a fixed window
        cpu_steady, own = stack.cpu_seconds() - cpu1, time.process_time() - own1
        await stack.stop_profile()
        requests = Counter(request_kind(r) for r in stack.cluster.emulator._requests[log_before:])
        after = dict(sim.state.requests)
        api = {m: n - api_before.get(m, 0) for m, n in stack.cluster.emulator.methods.items()}
        per_interval = {
            route: round((after.get(route, 0) - before.get(route, 0)) * interval / window, 2)
            for route in after
            if after.get(route, 0) != before.get(route, 0)
        }
        per_interval_cpu = cpu_steady * interval / window
        api_per_interval = {m: round(n * interval / window, 2) for m, n in sorted(api.items()) if n}
        servers = own * interval / window
        return {
            "operator_cpu_ms_per_idle_ready_instance_per_interval (goal <= 2)": round(
                per_interval_cpu * 1000 / size, 2
            ),
            # The reference, same window: the API and the simulators answering the operator.
            "api_and_simulators_cpu_ms_per_instance_per_interval": round(servers * 1000 / size, 2),
            "operator_cpu / (api + simulators) cpu, same window": round(
                per_interval_cpu / servers, 2
            )
            if servers > 0
            else float("nan"),
            "instances": size,
            "reconcile_interval_s": interval,
            "window_s (after settle_s)": f"{window:g} (after {settle:g})",
            "seconds_to_all_rentals_requested": round(requested, 2),
            "seconds_to_all_ready": round(all_ready, 2),
            "vastai_requests_per_interval": per_interval,
            # The operator's Kubernetes API requests (watch streams opened included).
            "api_requests_per_interval": api_per_interval,
            "api_requests_per_interval_by_resource": {
                k: round(n * interval / window, 2) for k, n in sorted(requests.items())
            },
            "operator_cpu_seconds_to_ready": round(cpu_to_ready, 2),
            "operator_cpu_seconds_per_interval_steady": round(cpu_steady * interval / window, 3),
            "operator_peak_rss_mb": round(peak_rss_mb(stack.operator.pid), 1),
        }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50])
    parser.add_argument("--time-scale", type=float, default=240.0)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=40.0,
                        help="seconds between every instance Ready and the window")  # fmt: skip
    args = parser.parse_args()
    results = [await run(n, time_scale=args.time_scale, interval=args.interval,
                         window=args.window, settle=args.settle)
               for n in args.sizes]  # fmt: skip
    for r in results:
        print(f"\n== pool of {r['instances']} instances (interval {r['reconcile_interval_s']} s)")
        for key, value in r.items():
            if key not in ("vastai_requests_per_interval",
                           "api_requests_per_interval_by_resource"):  # fmt: skip
                print(f"  {key:45} {value}")
        print("  Kubernetes API requests per reconcile interval (steady state):")
        for route, n in r["api_requests_per_interval_by_resource"].items():
            print(f"    {route:55} {n}")
        print("  Vast.ai requests per reconcile interval (steady state):")
        for route, n in sorted(r["vastai_requests_per_interval"].items()):
            print(f"    {route:55} {n}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pools.json").write_text(json.dumps(results, indent=2))
    print(f"\nwrote {RESULTS / 'pools.json'}")


if __name__ == "__main__":
    asyncio.run(main())
