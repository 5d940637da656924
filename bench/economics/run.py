"""Scaling economics: warmpool's policy and the alternatives through three days of demand.

    .venv/bin/python bench/economics/run.py [--seeds 3] [--out bench/results/economics.json]

Prints a table per trace, writes every figure as JSON and a PNG of dollars against
the 95th percentile of job wait. Figures are means over ``--seeds`` supply seeds
(boot times, failures, machines lost); the traces are the committed files in
``bench/economics/traces/`` (regenerated from their seeds when missing).

The hedging figure pools every cold start (a rental made while no instance of the
pool is Ready, until the first becomes Ready) of ``warmpool`` (``hedge 1``, the
default) and ``warmpool-unhedged`` over all traces and seeds, plus ``--cold-trials``
dedicated cold starts of an empty pool; its spend figure is the sum of dollars over
all traces and seeds.

The bound (:mod:`bound`) is the least any online policy can expect to spend for the
wait target on a trace's arrival rate; a cost target below it cannot be met.

See README.md in this folder for the definitions and the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script, this folder is already there
    sys.path.insert(0, str(HERE))

import bound  # noqa: E402
import demand  # noqa: E402
import policies  # noqa: E402
from engine import Result, percentile  # noqa: E402
from supply import SupplyModel  # noqa: E402

RESULTS = HERE.parent / "results"
HEDGE_PAIR = ("warmpool", "warmpool-unhedged")
"""Hedged (the default, ``hedge 1``) and unhedged."""
COST_LIMIT = 1.25
WAIT_LIMIT_S = 60.0
NUMERIC = (
    "dollars",
    "gpu_hours_billed",
    "gpu_hours_busy",
    "gpu_hours_idle",
    "gpu_hours_booting",
    "rentals",
    "failed_rentals",
    "hedge_rentals",
    "jobs_done",
    "images",
    "wait_p50_s",
    "wait_p95_s",
    "wait_p99_s",
    "wait_max_s",
    "jobs_waited_for_cold_start",
    "cold_starts",
    "dollars_per_1000_images",
    "storage_dollars",
    "stops",
    "starts",
    "gpu_taken",
    "resume_timeouts",
)
COLD_POLICY = "warmpool-cold"
WEEK_GOAL: dict[str, tuple[float, float]] = {
    "diurnal-week": (60.0, 1.25),
    "bursty-week": (300.0, 1.25),
    "sparse-week": (60.0, 2.0),
}
"""The cold tier's goal (issue 17): p95 wait limit (s) and cost limit (× oracle)."""


def mean_summary(results: list[Result]) -> dict[str, Any]:
    """Mean of each figure over seeds (percentiles: mean of the per-seed percentiles)."""
    rows = [r.summary() for r in results]
    out: dict[str, Any] = {
        "policy": rows[0]["policy"],
        "trace": rows[0]["trace"],
        "jobs": rows[0]["jobs"],
        "seeds": len(rows),
    }
    for key in NUMERIC:
        out[key] = round(statistics.fmean(float(r[key]) for r in rows), 4)
    colds = [c for r in results for c in r.cold_starts]
    out["cold_start_ready_p95_s"] = round(percentile(colds, 95), 1)
    out["by_seed"] = {
        "dollars": [round(float(r["dollars"]), 4) for r in rows],
        "wait_p95_s": [float(r["wait_p95_s"]) for r in rows],
    }
    return out


def cold_trials(trials: int, supply: SupplyModel) -> dict[str, dict[str, float]]:
    """Cold starts of an empty pool: one job at t=0, 30 simulated minutes, many seeds."""
    trace = demand.Trace(
        "cold",
        0,
        "one job into an empty pool",
        demand.START,
        0.5,
        (demand.Job("cold-0", 0.0, "medium", 1, demand.run_seconds("medium", 1)),),
    )
    figures = {}
    for definition in policies.POLICIES:
        if definition.name not in HEDGE_PAIR:
            continue
        colds, dollars = [], []
        for seed in range(trials):
            r = policies.run_policy(definition, trace, supply=supply, seed=10_000 + seed)
            colds += r.cold_starts[:1]
            dollars.append(r.dollars)
        figures[definition.name] = {
            "trials": trials,
            "ready_p50_s": round(percentile(colds, 50), 1),
            "ready_p95_s": round(percentile(colds, 95), 1),
        }
    return figures


