"""The discrete-event simulation: one pool, one day of jobs, virtual time.

Nothing sleeps: events (job arrivals and ends, rental milestones, the operator's
10-second reconcile timer) are taken from a heap in time order. At every event the
simulation does what the operator's handlers do, with the operator's own pure
functions:

- job dispatch: :func:`scheduler.plan_placement` puts waiting jobs on free slots of
  Ready instances (one job per instance, ``concurrencyPerInstance`` 1);
- the pool reconcile: :func:`policy.plan_pool` with the waiting jobs (and their
  expected run time, for the policies that pass it), every instance, the recent
  rental outcomes, the breaker and :func:`budget.spend_today`; each
  :class:`policy.Rent` picks an offer with :func:`offers.choose_offers`
  (machines already rented and hosts in cool-down are skipped);
- the instance daemon: :func:`lifecycle.decide_instance` on what the simulated
  Vast.ai reports (loading, running, a failure status message, offline) and what a
  ComfyUI probe would see; a failed rental is recorded with
  :func:`breaker.record_outcome` and :func:`offers.record_failure`.

A rental is billed at its offer's $/hour from the rent call to its release. Jobs on
an instance that fails are requeued (their wait then includes the lost attempt).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from demand import Trace
from supply import RentalDraw, SupplyModel, catalogue, draw_rental

from warmpool.crds.common import format_time, parse_duration
from warmpool.crds.gpuinstance import Phase
from warmpool.crds.gpupool import (
    ArrivalDay,
    GpuPoolSpec,
    HostFailure,
    RentalOutcome,
    SpendStatus,
)
from warmpool.operator.decisions import (
    breaker,
    budget,
    lifecycle,
    offers,
    policy,
    scheduler,
    warmup,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)
TICK_S = 60.0
"""A timer reconcile at least this often; every deadline the decisions depend on (idle
timeout, loading and readiness time-outs, offline grace, breaker) also gets its own
event, so the timer only bounds how late anything else is noticed."""
HASH = "bench"
LOST_AFTER_S = 6 * 3600.0
"""Jobs not finished this long after the end of the day are counted as unfinished."""
FAILURE_MESSAGE = "Error response from daemon: write /var/lib/docker: no space left on device"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class SimJob:
    id: str
    arrival: float
    seconds: float
    images: int
    start: float | None = None
    finish: float | None = None
    instance: str | None = None
    attempts: int = 0
    cold: bool = False
    """Ran on an instance that became Ready after the job arrived."""


@dataclass
class SimInstance:
    name: str
    offer: offers.OfferView
    rented_at: float
    draw: RentalDraw
    reason: str
    phase: Phase = "Provisioning"
    running_at: float | None = None
    ready_at: float | None = None
    last_job_at: float | None = None
    jobs: dict[str, float] = field(default_factory=dict)
    """Job id → start time."""
    busy_s: float = 0.0
    # The cold tier (coldtier.py): stopped spans bill storage only.
    stopped_at: float | None = None
    """Stopped (or Resuming) since."""
    stopped_s: float = 0.0
    """Seconds stopped before the current span."""
    resumed_at: float | None = None
    resume_ready_at: float | None = None
    offline_after: float | None = None
    """When the machine goes offline, once started again (None: the rental's own draw)."""
    storage_per_hour: float = 0.0

    @property
    def offline_at(self) -> float:
        if self.offline_after is not None:
            return self.offline_after
        return self.rented_at + self.draw.running_s + self.draw.offline_after_running_s

    def stopped_seconds(self, now: float) -> float:
        return self.stopped_s + (now - self.stopped_at if self.stopped_at is not None else 0.0)

    def view(self) -> policy.InstanceView:
        # A started-again instance is seen from its start: its boot, readiness, idle time.
        since = self.resumed_at if self.resumed_at is not None else self.rented_at
        ready = self.resume_ready_at if self.resumed_at is not None else self.ready_at
        return policy.InstanceView(
            name=self.name,
            phase=self.phase,
            created_at=at(since),
            rented_at=at(since),
            ready_at=None if ready is None else at(ready),
            last_job_at=None if self.last_job_at is None else at(self.last_job_at),
            jobs=len(self.jobs),
            template_hash=HASH,
            price_per_hour=self.offer.price_per_hour,
            machine_id=self.offer.machine_id,
            reason=self.reason,
        )


@dataclass
class Result:
    """What one policy did with one trace."""

    policy: str
    trace: str
    dollars: float = 0.0
    gpu_hours_billed: float = 0.0
    gpu_hours_busy: float = 0.0
    gpu_hours_booting: float = 0.0
    rentals: int = 0
    failed_rentals: int = 0
    jobs: int = 0
    jobs_done: int = 0
    images: int = 0
    waits: list[float] = field(default_factory=list)
    cold_waits: int = 0
    cold_starts: list[float] = field(default_factory=list)
    """Rent → first Ready of each cold start (no Ready instance when renting)."""
    hedge_rentals: int = 0
    storage_dollars: float = 0.0
    """Of ``dollars``: storage of stopped instances (cold tier)."""
    stops: int = 0
    starts: int = 0
    gpu_taken: int = 0
    resume_timeouts: int = 0

    @property
    def gpu_hours_idle(self) -> float:
        """Billed hours not running a job (booting included)."""
        return self.gpu_hours_billed - self.gpu_hours_busy

    def summary(self) -> dict[str, Any]:
        per_k = 1000.0 * self.dollars / self.images if self.images else math.nan
        return {
            "policy": self.policy,
            "trace": self.trace,
            "dollars": round(self.dollars, 4),
            "gpu_hours_billed": round(self.gpu_hours_billed, 4),
            "gpu_hours_busy": round(self.gpu_hours_busy, 4),
            "gpu_hours_idle": round(self.gpu_hours_idle, 4),
            "gpu_hours_booting": round(self.gpu_hours_booting, 4),
            "rentals": self.rentals,
            "failed_rentals": self.failed_rentals,
            "hedge_rentals": self.hedge_rentals,
            "jobs": self.jobs,
            "jobs_done": self.jobs_done,
            "images": self.images,
            "wait_p50_s": round(percentile(self.waits, 50), 2),
            "wait_p95_s": round(percentile(self.waits, 95), 2),
            "wait_p99_s": round(percentile(self.waits, 99), 2),
            "wait_max_s": round(max(self.waits, default=0.0), 2),
            "jobs_waited_for_cold_start": self.cold_waits,
            "cold_starts": len(self.cold_starts),
            "cold_start_ready_p50_s": round(percentile(self.cold_starts, 50), 2),
            "cold_start_ready_p95_s": round(percentile(self.cold_starts, 95), 2),
            "dollars_per_1000_images": round(per_k, 4),
            "storage_dollars": round(self.storage_dollars, 4),
            "stops": self.stops,
            "starts": self.starts,
            "gpu_taken": self.gpu_taken,
            "resume_timeouts": self.resume_timeouts,
        }


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


class Simulation:
    """One pool driven by :func:`policy.plan_pool` through one trace."""

    def __init__(
        self,
        name: str,
        spec: GpuPoolSpec,
        trace: Trace,
        *,
        supply: SupplyModel,
        seed: int = 0,
        market: Sequence[offers.OfferView] | None = None,
        recent_arrivals: bool = False,
        queued_seconds: bool = False,
    ) -> None:
        self.spec = spec
        self.trace = trace
        self.supply = supply
        self.rng = random.Random(seed)
        self.market = list(market) if market is not None else catalogue()
        self.pass_arrivals = recent_arrivals
        self.pass_work = queued_seconds
        self.result = Result(name, trace.name, jobs=len(trace.jobs))
        self.jobs = {j.id: SimJob(j.id, j.at, j.seconds, j.images) for j in trace.jobs}
        self.queue: list[SimJob] = []
        self.instances: dict[str, SimInstance] = {}
        self.arrived: list[datetime] = []
        self.days: list[ArrivalDay] = []
        self.events: list[tuple[float, int, str, str]] = []
        self.seq = itertools.count()
        self.names = itertools.count()
        self.outcomes: list[RentalOutcome] = []
        self.ledger: list[HostFailure] = []
        self.breaker_until: datetime | None = None
        self.spend = SpendStatus()
        self.cold_since: float | None = None
        self.cooldown = parse_duration(spec.failure_policy.host_cooldown)
        self.idle_timeout = parse_duration(spec.idle_timeout).total_seconds()
        self.loading_timeout = parse_duration(spec.failure_policy.loading_timeout).total_seconds()
        self.readiness_timeout = parse_duration(spec.readiness.timeout).total_seconds()
        self.wakeups: set[float] = set()
        # A cold pool ranks offers by their storage too, as the operator does (launch.py).
        self.stopped_disk_gb = spec.template.disk_gb if spec.cold.replicas else 0.0
        # The market ranked once as choose_offers ranks it: the expected price of the
        # next rental is the first offer not rented and not cooling down.
        self.ranked = offers.choose_offers(
            self.market,
            spec.offer,
            count=len(self.market),
            ledger=(),
            unavailable=(),
            busy_machines=(),
            cooldown=self.cooldown,
            now=T0,
            stopped_disk_gb=self.stopped_disk_gb,
        )

    # ------------------------------------------------------------ events

    def push(self, when: float, kind: str, key: str = "") -> None:
        heapq.heappush(self.events, (when, next(self.seq), kind, key))

    def wake(self, when: float) -> None:
        """A reconcile at ``when`` (once per distinct time)."""
        if when not in self.wakeups:
            self.wakeups.add(when)
            self.push(when, "wake")

    def run(self) -> Result:
        for job in self.jobs.values():
            self.push(job.arrival, "arrive", job.id)
        horizon = self.trace.hours * 3600.0
        tick = 0.0
        while tick <= horizon:
            self.push(tick, "tick")
            tick += TICK_S
        end = horizon
        while self.events:
            now, _, kind, key = heapq.heappop(self.events)
            if now > horizon and self.all_done():
                break
            if now > horizon + LOST_AFTER_S:
                break
            end = max(end, now)
            self.handle(now, kind, key)
            if kind == "tick" and now + TICK_S > horizon and not self.all_done():
                self.push(now + TICK_S, "tick")
        for inst in list(self.instances.values()):
            self.release(inst, end)
        r = self.result
        r.jobs_done = sum(1 for j in self.jobs.values() if j.finish is not None)
        r.images = sum(j.images for j in self.jobs.values() if j.finish is not None)
        r.waits = [
            j.start - j.arrival
            for j in self.jobs.values()
            if j.start is not None and j.finish is not None
        ]
        r.cold_waits = sum(1 for j in self.jobs.values() if j.cold and j.finish is not None)
        return r

    def all_done(self) -> bool:
        return all(j.finish is not None for j in self.jobs.values())

    def handle(self, now: float, kind: str, key: str) -> None:
        if kind == "arrive":
            self.queue.append(self.jobs[key])
            self.arrived.append(at(now))
        elif kind == "finish":
            self.finish(now, key)
        elif kind == "tick":
            for each in list(self.instances.values()):
                self.step_instance(each, now)
        elif kind == "wake":
            self.wakeups.discard(now)
        elif kind == "milestone":
            inst = self.instances.get(key)
            if inst is not None:
                self.step_instance(inst, now)
        self.dispatch(now)
        self.reconcile(now)
        self.dispatch(now)

    # ------------------------------------------------------------ jobs

    def dispatch(self, now: float) -> None:
        if not self.queue:
            return
        concurrency = self.spec.jobs.concurrency_per_instance
        slots = [
            scheduler.SlotView(
                i.name,
                scheduler.free_slots(concurrency, len(i.jobs)),
                machine_id=i.offer.machine_id,
            )
            for i in self.instances.values()
            if i.phase == "Ready"
        ]
        if not any(s.free for s in slots):
            return
        queued = [scheduler.QueuedJob(j.id, at(j.arrival), seq=n) for n, j in enumerate(self.queue)]
        placement = scheduler.plan_placement(queued, slots)
        placed = set()
        for a in placement.assignments:
            job, inst = self.jobs[a.job], self.instances[a.instance]
            job.start, job.instance, job.attempts = now, inst.name, job.attempts + 1
            job.cold = inst.ready_at is not None and inst.ready_at > job.arrival
            inst.jobs[job.id] = now
            placed.add(job.id)
            self.push(now + job.seconds, "finish", f"{job.id}#{job.attempts}")
        self.queue = [j for j in self.queue if j.id not in placed]

    def finish(self, now: float, key: str) -> None:
        job_id, attempt = key.split("#")
        job = self.jobs[job_id]
        if job.attempts != int(attempt) or job.instance is None or job.finish is not None:
            return
        inst = self.instances.get(job.instance)
        if inst is None or job_id not in inst.jobs:
            return
        inst.busy_s += now - inst.jobs.pop(job_id)
        inst.last_job_at = now
        job.finish = now

    # ------------------------------------------------------------ the pool

    def before_plan(self, now: float) -> None:
        """Hook before :func:`policy.plan_pool` (the cold tier's checks, coldtier.py)."""

    def apply_plan(
        self, plan: policy.PoolPlan, views: list[policy.InstanceView], now: float
    ) -> tuple[list[policy.Release], list[policy.Rent]]:
        """Hook: the releases and rents to carry out (the cold tier stops and starts some)."""
        return plan.releases, plan.rents

    def planning_spec(self) -> GpuPoolSpec:
        """Hook: the spec :func:`policy.plan_pool` plans with (the cold tier's idle timeout)."""
        return self.spec

    def reconcile(self, now: float) -> None:
        when = at(now)
        self.before_plan(now)
        spec = self.planning_spec()
        # Stopped instances hold no GPU: the pool policy does not see them (coldtier.py).
        views = [i.view() for i in self.instances.values() if i.phase != "Stopped"]
        extra: dict[str, Any] = {}
        if self.pass_arrivals:
            extra["recent_arrivals"] = self.arrived[-200:]
            warm = self.spec.warmup
            if warm is not None and warm.coverage > 0:
                # What the pool handler does: count the jobs since yesterday 00:00 into
                # status.arrivals (by hour, never twice) and pass them on.
                yesterday = when.replace(hour=0, minute=0, second=0, microsecond=0)
                since = bisect.bisect_left(self.arrived, yesterday - timedelta(days=1))
                self.days = warmup.record_arrivals(
                    self.days, self.arrived[since:], now=when, keep=warm.days
                )
                extra["arrival_days"] = self.days
        busy = self.busy_machines()
        best = next(
            (
                o
                for o in self.ranked
                if o.machine_id not in busy
                and offers.cooling_down(o, self.ledger, cooldown=self.cooldown, now=when) is None
            ),
            None,
        )
        plan = policy.plan_pool(
            spec=spec,
            instances=views,
            queued_jobs=len(self.queue),
            template_hash=HASH,
            recent_rentals=self.outcomes,
            breaker_until=self.breaker_until,
            spend_today=budget.spend_today(self.spend, views, now=when),
            now=when,
            rental_price=best.price_per_hour if best else None,
            queued_seconds=sum(j.seconds for j in self.queue) if self.pass_work else None,
            **extra,
        )
        self.breaker_until = plan.breaker_until
        releases, rents = self.apply_plan(plan, views, now)
        for release in releases:
            self.release(self.instances[release.name], now)
        for drain in plan.drains:
            self.instances[drain.name].phase = "Draining"
        for rent in rents:
            self.rent(now, rent.reason)
        timeouts = {self.idle_timeout, parse_duration(spec.idle_timeout).total_seconds()}
        for inst in self.instances.values():
            if inst.phase == "Ready" and not inst.jobs:
                idle = (policy.idle_since(inst.view()) - T0).total_seconds()
                for timeout in timeouts:
                    if idle + timeout > now:
                        self.wake(idle + timeout)
        if plan.breaker_until is not None and plan.breaker_until > when:
            self.wake((plan.breaker_until - T0).total_seconds())

    def busy_machines(self) -> set[int]:
        return {i.offer.machine_id for i in self.instances.values()}

    def rent(self, now: float, reason: str) -> None:
        chosen = offers.choose_offers(
            self.market,
            self.spec.offer,
            count=1,
            ledger=self.ledger,
            unavailable=(),
            busy_machines=self.busy_machines(),
            cooldown=self.cooldown,
            now=at(now),
            stopped_disk_gb=self.stopped_disk_gb,
        )
        if not chosen:
            return
        if self.cold_since is None and not any(i.phase == "Ready" for i in self.instances.values()):
            self.cold_since = now
        draw = draw_rental(self.supply, self.rng)
        inst = SimInstance(f"i{next(self.names):05d}", chosen[0], now, draw, reason)
        self.instances[inst.name] = inst
        self.result.rentals += 1
        self.result.hedge_rentals += reason == policy.HEDGE
        for offset in (draw.running_s, draw.boot_s, draw.fail_s):
            if offset is not None and not draw.stuck:
                self.push(now + offset, "milestone", inst.name)
        self.push(now + self.loading_timeout + 0.001, "milestone", inst.name)
        if math.isfinite(inst.offline_at) and not draw.stuck:
            self.push(inst.offline_at, "milestone", inst.name)
            self.push(inst.offline_at + 121.0, "milestone", inst.name)

    def release(self, inst: SimInstance, now: float) -> None:
        self.requeue_jobs(inst, now)
        stopped = inst.stopped_seconds(now)
        billed = max(now - inst.rented_at - stopped, 0.0)
        storage = inst.storage_per_hour * stopped / 3600.0
        cost = inst.offer.price_per_hour * billed / 3600.0 + storage
        r = self.result
        r.dollars += cost
        r.storage_dollars += storage
        r.gpu_hours_billed += billed / 3600.0
        r.gpu_hours_busy += inst.busy_s / 3600.0
        booted = (inst.ready_at if inst.ready_at is not None else now) - inst.rented_at
        r.gpu_hours_booting += max(min(booted, billed), 0.0) / 3600.0
        self.spend = budget.close_spend(
            self.spend,
            budget.cost_today(inst.offer.price_per_hour, at(inst.rented_at), now=at(now)),
            now=at(now),
        )
        del self.instances[inst.name]

    def requeue_jobs(self, inst: SimInstance, now: float) -> None:
        for job_id, started in list(inst.jobs.items()):
            inst.busy_s += now - started
            job = self.jobs[job_id]
            job.start = job.instance = None
            self.queue.insert(0, job)
        inst.jobs.clear()

    # ------------------------------------------------------------ one instance

    def step_instance(self, inst: SimInstance, now: float) -> None:
        if inst.phase == "Failed":
            return
        rental, since = self.rental_view(inst, now)
        offline = (rental.actual_status or "") == "offline"
        probe = None
        if inst.phase in ("Starting", "Ready", "Draining"):
            if offline:
                probe = lifecycle.ProbeView(False, "answering", "Unreachable")
            elif now >= inst.rented_at + inst.draw.boot_s:
                probe = lifecycle.ProbeView(True, "canary")
            else:
                probe = lifecycle.ProbeView(True, "answering")
        decision = lifecycle.decide_instance(
            phase=inst.phase,
            rental=rental,
            probe=probe,
            probe_failures=0,
            rented_at=at(inst.rented_at),
            running_at=None if inst.running_at is None else at(inst.running_at),
            ready_at=None if inst.ready_at is None else at(inst.ready_at),
            now=at(now),
            policy=self.spec.failure_policy,
            readiness=self.spec.readiness,
            status_since=None if since is None else at(since),
        )
        if decision.terminate:
            inst.phase = "Failed"
            self.result.failed_rentals += 1
            self.requeue_jobs(inst, now)
            self.outcomes = breaker.record_outcome(
                self.outcomes,
                RentalOutcome(
                    instance=inst.name,
                    ok=False,
                    reason=decision.reason,
                    time=format_time(at(now)),
                ),
                now=at(now),
            )
            self.ledger = offers.record_failure(
                self.ledger,
                machine_id=inst.offer.machine_id,
                host_id=inst.offer.host_id,
                reason=decision.reason,
                cooldown=self.cooldown,
                now=at(now),
            )
            return
        if decision.phase == "Starting" and inst.running_at is None:
            inst.running_at = now
            self.push(now + self.readiness_timeout + 0.001, "milestone", inst.name)
        if decision.phase == "Ready" and inst.ready_at is None:
            inst.ready_at = now
            if self.cold_since is not None:
                self.result.cold_starts.append(now - self.cold_since)
                self.cold_since = None
            self.outcomes = breaker.record_outcome(
                self.outcomes,
                RentalOutcome(instance=inst.name, ok=True, time=format_time(at(now))),
                now=at(now),
            )
        inst.phase = decision.phase

    def rental_view(
        self, inst: SimInstance, now: float
    ) -> tuple[lifecycle.RentalView, float | None]:
        """What the Vast.ai listing says about the rental, and since when."""
        d, t = inst.draw, now - inst.rented_at
        loading = lifecycle.RentalView(True, "loading", "running", "running", "Loading image")
        if d.stuck or t < d.running_s:
            if d.fail_s is not None and t >= d.fail_s:
                return lifecycle.RentalView(
                    True, "loading", "running", "running", FAILURE_MESSAGE
                ), None
            return loading, None
        if now >= inst.offline_at:
            return lifecycle.RentalView(True, "offline", "running", "running"), inst.offline_at
        return lifecycle.RentalView(True, "running", "running", "running", "", has_port=True), None
