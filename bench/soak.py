"""Benchmark: a chaos day (issue 15) — does anything leak, double or get lost?

One simulated day in scaled time (default 600 wall seconds at x144): the emulated API and
the Vast.ai simulator in this process, ``warmpool-operator`` as its own process, one pool
with a budget. Jobs arrive at random; Vast.ai answers storms of 429s and of 5xx; creates
rent but their answers are lost; machines vanish and fill their disks; ComfyUIs crash;
the operator is killed with SIGKILL at random moments (some the moment a create reaches
Vast.ai) and started again each time. Then the faults stop, the jobs drain and the orphan
collector runs (``warmpool.sim.chaos_day``).

Figures, printed and written to ``bench/results/soak.json``, all counted from the outside
(the simulator's rentals and the emulated API's objects):
- duplicate rentals: rentals made with an idempotency label another rental already had;
- orphan rentals: live rentals whose label names no GpuInstance, after collection;
- lost jobs: jobs not Succeeded, Cancelled or Failed with a reason (or stuck deleting);
- dollars spent (at the operator's clock) against the daily cap, the peak $/hour of the
  rentals that existed against the hourly cap;
- the longest time from a restart to the pool converging again, and its ratio to a clean
  start's (operator started → pool converged) measured in the same run.
The goal: 0, 0, 0, within the caps.

Run: ``.venv/bin/python bench/soak.py [--seconds 600] [--kills 24] [--seed 15]``.
No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from warmpool.sim.chaos_day import SETTINGS, DayPlan, run_day

RESULTS = Path(__file__).parent / "results"


def figures(result: Any, plan: DayPlan) -> dict[str, Any]:
    t = result.tally
    measured = [s for s in result.restart_converge_seconds if s is not None]
    longest = result.longest_restart_converge
    clean = result.clean_start_seconds
    return {
        "duplicate_rentals": t.duplicate_rentals,
        "orphan_rentals_after_gc": len(t.orphan_rentals),
        "lost_jobs": len(t.lost_jobs),
        "spent_dollars (operator clock)": t.spent_dollars,
        "daily_cap_dollars": plan.max_daily,
        "spent / daily cap": round(t.spent_dollars / plan.max_daily, 4),
        "peak_dollars_per_hour": result.peak_hourly,
        "hourly_cap_dollars": plan.max_hourly,
        "peak / hourly cap": round(result.peak_hourly / plan.max_hourly, 4),
        "sigkills": result.kills,
        "restarts_never_converged": len(result.restart_converge_seconds) - len(measured),
        "clean_start_converge_s (reference)": clean,
        "longest_restart_converge_s": longest,
        "longest restart converge / clean start": round(longest / clean, 2)
        if longest is not None and clean
        else None,
        "median_restart_converge_s": round(statistics.median(measured), 2) if measured else None,
        "median restart converge / clean start": round(statistics.median(measured) / clean, 2)
        if measured and clean
        else None,
        "jobs_by_phase": t.jobs,
        "rentals_made": t.rentals_made,
        "faults_injected": result.faults,
        "faults_never_fired": result.unfired_faults,
        "drain_seconds": result.drained_seconds,
        "wall_seconds": result.wall_seconds,
        "simulated_hours": round(plan.seconds * plan.time_scale / 3600, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="wall seconds of chaos")
    parser.add_argument("--time-scale", type=float, default=None,
                        help="simulated s per wall s (default: a day in --seconds)")  # fmt: skip
    parser.add_argument("--kills", type=int, default=24)
    parser.add_argument("--jobs", type=int, default=None, help="default: one per 2 s")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the operator's log and a timeline in this folder")  # fmt: skip
    parser.add_argument("--log-level", default="WARNING", help="the operator's log level")
    args = parser.parse_args()
    SETTINGS["log_level"] = args.log_level
    # Killed mid-request, the operator leaves connections that aiohttp reports as errors.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    scale = args.time_scale or 86400.0 / args.seconds
    per_day = args.seconds / 600.0
    plan = DayPlan(
        seconds=args.seconds, time_scale=scale, seed=args.seed, kills=args.kills,
        kills_at_create=max(1, args.kills // 4), jobs=args.jobs or int(args.seconds / 2),
        storms=max(2, round(8 * per_day)), lost_creates=max(1, round(4 * per_day)),
        vanishes=max(1, round(4 * per_day)), disk_fulls=max(1, round(3 * per_day)),
        comfy_crashes=max(1, round(5 * per_day)), deletes=max(1, round(6 * per_day)),
    )  # fmt: skip
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    result = await run_day(plan, say=lambda text: print(f"  .. {text}", flush=True),
                           keep=args.keep)  # fmt: skip
    out = figures(result, plan)
    print(f"\n== chaos day: {out['simulated_hours']} simulated hours in {plan.seconds:g} s, "
          f"{result.kills} SIGKILLs")  # fmt: skip
    for key, value in out.items():
        print(f"  {key:42} {value}")
    if result.tally.lost_jobs:
        print("  lost:", json.dumps(result.tally.lost_detail, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    detail = {
        "figures": out,
        "restart_converge_seconds": result.restart_converge_seconds,
        "events": result.events,
        "tally": asdict(result.tally),
        "plan": result.plan,
    }
    (RESULTS / "soak.json").write_text(json.dumps(detail, indent=2, default=str) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