def hedging(raw: dict[str, list[Result]], trials_n: int, supply: SupplyModel) -> dict[str, Any]:
    """The hedging figure: cold starts of ``warmpool`` against ``warmpool-unhedged``."""
    colds = {name: [c for r in raw[name] for c in r.cold_starts] for name in HEDGE_PAIR}
    spend = {name: sum(r.dollars for r in raw[name]) for name in colds}
    trials = cold_trials(trials_n, supply) if trials_n else {}
    p95 = {name: percentile(c, 95) for name, c in colds.items()}
    pooled: dict[str, Any] = {
        "cold_starts": {n: len(c) for n, c in colds.items()},
        "day_cold_start_ready_p95_s": {n: round(v, 1) for n, v in p95.items()},
        "trials": trials,
        "spend_ratio": round(spend["warmpool"] / spend["warmpool-unhedged"], 3),
    }
    if trials:
        cut = 1 - trials["warmpool"]["ready_p95_s"] / trials["warmpool-unhedged"]["ready_p95_s"]
        pooled["trial_p95_cut"] = round(cut, 3)
    if p95["warmpool-unhedged"]:
        pooled["day_p95_cut"] = round(1 - p95["warmpool"] / p95["warmpool-unhedged"], 3)
    return pooled


def verdicts(
    rows: list[dict[str, Any]], pooled: dict[str, Any], supply: SupplyModel
) -> dict[str, Any]:
    """The issue's goal, checked figure by figure, with the online bound beside it."""
    by = {(r["policy"], r["trace"]): r for r in rows}
    price = policies.cheapest_price()
    out: dict[str, Any] = {}
    for trace in sorted({r["trace"] for r in rows}):
        w, o, f = by[("warmpool", trace)], by[("oracle", trace)], by[("fixed-1", trace)]
        before = by.get(("warmpool-before", trace))
        ratio = w["dollars"] / o["dollars"] if o["dollars"] else math.inf
        entry: dict[str, Any] = {
            "cost_vs_oracle": round(ratio, 3),
            "cost_ok": ratio <= COST_LIMIT,
            "wait_p95_s": w["wait_p95_s"],
        }
        if before is not None and o["dollars"]:
            entry["before_cost_vs_oracle"] = round(before["dollars"] / o["dollars"], 3)
            entry["before_wait_p95_s"] = before["wait_p95_s"]
        if trace == "bursty":
            entry["wait_ok"] = w["wait_p95_s"] < f["wait_p95_s"]
            entry["fixed_1_wait_p95_s"] = f["wait_p95_s"]
        else:
            entry["wait_ok"] = w["wait_p95_s"] <= WAIT_LIMIT_S
            rate = demand.RATES.get(trace)
            if rate is not None and o["dollars"]:
                hours = bound.billed_hours_bound(rate, supply, wait_s=WAIT_LIMIT_S)
                least = hours * price
                entry["online_bound_gpu_hours"] = round(hours, 2)
                entry["online_bound_dollars"] = round(least, 2)
                entry["online_bound_vs_oracle"] = round(least / o["dollars"], 3)
                entry["both_reachable"] = least <= COST_LIMIT * o["dollars"]
        out[trace] = entry
    out["hedge"] = pooled
    return out


