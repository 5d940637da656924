"""The economics simulator on a tiny trace: invariants of its accounting, not timings."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from warmpool.crds.gpupool import GpuPoolSpec

BENCH = Path(__file__).resolve().parents[2] / "bench" / "economics"


@pytest.fixture(scope="module")
def econ() -> Iterator[dict[str, ModuleType]]:
    """The bench modules, imported from their folder (not the repository root)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(BENCH))
        names = ("supply", "demand", "engine", "coldtier", "policies", "bound")
        yield {n: importlib.import_module(n) for n in names}
        for n in names:
            sys.modules.pop(n, None)


def tiny_trace(demand: Any) -> Any:
    """Four jobs over 45 simulated minutes, two of them at once."""
    jobs = [
        demand.Job(f"t-{n}", at, "medium", 1, demand.run_seconds("medium", 1))
        for n, at in enumerate([60.0, 900.0, 900.0, 2400.0])
    ]
    return demand.Trace("tiny", 0, "test", demand.START, 0.75, tuple(jobs))


@pytest.mark.parametrize("deterministic", [True, False], ids=["fixed-boot", "random-boot"])
def test_every_policy_accounts_for_every_job(
    econ: dict[str, ModuleType], deterministic: bool
) -> None:
    supply = econ["supply"].SupplyModel(deterministic=deterministic)
    trace = tiny_trace(econ["demand"])
    for definition in econ["policies"].POLICIES:
        r = econ["policies"].run_policy(definition, trace, supply=supply, seed=3)
        assert r.jobs == 4
        assert r.jobs_done == 4, f"{definition.name} lost a job"
        assert len(r.waits) == 4
        assert min(r.waits) >= 0.0
        assert r.images == 4
        assert r.dollars >= 0.0
        assert r.gpu_hours_busy <= r.gpu_hours_billed + 1e-9, definition.name
        assert r.gpu_hours_booting <= r.gpu_hours_billed + 1e-9, definition.name
        assert r.cold_waits <= r.jobs_done


def test_oracle_is_cheapest_on_spaced_jobs(econ: dict[str, ModuleType]) -> None:
    """Jobs that never overlap: zero waiting costs no more than any policy spends."""
    supply = econ["supply"].SupplyModel(deterministic=True)
    demand = econ["demand"]
    jobs = tuple(
        demand.Job(f"s-{n}", 60.0 + 700.0 * n, "low", 1, demand.run_seconds("low", 1))
        for n in range(4)
    )
    trace = demand.Trace("spaced", 0, "test", demand.START, 0.75, jobs)
    costs = {
        d.name: econ["policies"].run_policy(d, trace, supply=supply).dollars
        for d in econ["policies"].POLICIES
    }
    oracle = costs.pop("oracle")
    # The oracle is the least a pool of fresh rentals spends: a cold tier resumes in 40 s
    # instead of booting in 4 min, and may spend less (test_cold_tier_* below).
    costs.pop("warmpool-cold")
    assert oracle > 0.0
    for name, dollars in costs.items():
        assert oracle <= dollars + 1e-9, f"{name} spent ${dollars:.4f} < oracle ${oracle:.4f}"


def test_no_instance_is_billed_outside_its_rental(econ: dict[str, ModuleType]) -> None:
    engine = econ["engine"]
    trace = tiny_trace(econ["demand"])
    spans: list[tuple[float, float]] = []

    class Recording(engine.Simulation):  # type: ignore[misc, name-defined]
        def release(self, inst: Any, now: float) -> None:
            spans.append((inst.rented_at, now))
            super().release(inst, now)

    spec = econ["policies"].POLICIES[2].spec()
    sim = Recording(
        "warmpool", spec, trace, supply=econ["supply"].SupplyModel(), seed=5, recent_arrivals=True
    )
    result = sim.run()
    assert spans
    assert len(spans) == result.rentals
    assert all(0.0 <= rented <= released for rented, released in spans)
    billed = sum(released - rented for rented, released in spans) / 3600.0
    assert billed == pytest.approx(result.gpu_hours_billed)
    assert not sim.instances, "an instance outlived the simulation"


def test_bound_on_a_constant_rate_is_the_covered_share_of_the_day(
    econ: dict[str, ModuleType],
) -> None:
    bound, supply = econ["bound"], econ["supply"].SupplyModel(deterministic=True)
    assert bound.p_fast(supply, 60.0) == 0.0  # every boot takes 4 minutes
    hours = bound.billed_hours_bound(lambda h: 3.0, supply, wait_s=60.0, quantile=0.95)
    assert hours == pytest.approx(0.95 * 24.0, rel=1e-3)


