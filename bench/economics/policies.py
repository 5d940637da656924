"""The policies compared, and the clairvoyant oracle.

Every policy but the oracle is a :class:`GpuPoolSpec` run through the operator's own
:func:`warmpool.operator.decisions.policy.plan_pool` by :mod:`engine`; they differ
only in their settings:

``fixed-1``
    The simple approach most people run: one machine, started when a job arrives
    and nothing runs, shut down after 15 minutes without a job. Never more than one
    machine; jobs queue on it in order. As a spec: ``replicas 0, maxReplicas 1,
    idleTimeout 15m, hedge 0``.
``on-demand``
    Rent one machine per waiting job when it arrives, release each machine the
    moment it has no job: ``replicas 0, maxReplicas 100, idleTimeout 0s, hedge 0``.
``warmpool``
    warmpool's policy as the operator runs it: the CRD's defaults (``idleTimeout
    4m``, ``hedge 1``, learned warm-up ``coverage 0.95`` — which needs a whole day of
    history, so on the one-day traces the rate rule decides —, readiness, failure
    policy, ...), the queued jobs' expected
    run time passed to ``plan_pool`` (work-aware scale-up: no rental that would boot
    after the queue drained) and, for these traces, ``replicas 0, maxReplicas 4``
    plus predictive warm-up at its defaults (``warmup: {replicas: 1,
    minArrivalsPerHour: 1, window: 1h}``): one machine kept ready while at least one
    job arrived in the last hour, scale-up to four when queued work needs it,
    nothing rented after an hour without jobs.
``warmpool-unhedged``
    The same with ``hedge 0`` (the hedging figure compares the two).
``warmpool-before``
    The policy of the first landing, for the before/after figures: ``idleTimeout
    15m``, ``hedge 0``, one rental per queued job (no run times passed), with the
    same warm-up.
``warmpool-always-warm``
    Without ``warmup`` at the CRD defaults otherwise: ``replicas 1, maxReplicas 4``,
    one machine ready around the clock (what the default ``replicas 1`` does).
``warmpool-cold``
    warmpool with a cold tier (``spec.cold``, :mod:`coldtier` drives
    ``operator/decisions/cold.py``): idle instances are stopped (disk kept, storage
    billed) instead of destroyed and started again (median 40 s) before anything is
    rented. With stopped instances that resume in under a minute, the warm floor and
    the warm-up no longer pay for themselves: ``replicas 0``, no ``warmup``,
    ``cold.replicas 4`` started together on a cold start (``hedge 3``: a start finds
    its GPU taken 15 % of the time), ``maxReplicas 12`` for the spikes, ``idleTimeout
    3m`` for the machines the tier has no room for and ``cold.idleTimeout 1m`` for the
    ones it has (a stop is undone in about a minute; see README.md for the sweep), and
    ``template.diskGb 100`` (storage is billed per GB; an SDXL image and its models
    fit). Offers are ranked by their storage price too (``choose_offers``'s
    ``stopped_disk_gb``, as the operator ranks them for a cold pool).
``oracle``
    Knows every arrival, run time and boot time in advance and rents each machine
    exactly its boot time before the job that needs it, at the cheapest offer's
    price, never a rental that would fail: no job waits. A machine whose next job
    comes sooner than a new machine would boot is kept, otherwise released and
    rented again just in time. Each job takes the machine that freed most recently.
    This is the lower bound of the cost of zero waiting; on a spike of 50 jobs it
    needs 50 machines, so policies that let jobs queue can spend less than it there.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from coldtier import ColdSimulation
from demand import Trace
from engine import Result, Simulation
from supply import SupplyModel, catalogue, draw_rental

from warmpool.crds.gpupool import GpuPoolSpec
from warmpool.operator.decisions import cold, offers


@dataclass(frozen=True)
class PolicyDef:
    name: str
    settings: dict[str, Any] | None
    """GpuPool spec fields (camelCase, as in a manifest); None for the oracle."""
    recent_arrivals: bool = False
    """Pass the recent job arrivals to ``plan_pool`` (``recent_arrivals=``)."""
    queued_seconds: bool = False
    """Pass the queued jobs' expected run time to ``plan_pool`` (as the operator does)."""

    def spec(self) -> GpuPoolSpec:
        return GpuPoolSpec.model_validate(self.settings or {})


WARMPOOL: dict[str, Any] = {"replicas": 0, "maxReplicas": 4, "warmup": {"replicas": 1}}
BEFORE: dict[str, Any] = {
    **WARMPOOL,
    "warmup": {"replicas": 1, "coverage": 0},
    "idleTimeout": "15m",
    "hedge": 0,
}

COLD: dict[str, Any] = {
    "replicas": 0,
    "maxReplicas": 12,
    "hedge": 3,
    "idleTimeout": "3m",
    "cold": {"replicas": 4, "idleTimeout": "1m"},
    "template": {"diskGb": 100},
}
"""warmpool with a cold tier, as the measurements chose it (README.md)."""