def week_verdicts(rows: list[dict[str, Any]], supply: SupplyModel) -> dict[str, Any]:
    """Learned warm-up against the rate rule alone, per seven-day trace, and the bound."""
    by = {(r["policy"], r["trace"]): r for r in rows}
    out: dict[str, Any] = {}
    for trace in sorted({r["trace"] for r in rows}):
        o = by[("oracle", trace)]["dollars"]
        entry: dict[str, Any] = {}
        base = trace.removesuffix("-week")
        if base != "bursty" and o:
            per_day = bound.billed_hours_bound(demand.RATES[base], supply, wait_s=WAIT_LIMIT_S)
            least = per_day * demand.WEEK_DAYS * policies.cheapest_price()
            entry["online_bound_dollars"] = round(least, 2)
            entry["online_bound_vs_oracle"] = round(least / o, 3)
            disk = float(policies.COLD["template"]["diskGb"])
            dollars, k, hours = bound.cold_bound(
                demand.RATES[base],
                supply,
                price_per_hour=policies.cheapest_price(),
                storage_per_hour=policies.cheapest_storage(disk),
                wait_s=WAIT_LIMIT_S,
            )
            entry["cold_bound_dollars"] = round(dollars * demand.WEEK_DAYS, 2)
            entry["cold_bound_vs_oracle"] = round(dollars * demand.WEEK_DAYS / o, 3)
            entry["cold_bound_stopped"] = k
            entry["cold_bound_gpu_hours_per_day"] = round(hours, 2)
        oracle_seeds = by[("oracle", trace)]["by_seed"]["dollars"]
        for name in ("warmpool", "warmpool-rate-only", COLD_POLICY):
            r = by.get((name, trace))
            if r is None:
                continue
            ratios = [d / od for d, od in zip(r["by_seed"]["dollars"], oracle_seeds, strict=True)
                      if od]  # fmt: skip
            entry[name] = {
                "cost_vs_oracle": round(r["dollars"] / o, 3) if o else math.inf,
                "wait_p95_s": r["wait_p95_s"],
                "worst_seed_cost_vs_oracle": round(max(ratios), 3) if ratios else math.inf,
                "worst_seed_wait_p95_s": max(r["by_seed"]["wait_p95_s"]),
            }
        wait, cost = WEEK_GOAL.get(trace, (WAIT_LIMIT_S, COST_LIMIT))
        for name in ("warmpool", COLD_POLICY):
            if name in entry:
                e = entry[name]
                e["goal_met"] = e["wait_p95_s"] <= wait and e["cost_vs_oracle"] <= cost
                e["goal_met_every_seed"] = (
                    e["worst_seed_wait_p95_s"] <= wait and e["worst_seed_cost_vs_oracle"] <= cost
                )
        entry["goal"] = {"wait_p95_s": wait, "cost_vs_oracle": cost}
        out[trace] = entry
    return out


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'trace':8} {'policy':20} {'$':>8} {'$/1k img':>9} {'idle h':>7} {'boot h':>7}"
        f" {'p50 s':>7} {'p95 s':>7} {'p99 s':>7} {'cold':>5} {'rent':>5} {'fail':>4}"
        f" {'store $':>7} {'starts':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['trace']:8} {r['policy']:20} {r['dollars']:8.2f}"
            f" {r['dollars_per_1000_images']:9.2f}"
            f" {r['gpu_hours_idle']:7.2f} {r['gpu_hours_booting']:7.2f} {r['wait_p50_s']:7.1f}"
            f" {r['wait_p95_s']:7.1f} {r['wait_p99_s']:7.1f}"
            f" {r['jobs_waited_for_cold_start']:5.1f} {r['rentals']:5.1f}"
            f" {r['failed_rentals']:4.1f} {r.get('storage_dollars', 0.0):7.2f}"
            f" {r.get('starts', 0.0):6.1f}"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], goal: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    traces = sorted({r["trace"] for r in rows})
    cols = min(len(traces), 3)
    rows_n = math.ceil(len(traces) / cols)
    fig, grid = plt.subplots(rows_n, cols, figsize=(5 * cols, 4.5 * rows_n), squeeze=False)
    axes = [ax for row in grid for ax in row][: len(traces)]
    markers = {
        "warmpool-always-warm": "v",
        "fixed-1": "s",
        "on-demand": "^",
        "warmpool": "o",
        "warmpool-unhedged": "D",
        "warmpool-before": "P",
        "warmpool-rate-only": "X",
        "warmpool-cold": "h",
        "oracle": "*",
    }
    for ax, trace in zip(axes, traces, strict=True):
        for r in (r for r in rows if r["trace"] == trace):
            ax.scatter(
                max(r["wait_p95_s"], 1.0),
                r["dollars"],
                s=80,
                marker=markers.get(r["policy"], "x"),
                label=r["policy"],
            )
            ax.annotate(
                r["policy"],
                (max(r["wait_p95_s"], 1.0), r["dollars"]),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
        oracle = next(r["dollars"] for r in rows if r["trace"] == trace and r["policy"] == "oracle")
        limit = WEEK_GOAL.get(trace, (WAIT_LIMIT_S, COST_LIMIT))[1]
        ax.axhline(limit * oracle, color="grey", linestyle=":", linewidth=1)
        ax.annotate(f"{limit}x oracle", (1.0, limit * oracle), fontsize=7,
                    xytext=(2, 2), textcoords="offset points", color="grey")  # fmt: skip
        least = goal.get(trace, {}).get("online_bound_dollars")
        cold_least = goal.get(trace, {}).get("cold_bound_dollars")
        if cold_least is not None:
            ax.axhline(cold_least, color="teal", linestyle="--", linewidth=1)
            ax.annotate("least with stopped instances", (1.0, cold_least), fontsize=7,
                        xytext=(2, 2), textcoords="offset points", color="teal")  # fmt: skip
        if least is not None:
            ax.axhline(least, color="firebrick", linestyle="--", linewidth=1)
            ax.axvline(WAIT_LIMIT_S, color="firebrick", linestyle=":", linewidth=1)
            ax.annotate(f"least any online policy spends for p95 <= {WAIT_LIMIT_S:.0f} s",
                        (1.0, least), fontsize=7, xytext=(2, 2), textcoords="offset points",
                        color="firebrick")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("job wait p95, seconds (log; 0 drawn at 1)")
        ax.set_ylabel("dollars per week" if trace.endswith("-week") else "dollars per day")
        ax.set_title(trace)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("warmpool scaling economics: cost against p95 wait")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


SWEEP: tuple[tuple[str, dict[str, Any], bool], ...] = (
    ("idleTimeout 15m", {"idleTimeout": "15m"}, True),
    ("idleTimeout 10m", {"idleTimeout": "10m"}, True),
    ("idleTimeout 5m", {"idleTimeout": "5m"}, True),
    ("idleTimeout 4m (default)", {}, True),
    ("idleTimeout 3m", {"idleTimeout": "3m"}, True),
    ("hedge 0", {"hedge": 0}, True),
    ("hedge 2", {"hedge": 2}, True),
    ("one rental per queued job", {}, False),
    ("warmup 2/h over 1h", {"warmup": {"replicas": 1, "minArrivalsPerHour": 2}}, True),
    ("warmup 1.5/h over 2h", {"warmup": {"replicas": 1, "minArrivalsPerHour": 1.5,
                                         "window": "2h"}}, True),
)  # fmt: skip
"""The settings around the defaults: each line changes one thing of ``warmpool``."""


def sweep(traces: list[demand.Trace], supply: SupplyModel, seeds: int) -> list[dict[str, Any]]:
    """Cost against the oracle and p95 wait per trace for each line of :data:`SWEEP`."""
    oracle = {
        t.name: statistics.fmean(
            policies.run_oracle(t, supply=supply, seed=s).dollars for s in range(seeds)
        )
        for t in traces
    }
    rows = []
    for label, change, work in SWEEP:
        definition = policies.PolicyDef(
            label, {**policies.WARMPOOL, **change}, recent_arrivals=True, queued_seconds=work
        )
        row: dict[str, Any] = {"settings": label}
        for t in traces:
            results = [policies.run_policy(definition, t, supply=supply, seed=s)
                       for s in range(seeds)]  # fmt: skip
            dollars = statistics.fmean(r.dollars for r in results)
            row[t.name] = {
                "cost_vs_oracle": round(dollars / oracle[t.name], 3),
                "wait_p95_s": round(statistics.fmean(percentile(r.waits, 95) for r in results), 1),
            }
        rows.append(row)
        print(
            f"{label:28}"
            + "".join(
                f"  {t.name} {row[t.name]['cost_vs_oracle']:5.2f}x p95 "
                f"{row[t.name]['wait_p95_s']:6.0f} s"
                for t in traces
            ),
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="supply seeds per trace")
    parser.add_argument("--cold-trials", type=int, default=1000, help="dedicated cold starts")
    parser.add_argument("--traces", type=Path, default=HERE / "traces")
    parser.add_argument("--out", type=Path, default=RESULTS / "economics.json")
    parser.add_argument("--png", type=Path, default=RESULTS / "economics.png")
    parser.add_argument(
        "--week-seeds",
        type=int,
        default=3,
        help="supply seeds per seven-day trace (learned warm-up; 0 skips them)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated policy names to run (the oracle always runs; default: all)",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="instead: warmpool with one setting changed at a time (economics-sweep.json)",
    )
    args = parser.parse_args(argv)
    supply = SupplyModel()
    if args.sweep:
        rows = sweep(demand.ensure(args.traces), supply, args.seeds)
        out = args.out.with_name("economics-sweep.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"seeds": args.seeds, "rows": rows}, indent=1) + "\n")
        print(f"wrote {out}")
        return 0
    only = set(args.only.split(",")) | {"oracle"} if args.only else None

    def chosen(defs: tuple[policies.PolicyDef, ...]) -> list[policies.PolicyDef]:
        return [d for d in defs if only is None or d.name in only]

    rows: list[dict[str, Any]] = []
    raw: dict[str, list[Result]] = {}
    for trace in demand.ensure(args.traces) if args.seeds else []:
        for definition in chosen(policies.POLICIES):
            results = [
                policies.run_policy(definition, trace, supply=supply, seed=s)
                for s in range(args.seeds)
            ]
            raw.setdefault(definition.name, []).extend(results)
            rows.append(mean_summary(results))
    pooled: dict[str, Any] = {}
    if all(raw.get(name) for name in HEDGE_PAIR):
        pooled = hedging(raw, args.cold_trials, supply)
    day_traces = {r["trace"] for r in rows}
    complete = all(("warmpool", t) in {(r["policy"], r["trace"]) for r in rows} for t in day_traces)
    goal = verdicts(rows, pooled, supply) if complete and pooled else {}
    week_rows: list[dict[str, Any]] = []
    if args.week_seeds:
        for trace in demand.ensure(args.traces, demand.WEEKS):
            for definition in chosen(policies.WEEK_POLICIES):
                results = [
                    policies.run_policy(definition, trace, supply=supply, seed=s)
                    for s in range(args.week_seeds)
                ]
                week_rows.append(mean_summary(results))
                print(f"  {trace.name} {definition.name}: done", file=sys.stderr, flush=True)
        goal["week"] = week_verdicts(week_rows, supply)
    if rows:
        print(table(rows))
    if week_rows:
        print("\nseven days (the learned warm-up learns from the first):")
        print(table(week_rows))
    print(json.dumps(goal, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "supply": vars(supply) | {"sigma": supply.sigma},
        "policies": {p.name: p.settings for p in policies.POLICIES},
        "traces": {
            t.name: {"jobs": len(t.jobs), "description": t.description}
            for t in demand.ensure(args.traces)
        },
        "results": rows,
        "week_results": week_rows,
        "goal": goal,
    }
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    plot(rows + week_rows, {**goal, **goal.get("week", {})}, args.png)
    print(f"wrote {args.out} and {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