def test_bound_covers_the_busiest_hours_first(econ: dict[str, ModuleType]) -> None:
    """Half the arrivals in one hour: covering 95 % needs that hour and most of the rest."""
    bound, supply = econ["bound"], econ["supply"].SupplyModel(deterministic=True)

    def rate(hour: float) -> float:
        return 23.0 if 12.0 <= hour < 13.0 else 1.0

    hours = bound.billed_hours_bound(rate, supply, wait_s=60.0, quantile=0.95)
    # 46 jobs/day: 0.95 × 46 = 43.7 = 23 (the busy hour) + 20.7 one-per-hour hours.
    assert hours == pytest.approx(1.0 + 20.7, rel=1e-3)
    assert hours < bound.billed_hours_bound(lambda h: 46 / 24, supply, wait_s=60.0)


def test_bound_shrinks_with_fast_boots_and_looser_targets(econ: dict[str, ModuleType]) -> None:
    bound, model = econ["bound"], econ["supply"].SupplyModel
    slow, fast = model(), model(boot_median_s=30.0, boot_p95_s=90.0)
    assert 0.0 < bound.p_fast(slow, 60.0) < 0.05
    assert bound.p_fast(fast, 60.0) > 0.5
    flat = lambda hour: 3.0  # noqa: E731
    assert bound.billed_hours_bound(flat, fast) < bound.billed_hours_bound(flat, slow)
    assert bound.billed_hours_bound(flat, slow, quantile=0.5) < bound.billed_hours_bound(
        flat, slow, quantile=0.95
    )
    assert bound.billed_hours_bound(lambda hour: 0.0, slow) == 0.0


def test_week_traces_are_days_back_to_back(econ: dict[str, ModuleType]) -> None:
    demand = econ["demand"]
    week = demand.generate_week("sparse", days=3)
    assert week.name == "sparse-week" and week.hours == 72.0
    times = [j.at for j in week.jobs]
    assert times == sorted(times)
    assert len({j.id for j in week.jobs}) == len(week.jobs)
    per_day = [sum(1 for t in times if d * 86400 <= t < (d + 1) * 86400) for d in range(3)]
    assert all(n > 0 for n in per_day), per_day
    assert week.jobs != demand.generate_week("sparse", days=3, seed=1).jobs


def test_learned_warm_up_runs_from_its_own_history(econ: dict[str, ModuleType]) -> None:
    """Two days of jobs in the same two hours: on day two the pool is warm before they come."""
    demand, engine = econ["demand"], econ["engine"]
    jobs = tuple(
        demand.Job(f"d{d}-{n}", d * 86400.0 + 10 * 3600.0 + 300.0 * n, "low", 1,
                   demand.run_seconds("low", 1))
        for d in range(2) for n in range(12)
    )  # fmt: skip
    trace = demand.Trace("two-days", 0, "test", demand.START, 48.0, jobs)
    supply = econ["supply"].SupplyModel(deterministic=True)
    waits = {}
    for coverage in (0.95, 0.0):
        warm = {"replicas": 1, "coverage": coverage}
        spec = GpuPoolSpec.model_validate(
            {"replicas": 0, "maxReplicas": 2, "hedge": 0, "warmup": warm}
        )
        sim = engine.Simulation("p", spec, trace, supply=supply, recent_arrivals=True,
                                queued_seconds=True)  # fmt: skip
        result = sim.run()
        assert result.jobs_done == len(jobs)
        waits[coverage] = [sim.jobs[f"d1-{n}"].start - sim.jobs[f"d1-{n}"].arrival
                           for n in range(12)]  # fmt: skip
    assert waits[0.95][0] == 0.0, "the learned pool was not warm when day two began"
    assert waits[0.0][0] > 0.0, "the rate rule alone cannot know day two's first job"


def test_resume_draws_follow_the_supply_model(econ: dict[str, ModuleType]) -> None:
    import random
    import statistics

    supply = econ["supply"]
    model = supply.SupplyModel()
    rng = random.Random(1)
    draws = [supply.draw_resume(model, rng) for _ in range(4000)]
    assert 0.13 < sum(d.taken for d in draws) / len(draws) < 0.17
    times = sorted(d.ready_s for d in draws)
    assert statistics.median(times) == pytest.approx(40.0, rel=0.08)
    assert times[int(0.95 * len(times))] == pytest.approx(120.0, rel=0.12)
    fixed = supply.draw_resume(supply.SupplyModel(deterministic=True), rng)
    assert (fixed.ready_s, fixed.taken) == (40.0, False)
    assert all(0.05 <= o.storage_cost <= 0.5 for o in supply.catalogue())


