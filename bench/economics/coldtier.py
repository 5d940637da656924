"""The cold tier in the simulation: :class:`ColdSimulation` drives ``decisions/cold.py``.

What the pool handler will do around :func:`policy.plan_pool` (see the docstring of
:mod:`warmpool.operator.decisions.cold`), with exactly its functions:

- before the plan: :func:`cold.check_cold` (drifted, ``maxAge``, surplus, a start whose
  GPU was taken or that did not get Ready within ``resumeTimeout``) and
  :func:`cold.budget_cuts`; the destroyed ones are released (a hung start is recorded
  as a failed rental, a taken GPU is not);
- ``plan_pool`` sees every instance but the ``Stopped`` ones (engine.py), with the spec
  of :func:`cold.planning_spec` (``cold.idleTimeout`` while the tier has room);
- after it: :func:`cold.plan_stops` turns ``Idle`` releases into stops while the tier
  has room (:func:`cold.storage_fits` says whether the budget takes the storage),
  :func:`cold.plan_starts` serves rentals by starting stopped instances first and
  :func:`cold.plan_races` starts more beside fresh rentals still booting.

A stop ends the GPU billing and starts storage billing (the offer's ``storage_cost`` ×
``template.diskGb`` / 720 per hour); a start bills the GPU again from the start call
and draws :func:`supply.draw_resume` from its own seeded stream (the k-th start of
every policy gets the same draw). A started instance is Ready after its draw (or never,
when its GPU was taken: ``intended=running``, ``cur_state=stopped``).
"""

from __future__ import annotations

import math
import random
from typing import Any

from engine import HASH, T0, SimInstance, Simulation, at
from supply import ResumeDraw, draw_resume

from warmpool.crds.common import format_time, parse_duration
from warmpool.crds.gpuinstance import COLD_PHASES
from warmpool.crds.gpupool import GpuPoolSpec, RentalOutcome
from warmpool.operator.decisions import breaker, budget, cold, offers, policy