POLICIES: tuple[PolicyDef, ...] = (
    PolicyDef("fixed-1", {"replicas": 0, "maxReplicas": 1, "idleTimeout": "15m", "hedge": 0}),
    PolicyDef("on-demand", {"replicas": 0, "maxReplicas": 100, "idleTimeout": "0s", "hedge": 0}),
    PolicyDef("warmpool", WARMPOOL, recent_arrivals=True, queued_seconds=True),
    PolicyDef(
        "warmpool-unhedged", {**WARMPOOL, "hedge": 0}, recent_arrivals=True, queued_seconds=True
    ),
    PolicyDef("warmpool-before", BEFORE, recent_arrivals=True),
    PolicyDef("warmpool-always-warm", {"replicas": 1, "maxReplicas": 4}, queued_seconds=True),
    PolicyDef("warmpool-cold", COLD, recent_arrivals=True, queued_seconds=True),
    PolicyDef("oracle", None),
)

RATE_ONLY: dict[str, Any] = {**WARMPOOL, "warmup": {"replicas": 1, "coverage": 0}}

WEEK_POLICIES: tuple[PolicyDef, ...] = (
    PolicyDef("fixed-1", POLICIES[0].settings),
    PolicyDef("on-demand", POLICIES[1].settings),
    PolicyDef("warmpool", WARMPOOL, recent_arrivals=True, queued_seconds=True),
    PolicyDef("warmpool-rate-only", RATE_ONLY, recent_arrivals=True, queued_seconds=True),
    PolicyDef("warmpool-cold", COLD, recent_arrivals=True, queued_seconds=True),
    PolicyDef("oracle", None),
)
"""On the seven-day traces: the learned warm-up (the default, ``coverage 0.95``) against
the rate rule alone (``coverage 0``); both follow the rate rule on the first day."""


def cheapest_price(market: Sequence[offers.OfferView] | None = None) -> float:
    """$/hour of the cheapest offer the default pool accepts (what the oracle pays)."""
    spec = GpuPoolSpec()
    found = [
        o for o in (market if market is not None else catalogue()) if offers.matches(o, spec.offer)
    ]
    return min(offers.effective_price(o, spec.offer) for o in found)


def cheapest_storage(disk_gb: float, market: Sequence[offers.OfferView] | None = None) -> float:
    """$/hour of the cheapest storage among the offers the default pool accepts."""
    spec = GpuPoolSpec()
    found = [
        o for o in (market if market is not None else catalogue()) if offers.matches(o, spec.offer)
    ]
    return min(cold.storage_per_hour(o.storage_cost, disk_gb) for o in found)


def run_policy(
    definition: PolicyDef,
    trace: Trace,
    *,
    supply: SupplyModel,
    seed: int = 0,
    market: Sequence[offers.OfferView] | None = None,
) -> Result:
    """One policy through one trace (the same ``seed`` gives every policy the same draws)."""
    if definition.settings is None:
        return run_oracle(trace, supply=supply, seed=seed, market=market)
    spec = definition.spec()
    simulation = ColdSimulation if spec.cold.replicas > 0 else Simulation
    sim = simulation(
        definition.name,
        spec,
        trace,
        supply=supply,
        seed=seed,
        market=market,
        recent_arrivals=definition.recent_arrivals,
        queued_seconds=definition.queued_seconds,
    )
    return sim.run()


@dataclass
class _Machine:
    free_at: float


def run_oracle(
    trace: Trace,
    *,
    supply: SupplyModel,
    seed: int = 0,
    market: Sequence[offers.OfferView] | None = None,
) -> Result:
    """The clairvoyant schedule (see the module docstring)."""
    price = cheapest_price(market)
    rng = random.Random(seed)
    r = Result("oracle", trace.name, jobs=len(trace.jobs))
    machines: list[_Machine] = []
    billed = booting = 0.0
    for job in sorted(trace.jobs, key=lambda j: j.at):
        boot = draw_rental(supply, rng).boot_s
        free = [m for m in machines if m.free_at <= job.at]
        if free:
            machine = max(free, key=lambda m: m.free_at)
            gap = job.at - machine.free_at
            if gap <= boot:
                billed += gap
            else:
                billed += boot
                booting += boot
                r.rentals += 1
        else:
            machine = _Machine(job.at)
            machines.append(machine)
            billed += boot
            booting += boot
            r.rentals += 1
        billed += job.seconds
        r.gpu_hours_busy += job.seconds / 3600.0
        machine.free_at = job.at + job.seconds
        r.waits.append(0.0)
        r.jobs_done += 1
        r.images += job.images
    r.gpu_hours_billed = billed / 3600.0
    r.gpu_hours_booting = booting / 3600.0
    r.dollars = price * r.gpu_hours_billed
    return r
