"""Benchmark: N generation jobs over a pool of ready simulated instances (issue 6).

Figures, printed and written to ``bench/results/jobs.json``:
- dispatch latency: the job object created (the POST answered) → its prompt began to run
  on ComfyUI (``status.startedAt``: ``execution_start``; a job queued ahead waits in
  ComfyUI's queue before it), p50/p99;
- operator CPU milliseconds per job over its whole life (the operator runs as its own
  process, as in a cluster; CPU measured from the first job created to the last done);
- API-server writes (POST/PUT/PATCH/DELETE) per job, in all and on the job object itself,
  counted from the emulated API's request log over the same window;
- throughput (jobs per second) and wall time.

Jobs are created one every ``--gap`` seconds (default 20 ms), so that latency is measured
under a steady arrival rate rather than one burst; ``--gap 0`` creates them all at once.

The ratios of issue 16 come first: operator CPU per job ÷ the emulated API's and the
simulators' CPU per job (this process, same run), jobs/s ÷ the instances' capacity
(instances ÷ median run time; arrivals above it), API writes per job.

Each job samples for ``--gpu-seconds`` (default 0.4 s, the run time behind the issue's
reference figure) on its simulated GPU. Without it a 4-step 64×64 job took 2.5 ms of
simulated GPU time at 240×, the "run time" was the operator's own overhead, the capacity
(110–175 jobs/s) lay far above the arrivals (50/s) and the throughput ratio could not pass
0.46 whatever the operator did. ``arrivals_above_capacity`` says whether the run met the
ratio's premise.

Run: ``.venv/bin/python bench/jobs.py [--jobs 1000] [--instances 10]``. No assertions.
``WARMPOOL_BENCH_PROFILE=DIR`` also records a py-spy profile of the operator over the
measured window (``bench/profile_summary.py DIR/jobs.txt`` summarises it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter
from datetime import datetime
from typing import Any

import httpx
from stack import API, POOL, RESULTS, operator_stack, wait_until

from warmpool.sim.vastai_state import Timing

WRITES = ("POST", "PUT", "PATCH", "DELETE")
DONE = ("Succeeded", "Failed", "Cancelled")


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


STEPS = 4  # sampler steps of each benchmark job (64×64, "low" quality)


async def run(
    jobs: int, instances: int, *, gap: float, time_scale: float, gpu_seconds: float
) -> dict[str, Any]:
    timing = Timing(loading_after=(1.0, 2.0), pull=(4.0, 8.0), ports_after=(0.0, 1.0))
    names = [f"bench-{i:04}" for i in range(jobs)]
    created: dict[str, float] = {}
    async with operator_stack(
        "jobs",
        machines=max(40, instances + 20),
        seed=5,
        interval=2.0,
        probe_interval=0.5,
        vastai_options={"time_scale": time_scale, "timing": timing,
                        "comfy_options": {"load_seconds": 1.0,
                                          "step_seconds": gpu_seconds * time_scale / STEPS}},
    ) as stack:  # fmt: skip
        cluster = stack.cluster
        stack.create_pool(replicas=instances, offer={"maxPricePerHour": 50, "minReliability": 0.5,
                                                     "verifiedOnly": False})  # fmt: skip

        def settled() -> bool:
            """Exactly ``instances`` GpuInstances, all Ready: nothing is still renting."""
            found = cluster.list(API, "GpuInstance", "default")
            phases = [(i.get("status") or {}).get("phase") for i in found]
            return len(found) == instances and all(p == "Ready" for p in phases)

        await wait_until(settled, 300, "instances ready")
        log = cluster.emulator._requests
        first_request = len(log)
        cpu0 = stack.cpu_seconds()
        own0 = time.process_time()
        start = time.monotonic()
        await stack.start_profile()
        async with httpx.AsyncClient(base_url=cluster.url, timeout=30) as http:
            for name in names:
                body = {
                    "apiVersion": API,
                    "kind": "GenerationJob",
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {
                        "pool": POOL,
                        "prompt": f"a lighthouse ({name})",
                        "quality": "low",
                        "width": 64,
                        "height": 64,
                        "steps": STEPS,
                    },
                }
                response = await http.post(
                    f"/apis/{API}/namespaces/default/generationjobs", json=body)  # fmt: skip
                response.raise_for_status()
                created[name] = time.time()
                if gap:
                    await asyncio.sleep(gap)

        def phase(name: str) -> Any:
            return ((cluster.get(API, "GenerationJob", name, "default") or {}).get("status")
                    or {}).get("phase")  # fmt: skip

        def idle() -> bool:
            """The instances' job counts are back to 0: the jobs' trailing writes landed."""
            return all(not (i.get("status") or {}).get("jobs")
                       for i in cluster.list(API, "GpuInstance", "default"))  # fmt: skip

        # The newest jobs finish last: checked first, so a pending one ends the check early.
        await wait_until(lambda: all(phase(n) in DONE for n in reversed(names)), 900,
                         "all jobs done")  # fmt: skip
        wall = time.monotonic() - start
        await stack.stop_profile()
        await wait_until(idle, 60, "instance job counts back to 0")
        cpu = stack.cpu_seconds() - cpu0
        own = time.process_time() - own0
        requests = list(log)[first_request:]
        writes = [r for r in requests if r.method in WRITES]
        by_target: Counter[str] = Counter()
        for r in writes:
            resource = getattr(r.resource, "plural", None) or str(r.resource)
            by_target[f"{r.method} {resource}{'/' + r.subresource if r.subresource else ''}"] += 1
        job_writes = [r for r in writes
                      if "generationjobs" in str(r.url) and r.method != "POST"]  # fmt: skip
        status_writes = [r for r in job_writes if r.subresource == "status"]
        latencies, runs, placed_to_started, phases = [], [], [], Counter()
        timeline: dict[str, list[tuple[float, float]]] = {}
        for n in names:
            st = (cluster.get(API, "GenerationJob", n, "default") or {}).get("status") or {}
            phases[st.get("phase")] += 1
            if st.get("startedAt") and st.get("finishedAt"):
                started, finished = stamp(st["startedAt"]), stamp(st["finishedAt"])
                latencies.append((started - created[n]) * 1000.0)
                runs.append((finished - started) * 1000.0)
                placed_to_started.append((started - stamp(st["scheduledAt"])) * 1000.0)
                timeline.setdefault(st["instance"], []).append((stamp(st["scheduledAt"]),
                                                                finished))  # fmt: skip
        gaps = [b[0] - a[1] for spans in timeline.values()
                for a, b in zip(sorted(spans), sorted(spans)[1:], strict=False)
                if b[0] >= a[1]]  # fmt: skip
        run_p50 = statistics.median(runs) / 1000.0
        capacity = instances / run_p50 if run_p50 > 0 else float("inf")
        per_job_own = own * 1000 / jobs
        return {
            "ratios (issue 16)": {
                "operator_cpu_per_job / (api + simulators) cpu_per_job (goal <= 0.5)": round(
                    cpu * 1000 / jobs / per_job_own, 2
                )
                if per_job_own
                else None,
                "jobs_per_second / capacity (instances / run p50) (goal >= 0.9)": round(
                    jobs / wall / capacity, 2
                ),
                "api_writes_per_job (goal <= 5)": round(len(writes) / jobs, 2),
                "capacity_jobs_per_second": round(capacity, 1),
                "arrivals_per_second": round(1 / gap, 1) if gap else None,
                "arrivals_above_capacity": (not gap) or 1 / gap > capacity,
            },
            "jobs": jobs,
            "instances": instances,
            "arrival_gap_ms": gap * 1000,
            "phases": dict(phases),
            "wall_seconds": round(wall, 2),
            "jobs_per_second": round(jobs / wall, 1),
            "dispatch_ms_p50": round(statistics.median(latencies), 1),
            "dispatch_ms_p99": round(percentile(latencies, 99), 1),
            "dispatch_ms_max": round(max(latencies), 1),
            "run_ms_p50 (started→outputs stored, Succeeded)": round(statistics.median(runs), 1),
            "slot_turnaround_ms_p50 (finished→next placed)": round(statistics.median(gaps), 1)
            if gaps
            else None,
            "operator_cpu_ms_per_job": round(cpu * 1000 / jobs, 2),
            "simulators_and_api_cpu_ms_per_job": round(own * 1000 / jobs, 2),
            "placed_to_started_ms_p50 (scheduledAt→startedAt)": round(
                statistics.median(placed_to_started), 1
            ),
            "api_writes_per_job": round(len(writes) / jobs, 2),
            "job_object_writes_per_job": round(len(job_writes) / jobs, 2),
            "job_status_writes_per_job": round(len(status_writes) / jobs, 2),
            "api_writes_by_target": dict(by_target.most_common()),
        }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between creations")
    parser.add_argument("--time-scale", type=float, default=240.0)
    parser.add_argument(
        "--gpu-seconds", type=float, default=0.4,
        help="wall seconds a job's sampling takes on a simulated GPU (the issue's reference: "
        "10 instances ÷ 0.42 s = 23.6 jobs/s, below the 50/s arriving)",
    )  # fmt: skip
    args = parser.parse_args()
    result = await run(args.jobs, args.instances, gap=args.gap, time_scale=args.time_scale,
                       gpu_seconds=args.gpu_seconds)  # fmt: skip
    print(f"\n== {result['jobs']} jobs over {result['instances']} ready instances")
    for key, value in result.items():
        if isinstance(value, dict) and key.startswith("ratios"):
            print(f"  {key}:")
            for name, figure in value.items():
                print(f"    {name:72} {figure}")
        else:
            print(f"  {key:30} {value}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "jobs.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
