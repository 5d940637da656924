"""Benchmark: one operator process, 200 ready instances, 10,000 jobs over a simulated hour
(issue 16).

The jobs arrive evenly over one simulated hour; ``--hour-seconds`` says how many wall
seconds that hour takes (default 900: the arrival rate is 11 jobs/s of wall time, about a
quarter of what the ComfyUI simulators could run at ``--time-scale``; the simulated GPUs
run their steps ``--time-scale`` times faster than real ones). Figures, printed and
written to ``bench/results/scale.json``:
- every job ends (phases), wall time;
- the operator's peak RSS (VmHWM) and CPU seconds (its own process);
- Vast.ai requests per reconcile interval over the run, by endpoint (listing: still 1);
- API writes per job (from the emulated API's request log);
- dispatch latency (created → ComfyUI accepted) p50/p90/p99/max.

Run: ``.venv/bin/python bench/scale.py [--instances 200] [--jobs 10000] [--hour-seconds 900]``
(about 20 minutes on a 2-core machine; ``--instances 50 --jobs 1000 --hour-seconds 120``
for a quick look). No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from jobs import DONE, WRITES, percentile, stamp
from pools import peak_rss_mb
from stack import API, POOL, RESULTS, Stack, operator_stack, wait_until

from warmpool.sim.vastai_state import Timing

INTERVAL = 5.0


async def run(
    instances: int, jobs: int, *, hour_seconds: float, time_scale: float
) -> dict[str, Any]:
    timing = Timing(loading_after=(1.0, 2.0), pull=(4.0, 8.0), ports_after=(0.0, 1.0))
    names = [f"scale-{i:05}" for i in range(jobs)]
    created: dict[str, float] = {}
    async with operator_stack(
        "scale", machines=instances * 3 // 2 + 40, seed=9, interval=INTERVAL, probe_interval=1.0,
        # A bounded request log and one version per object: the emulator's memory stays
        # flat over 10,000 jobs (writes are counted by method, whatever the log keeps).
        cluster_options={"request_log_limit": 1000, "history_limit": 1},
        # A simulated hour of 200 GPUs at 240x bills thousands of dollars: credit enough.
        vastai_options={"time_scale": time_scale, "timing": timing, "balance": 1e9,
                        "comfy_options": {"load_seconds": 1.0}},
    ) as stack:  # fmt: skip
        cluster, sim = stack.cluster, stack.sim
        stack.create_pool(replicas=instances, offer={"maxPricePerHour": 50, "minReliability": 0.5,
                                                     "verifiedOnly": False})  # fmt: skip
        started = time.monotonic()

        # Followed through the store's change feed (what a watch delivers), not by listing:
        # polling 10,000 jobs every 50 ms cost the emulated API's own process most of its CPU.
        ready_names: set[str] = set()
        ended: dict[str, dict[str, Any]] = {}

        def follow(rt: Any, event: Any) -> None:
            obj = event.obj
            status = obj.get("status") or {}
            name = obj["metadata"]["name"]
            if rt.kind == "GpuInstance":
                if status.get("phase") == "Ready" and event.type != "DELETED":
                    ready_names.add(name)
                else:
                    ready_names.discard(name)
            elif rt.kind == "GenerationJob" and status.get("phase") in DONE:
                ended.setdefault(name, status)

        cluster.store.on_change.append(follow)

        def settled() -> bool:
            return len(ready_names) >= instances

        def ready_count() -> str:
            return f"instances Ready {len(ready_names)}/{instances}"

        ready = progress(stack, ready_count)
        await wait_until(settled, 1200, f"{instances} instances ready")
        ready.cancel()
        to_ready = time.monotonic() - started
        methods = cluster.emulator.methods
        writes0 = sum(methods[m] for m in WRITES)
        vast0 = dict(sim.state.requests)
        cpu0 = stack.cpu_seconds()
        start = time.monotonic()

        gap = hour_seconds / jobs

        def done() -> str:
            return f"jobs created {len(created)}/{jobs}, ended {len(ended)}"

        running = progress(stack, done)
        async with httpx.AsyncClient(base_url=cluster.url, timeout=60) as http:
            for i, name in enumerate(names):
                body = {"apiVersion": API, "kind": "GenerationJob",
                        "metadata": {"name": name, "namespace": "default"},
                        "spec": {"pool": POOL, "prompt": f"a lighthouse ({name})",
                                 "quality": "low", "width": 64, "height": 64,
                                 "steps": 4}}  # fmt: skip
                response = await http.post(f"/apis/{API}/namespaces/default/generationjobs",
                                           json=body)  # fmt: skip
                response.raise_for_status()
                created[name] = time.time()
                ahead = start + (i + 1) * gap - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)

        await wait_until(lambda: len(ended) >= jobs, 3600, "all jobs done")
        cluster.store.on_change.remove(follow)
        running.cancel()
        wall = time.monotonic() - start
        cpu = stack.cpu_seconds() - cpu0
        vast = {route: n - vast0.get(route, 0) for route, n in sim.state.requests.items()
                if n != vast0.get(route, 0)}  # fmt: skip
        writes = sum(methods[m] for m in WRITES) - writes0
        latencies, phases = [], Counter()
        for n in names:
            st = ended.get(n) or {}
            phases[st.get("phase")] += 1
            if st.get("startedAt"):
                latencies.append((stamp(st["startedAt"]) - created[n]) * 1000.0)
        intervals = wall / INTERVAL
        return {
            "instances": instances,
            "jobs": jobs,
            "simulated_hour_wall_seconds": hour_seconds,
            "time_scale": time_scale,
            "phases": dict(phases),
            "every_job_ended": sum(phases[p] for p in DONE) == jobs,
            "seconds_to_all_ready": round(to_ready, 1),
            "wall_seconds": round(wall, 1),
            "operator_peak_rss_mb": round(peak_rss_mb(stack.operator.pid), 1),
            "operator_cpu_seconds": round(cpu, 1),
            "operator_cpu_ms_per_job": round(cpu * 1000 / jobs, 2),
            "vastai_requests_per_interval": {r: round(n / intervals, 2) for r, n in vast.items()},
            "api_writes_per_job": round(writes / jobs, 2),
            "dispatch_ms_p50": round(statistics.median(latencies), 1) if latencies else None,
            "dispatch_ms_p90": round(percentile(latencies, 90), 1) if latencies else None,
            "dispatch_ms_p99": round(percentile(latencies, 99), 1) if latencies else None,
            "dispatch_ms_max": round(max(latencies), 1) if latencies else None,
        }


def progress(stack: Stack, what: Callable[[], str], every: float = 30.0) -> asyncio.Task[None]:
    """Print how far the run is every ``every`` seconds (to stderr) until cancelled."""

    async def report() -> None:
        began = time.monotonic()
        while True:
            await asyncio.sleep(every)
            rss = stack.operator.memory_info().rss / 2**20
            print(f"[{time.monotonic() - began:6.0f} s] {what()}; operator CPU "
                  f"{stack.cpu_seconds():.0f} s, RSS {rss:.0f} MB", file=sys.stderr,
                  flush=True)  # fmt: skip

    return asyncio.create_task(report())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--hour-seconds", type=float, default=900.0,
                        help="wall seconds of the simulated hour of arrivals")  # fmt: skip
    parser.add_argument("--time-scale", type=float, default=240.0)
    args = parser.parse_args()
    result = await run(args.instances, args.jobs, hour_seconds=args.hour_seconds,
                       time_scale=args.time_scale)  # fmt: skip
    print(f"\n== {result['jobs']} jobs over {result['instances']} ready instances")
    for key, value in result.items():
        print(f"  {key:34} {value}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