def cold_spec(**extra: Any) -> GpuPoolSpec:
    return GpuPoolSpec.model_validate(
        {"replicas": 0, "maxReplicas": 2, "hedge": 0, "idleTimeout": "1m",
         "cold": {"replicas": 1}, **extra}
    )  # fmt: skip


def two_visits(demand: Any) -> Any:
    """One job, then another 30 minutes later: the pool has gone cold in between."""
    jobs = tuple(
        demand.Job(f"v-{n}", at, "low", 1, demand.run_seconds("low", 1))
        for n, at in enumerate([60.0, 1860.0])
    )
    return demand.Trace("visits", 0, "test", demand.START, 1.0, jobs)


def test_cold_tier_stops_then_starts_instead_of_renting(econ: dict[str, ModuleType]) -> None:
    engine, coldtier, supply = econ["engine"], econ["coldtier"], econ["supply"]
    model = supply.SupplyModel(deterministic=True)
    trace = two_visits(econ["demand"])
    sim = coldtier.ColdSimulation("c", cold_spec(), trace, supply=model, seed=1)
    r = sim.run()
    assert r.jobs_done == 2
    assert (r.rentals, r.stops, r.starts) == (1, 2, 1)  # stopped after each job
    second = sim.jobs["v-1"]
    assert second.start is not None
    assert second.start - second.arrival == pytest.approx(40.0, abs=1.0), "not a 40 s resume"
    assert r.storage_dollars > 0.0
    fresh = engine.Simulation("f", cold_spec(cold={"replicas": 0}), trace, supply=model, seed=1)
    f = fresh.run()
    assert f.rentals == 2 and f.starts == 0 and f.storage_dollars == 0.0
    assert fresh.jobs["v-1"].start - fresh.jobs["v-1"].arrival == pytest.approx(240.0, abs=11)
    # Storage is billed while stopped, the GPU is not: the cold pool bills fewer GPU hours.
    assert r.gpu_hours_billed < f.gpu_hours_billed


def test_cold_tier_gpu_taken_falls_back_to_a_fresh_rental(econ: dict[str, ModuleType]) -> None:
    coldtier, supply = econ["coldtier"], econ["supply"]
    model = supply.SupplyModel(gpu_taken=1.0, fail_loading=0.0, offline_per_hour=0.0)
    sim = coldtier.ColdSimulation("c", cold_spec(), two_visits(econ["demand"]), supply=model)
    r = sim.run()
    assert r.jobs_done == 2
    assert r.starts == 1 and r.gpu_taken == 1
    assert r.rentals == 2, "the taken start was not replaced by a fresh rental"
    assert r.failed_rentals == 0, "a taken GPU counted as a failed rental"
    assert not sim.ledger, "a taken GPU put the machine in the cool-down ledger"


def test_cold_tier_max_age_destroys_the_stopped_one(econ: dict[str, ModuleType]) -> None:
    coldtier, supply = econ["coldtier"], econ["supply"]
    model = supply.SupplyModel(deterministic=True)
    spec = cold_spec(cold={"replicas": 1, "maxAge": "10m"})
    r = coldtier.ColdSimulation("c", spec, two_visits(econ["demand"]), supply=model).run()
    assert (r.rentals, r.stops, r.starts) == (2, 2, 0)
    # Each stopped instance billed storage for its 10 minutes, no more.
    hourly = max(o.storage_cost for o in supply.catalogue()) * 250 / 720
    assert 0.0 < r.storage_dollars <= 2 * hourly * (10 / 60) + 1e-6


def test_cold_bound_is_below_the_fresh_bound(econ: dict[str, ModuleType]) -> None:
    bound, supply = econ["bound"], econ["supply"].SupplyModel()
    flat = lambda hour: 3.0  # noqa: E731
    fresh = bound.billed_hours_bound(flat, supply) * 0.35
    dollars, k, hours = bound.cold_bound(flat, supply, price_per_hour=0.35, storage_per_hour=0.01)
    assert k > 0 and dollars < fresh and hours < 24.0
    taken = econ["supply"].SupplyModel(gpu_taken=1.0)
    same = bound.cold_bound(flat, taken, price_per_hour=0.35, storage_per_hour=0.01)
    assert same[1] == 0 and same[0] == pytest.approx(bound.billed_hours_bound(flat, taken) * 0.35)