class ColdSimulation(Simulation):
    """:class:`engine.Simulation` with ``spec.cold``: stop instead of destroy, start first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume_rng = random.Random(1_000_003 + kwargs.get("seed", 0))
        self.resumes: dict[str, ResumeDraw] = {}
        self.disk_gb = float(self.spec.template.disk_gb)
        self.races = True

    # ------------------------------------------------------------ views

    def cold_view(self, inst: SimInstance) -> cold.ColdView:
        taken = inst.phase == "Resuming" and self.resumes[inst.name].taken
        return cold.ColdView(
            name=inst.name,
            phase=inst.phase,
            stopped_at=at(inst.stopped_at if inst.stopped_at is not None else inst.rented_at),
            template_hash=inst.view().template_hash,
            machine_id=inst.offer.machine_id,
            storage_per_hour=inst.storage_per_hour,
            resumed_at=None if inst.resumed_at is None else at(inst.resumed_at),
            intended_status="running" if inst.phase == "Resuming" else "stopped",
            cur_state="stopped" if inst.phase == "Stopped" or taken else "running",
        )

    def cold_views(self) -> list[cold.ColdView]:
        return [self.cold_view(i) for i in self.instances.values() if i.phase in COLD_PHASES]

    def unhealthy(self, now: float) -> set[int]:
        return cold.failed_machines(self.ledger, cooldown=self.cooldown, now=at(now))

    # ------------------------------------------------------------ hooks

    def before_plan(self, now: float) -> None:
        when = at(now)
        views = self.cold_views()
        destroys = cold.check_cold(views, spec=self.spec, template_hash=HASH, now=when)
        gone = {d.name for d in destroys}
        warm = [i.view() for i in self.instances.values() if i.phase not in ("Stopped",)]
        destroys += cold.budget_cuts(
            [v for v in views if v.name not in gone],
            caps=self.spec.budget,
            warm_hourly=budget.current_hourly(warm),
            spend_today=budget.spend_today(self.spend, warm, now=when),
            now=when,
        )
        for d in destroys:
            inst = self.instances[d.name]
            if d.reason == cold.GPU_TAKEN:
                self.result.gpu_taken += 1
            if d.reason == cold.RESUME_TIMEOUT:
                self.result.resume_timeouts += 1
            if d.failed:
                self.record_failed(inst, d.reason, now)
            self.release(inst, now)
        deadline = cold.next_deadline(self.cold_views(), spec=self.spec)
        if deadline is not None and deadline > when:
            self.wake((deadline - T0).total_seconds() + 0.001)

    def planning_spec(self) -> GpuPoolSpec:
        return cold.planning_spec(self.spec, self.cold_views())

    def apply_plan(
        self, plan: policy.PoolPlan, views: list[policy.InstanceView], now: float
    ) -> tuple[list[policy.Release], list[policy.Rent]]:
        when = at(now)
        views_cold = self.cold_views()
        unhealthy = self.unhealthy(now)
        storage = {i.name: self.storage_of(i) for i in self.instances.values()}
        # The storage of one more stopped instance, as the budget sees it.
        dearest = max(storage.values(), default=0.0)
        fits = cold.storage_fits(
            dearest,
            self.spec.budget,
            current_hourly=budget.current_hourly(views),
            spend_today=budget.spend_today(self.spend, views, now=when),
            now=when,
        )
        stops, _keeps, releases = cold.plan_stops(
            plan.releases,
            views,
            views_cold,
            spec=self.spec,
            template_hash=HASH,
            unhealthy_machines=unhealthy,
            storage=storage,
            at_cap=not fits,
            now=when,
        )
        for stop in stops:
            self.stop(self.instances[stop.name], now)
        views_cold = self.cold_views()
        starts, rents = cold.plan_starts(
            plan.rents, views_cold, template_hash=HASH, unhealthy_machines=unhealthy
        )
        if self.races:
            starts += cold.plan_races(
                plan,
                [i.view() for i in self.instances.values() if i.phase != "Stopped"],
                views_cold,
                starts=starts,
                releases=releases,
                template_hash=HASH,
                unhealthy_machines=unhealthy,
            )
        for start in starts:
            self.start(self.instances[start.name], now)
        return releases, rents

    # ------------------------------------------------------------ stop / start

    def storage_of(self, inst: SimInstance) -> float:
        return cold.storage_per_hour(inst.offer.storage_cost, self.disk_gb)

    def stop(self, inst: SimInstance, now: float) -> None:
        self.requeue_jobs(inst, now)
        inst.phase = "Stopped"
        inst.stopped_at = now
        inst.storage_per_hour = self.storage_of(inst)
        inst.offline_after = math.inf
        self.result.stops += 1

    def start(self, inst: SimInstance, now: float) -> None:
        assert inst.stopped_at is not None
        if self.cold_since is None and not any(i.phase == "Ready" for i in self.instances.values()):
            self.cold_since = now
        inst.stopped_s += now - inst.stopped_at
        inst.stopped_at = None
        inst.phase = "Resuming"
        inst.resumed_at, inst.resume_ready_at = now, None
        draw = draw_resume(self.supply, self.resume_rng)
        self.resumes[inst.name] = draw
        self.result.starts += 1
        timeout = parse_duration(self.spec.cold.resume_timeout).total_seconds()
        if not draw.taken and draw.ready_s < timeout:
            self.push(now + draw.ready_s, "milestone", inst.name)

    def step_instance(self, inst: SimInstance, now: float) -> None:
        if inst.phase == "Stopped":
            return
        if inst.phase != "Resuming":
            super().step_instance(inst, now)
            return
        draw = self.resumes[inst.name]
        assert inst.resumed_at is not None
        if draw.taken or now < inst.resumed_at + draw.ready_s:
            return
        inst.phase = "Ready"
        inst.resume_ready_at = now
        rate = self.supply.offline_per_hour / 3600.0
        u = self.resume_rng.random()
        inst.offline_after = now - math.log(1.0 - u) / rate if rate > 0 else math.inf
        if math.isfinite(inst.offline_after):
            self.push(inst.offline_after, "milestone", inst.name)
            self.push(inst.offline_after + 121.0, "milestone", inst.name)
        if self.cold_since is not None:
            self.result.cold_starts.append(now - self.cold_since)
            self.cold_since = None

    def record_failed(self, inst: SimInstance, reason: str, now: float) -> None:
        self.result.failed_rentals += 1
        self.outcomes = breaker.record_outcome(
            self.outcomes,
            RentalOutcome(
                instance=inst.name,
                ok=False,
                reason=reason,
                time=format_time(at(now)),
            ),
            now=at(now),
        )
        self.ledger = offers.record_failure(
            self.ledger,
            machine_id=inst.offer.machine_id,
            host_id=inst.offer.host_id,
            reason=reason,
            cooldown=self.cooldown,
            now=at(now),
        )
