"""The per-pool job dispatcher: wake loops over the slot ledger, woken by events.

Facts come from Kopf indexes kept in memory (:mod:`..handlers.jobs` registers them): the
non-terminal GenerationJobs, the GpuInstances and the GpuPools, by pool. The
ledger (:attr:`Dispatcher.held`) is authoritative for this operator process: a
job placed here holds a slot from the moment it is placed until its outcome is
written. Jobs that the objects say are Scheduled/Running on an instance but that
no runner here holds (left by a previous operator process) hold their slot too:
they are resumed when the operator starts, and requeued when their lease expires.

Every job, instance or pool event wakes its pool's dispatcher (no polling); one
dispatch is synchronous — no ``await`` between reading the facts and updating the
ledger — so two dispatches never give away the same slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import httpx

from warmpool.crds.common import format_time, parse_duration, parse_optional_time
from warmpool.crds.generationjob import TERMINAL_PHASES
from warmpool.operator import metrics
from warmpool.operator.adapters import kube
from warmpool.operator.adapters.status import patch_status
from warmpool.operator.controllers.jobs import outcomes, runner
from warmpool.operator.controllers.jobs.facts import (
    FINALIZER,
    HELD_PHASES,
    SERVING,
    InstanceFacts,
    JobCounts,
    JobFacts,
    PoolFacts,
    PoolKey,
)
from warmpool.operator.controllers.jobs.ledger import Held
from warmpool.operator.decisions import scheduler
from warmpool.operator.deps import Deps

logger = logging.getLogger(__name__)


def dispatcher(memo: Deps) -> Dispatcher:
    """The memo's dispatcher, created on first use."""
    if memo.dispatcher is None:
        memo.dispatcher = Dispatcher(memo)
    found: Dispatcher = memo.dispatcher
    return found


class Dispatcher:
    """Per-pool dispatch loops over Kopf's indexes and this process's slot ledger."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.jobs: Any = None  # kopf.Index[PoolKey, JobFacts]
        self.instances: Any = None  # kopf.Index[PoolKey, InstanceFacts]
        self.pools: Any = None  # kopf.Index[PoolKey, PoolFacts]
        self.arrivals: Any = None  # kopf.Index[PoolKey, datetime]: every job's creation
        self.gate = asyncio.Event()  # every index populated
        self.wakeups: dict[PoolKey, asyncio.Event] = {}
        self.held: dict[str, Held] = {}  # by job uid
        #: Jobs whose runner here ended: their stale Scheduled/Running facts hold nothing.
        self.released: set[str] = set()
        self.deleted: set[str] = set()  # held jobs whose DELETED event came
        self.lost: set[str] = set()  # runner ended here without writing an outcome
        self.busy: set[str] = set()  # job uids with a cleanup/requeue write in flight
        self.adopted: set[PoolKey] = set()  # pools whose orphans were resumed at start
        self.checkpoints: dict[tuple[str, str], str] = {}
        self.activity: dict[tuple[str, str], float] = {}  # instance → last progress seen
        self.tokens: dict[tuple[str, str], str] = {}
        self.terminal: dict[str, tuple[PoolKey, str, datetime | None, str]] = {}
        self.expiring: dict[str, asyncio.TimerHandle] = {}
        self.waiting: dict[PoolKey, int] = {}
        self.counts: dict[PoolKey, JobCounts] = {}
        self._seq = itertools.count()
        self.seen: dict[str, int] = {}
        self.instance_dirty: dict[tuple[str, str], asyncio.Event] = {}
        #: One small HTTP pool per ComfyUI: httpcore scans every pooled connection on
        #: each request, so one big shared pool costs CPU in proportion to the fleet.
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.last_job_at: dict[tuple[str, str], datetime] = {}

    # ------------------------------------------------------------- wiring
    def http_for(self, url: str) -> httpx.AsyncClient:
        """The HTTP client for one ComfyUI base URL (its own small connection pool)."""
        client = self.clients.get(url)
        if client is None:
            limits = httpx.Limits(max_connections=16, max_keepalive_connections=8)
            client = self.clients[url] = httpx.AsyncClient(limits=limits)
        return client

    async def close(self) -> None:
        """Close the per-instance HTTP clients (operator shutdown)."""
        clients, self.clients = list(self.clients.values()), {}
        for client in clients:
            await client.aclose()

    def bind(self, indices: Any) -> None:
        """Keep references to Kopf's live indexes (from any handler's kwargs)."""
        if self.jobs is None:
            self.jobs = indices["warmpool_jobs"]
            self.instances = indices["warmpool_instances"]
            self.pools = indices["warmpool_pools"]
            self.arrivals = indices.get("warmpool_job_arrivals")

    def open(self) -> None:
        """Every index is populated: start dispatching every known pool."""
        if self.gate.is_set():
            return
        self.gate.set()
        for key in set(self.jobs or ()) | set(self.pools or ()):
            self.wake(key)

    def sequence(self, uid: str) -> int:
        """The order this process first saw a job (ties of creation time)."""
        if uid not in self.seen:
            self.seen[uid] = next(self._seq)
        return self.seen[uid]

    def wake(self, key: PoolKey) -> None:
        event = self.wakeups.get(key)
        if event is None:
            event = self.wakeups[key] = asyncio.Event()
            task_key = f"dispatch/{key[0]}/{key[1]}"
            self.deps.tasks[task_key] = asyncio.create_task(self._loop(key, event),
                                                            name=task_key)  # fmt: skip
        event.set()

    async def _loop(self, key: PoolKey, event: asyncio.Event) -> None:
        await self.gate.wait()
        while True:
            await event.wait()
            event.clear()
            try:
                self.dispatch(key)
            except Exception:
                logger.exception("dispatching jobs of pool %s/%s failed", *key)
            await asyncio.sleep(0)

    # ------------------------------------------------------------- facts
    def _store(self, index: Any, key: PoolKey) -> list[Any]:
        if index is None or key not in index:
            return []
        return list(index[key])

    def pool(self, key: PoolKey) -> PoolFacts | None:
        found = self._store(self.pools, key)
        return found[0] if found else None

    def instance(self, namespace: str, pool: str, name: str) -> InstanceFacts | None:
        return next(
            (i for i in self._store(self.instances, (namespace, pool)) if i.name == name), None
        )

    def jobs_on(self, namespace: str, instance: str) -> int:
        """Jobs this process runs on an instance (the pool never releases a busy one)."""
        return sum(
            1
            for h in self.held.values()
            if h.instance.namespace == namespace and h.instance.name == instance
        )

    def job_counts(self, namespace: str, pool: str) -> JobCounts | None:
        """Queued and placed/running jobs of a pool; None until the indexes are populated."""
        if not self.gate.is_set():
            return None
        return self.counts.get((namespace, pool), JobCounts())

    def arrivals_since(self, namespace: str, pool: str, since: datetime) -> list[datetime] | None:
        """When the pool's jobs were submitted, from ``since``; None until indexed."""
        if not self.gate.is_set() or self.arrivals is None:
            return None
        return [t for t in self._store(self.arrivals, (namespace, pool)) if t >= since]

    # ------------------------------------------------------------- one dispatch
    def dispatch(self, key: PoolKey) -> None:
        """Place what can be placed now; stop runners whose job or instance went away."""
        ns, pool_name = key
        pool = self.pool(key)
        jobs = self._store(self.jobs, key)
        instances = {i.name: i for i in self._store(self.instances, key)}
        now = self.deps.now()
        by_uid = {j.uid: j for j in jobs}
        self._schedule_ttl(key, pool)

        for uid, held in list(self.held.items()):
            if held.job.namespace != ns or held.job.pool != pool_name:
                continue
            facts = by_uid.get(uid)
            inst = instances.get(held.instance.name)
            if facts is None:
                if uid in self.deleted:  # (not merely absent from the index for a moment)
                    held.halt("gone")
            elif facts.deleting:
                held.halt("cancelled")
            elif inst is None or inst.deleting or inst.phase not in SERVING:
                held.halt("instance_lost")

        occupied: Counter[str] = Counter(
            h.instance.name
            for h in self.held.values()
            if h.job.namespace == ns and h.job.pool == pool_name
        )
        queued: list[JobFacts] = []
        orphans: list[JobFacts] = []
        for job in jobs:
            if job.uid in self.held or job.uid in self.busy:
                continue
            if job.deleting:
                if FINALIZER in job.finalizers:
                    self._spawn_cleanup(outcomes.cancel_unplaced(self, job), job.uid)
                continue
            if job.phase in HELD_PHASES:
                if job.uid in self.released:
                    continue
                orphans.append(job)
            elif job.phase == "Queued":
                queued.append(job)

        adopt = key not in self.adopted
        self.adopted.add(key)
        expired = set(scheduler.expired_leases(
            [scheduler.HeldJob(j.uid, j.lease_expires_at) for j in orphans], now=now))  # fmt: skip
        for job in orphans:
            inst = instances.get(job.instance)
            alive = inst is not None and not inst.deleting and inst.phase in SERVING
            if adopt and alive and job.phase == "Running" and job.prompt_id and pool is not None:
                assert inst is not None
                self._start(runner.run_job, job, inst, pool, resume=True)
                occupied[inst.name] += 1
            elif job.uid in expired or adopt or not alive or job.uid in self.lost:
                why = "LeaseExpired" if job.uid in expired else "OperatorRestarted"
                if not alive:
                    why = "InstanceLost"
                if job.uid in self.lost:
                    why = "RunnerLost"
                    self.lost.discard(job.uid)
                self._spawn_cleanup(outcomes.requeue_orphan(self, job, why), job.uid)
            else:
                occupied[job.instance] += 1

        placed: set[str] = set()
        if pool is not None and queued:
            concurrency = pool.jobs.concurrency_per_instance
            slots = [
                scheduler.SlotView(
                    i.name,
                    scheduler.free_slots(concurrency, occupied[i.name]),
                    self.checkpoints.get((ns, i.name), i.checkpoint),
                    i.machine_id,
                    i.gpu_name,
                )
                for i in instances.values()
                if i.phase == "Ready" and not i.deleting and i.comfy_url
            ]
            if any(s.free for s in slots):
                views = [
                    scheduler.QueuedJob(j.uid, j.created, j.priority, self.sequence(j.uid),
                                        j.checkpoint, j.excluded_hosts, j.excluded_gpus)
                    for j in queued
                ]  # fmt: skip
                placement = scheduler.plan_placement(views, slots)
                logger.debug(
                    "pool %s/%s: %d queued, %d free slots, %d placed",
                    ns,
                    pool_name,
                    len(views),
                    sum(s.free for s in slots),
                    len(placement.assignments),
                )
                for a in placement.assignments:
                    job = by_uid[a.job]
                    inst = instances[a.instance]
                    self.checkpoints[(ns, inst.name)] = job.checkpoint
                    self._start(runner.run_job, job, inst, pool, resume=False)
                    placed.add(job.uid)
        left = [j for j in queued if j.uid not in placed]
        waiting = len(left)
        mine = sum(1 for h in self.held.values() if (h.job.namespace, h.job.pool) == key)
        self.counts[key] = JobCounts(waiting, mine, sum(j.seconds for j in left))
        if self.waiting.get(key) != waiting:
            if waiting > self.waiting.get(key, 0):
                self.deps.wake(ns, pool_name)  # scale-up demand
            self.waiting[key] = waiting
        self._publish(key, jobs)

    def _start(self, fn: Any, job: JobFacts, inst: InstanceFacts, pool: PoolFacts,
               *, resume: bool) -> None:  # fmt: skip
        held = Held(job, inst)
        self.held[job.uid] = held
        self.released.discard(job.uid)
        self.mark_instance(inst.namespace, inst.name)
        task_key = f"job/{job.uid}"
        held.task = asyncio.create_task(fn(self, held, pool, resume=resume), name=task_key)
        self.deps.tasks[task_key] = held.task
        held.task.add_done_callback(lambda _: self.deps.tasks.pop(task_key, None))

    def release(self, held: Held, *, finished: bool, clean: bool = True) -> None:
        """The runner is done with the job: the slot is free, the pool dispatches again.

        ``clean``: its outcome (terminal or requeued) was written. Otherwise the job,
        if it still exists, is requeued at the next dispatch (``lost``)."""
        if self.held.get(held.job.uid) is held:
            del self.held[held.job.uid]
        self.deleted.discard(held.job.uid)
        if clean:
            self.released.add(held.job.uid)
        else:
            self.lost.add(held.job.uid)
        if finished:
            self.last_job_at[(held.instance.namespace, held.instance.name)] = self.deps.now()
        self.mark_instance(held.instance.namespace, held.instance.name)
        self.wake((held.job.namespace, held.job.pool))

    def _spawn_cleanup(self, coro: Any, uid: str) -> None:
        self.busy.add(uid)
        task_key = f"cleanup/{uid}"

        def done(_: asyncio.Task[None]) -> None:
            self.busy.discard(uid)
            self.deps.tasks.pop(task_key, None)

        task = asyncio.create_task(coro, name=task_key)
        self.deps.tasks[task_key] = task
        task.add_done_callback(done)

    # ------------------------------------------------------------- events from jobs.py
    def job_event(self, body: Any, event_type: str) -> None:
        """A job changed (or was deleted): bookkeeping, then wake its pool."""
        meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
        uid = meta.get("uid") or meta["name"]
        key = (meta.get("namespace") or "default", spec.get("pool", ""))
        phase = status.get("phase") or "Queued"
        self.sequence(uid)
        if event_type == "DELETED" or phase in TERMINAL_PHASES or phase == "Queued":
            self.released.discard(uid)
            self.lost.discard(uid)
        if event_type == "DELETED":
            if uid in self.held:
                self.deleted.add(uid)
            self.seen.pop(uid, None)
            self.terminal.pop(uid, None)
            handle = self.expiring.pop(uid, None)
            if handle is not None:
                handle.cancel()
        elif phase in TERMINAL_PHASES:
            finished = parse_optional_time(status.get("finishedAt"))
            self.terminal[uid] = (key, meta["name"], finished, phase)
        if self.gate.is_set():
            self.wake(key)

    # ------------------------------------------------------------- instance status
    def mark_instance(self, namespace: str, name: str) -> None:
        """Write the instance's jobs/checkpoint/lastJobAt soon (coalesced writes)."""
        key = (namespace, name)
        dirty = self.instance_dirty.get(key)
        if dirty is None:
            dirty = self.instance_dirty[key] = asyncio.Event()
            task_key = f"instance-jobs/{namespace}/{name}"
            self.deps.tasks[task_key] = asyncio.create_task(self._write_instance(key, dirty),
                                                            name=task_key)  # fmt: skip
        dirty.set()

    async def _write_instance(self, key: tuple[str, str], dirty: asyncio.Event) -> None:
        ns, name = key
        while True:
            await dirty.wait()
            await asyncio.sleep(0.2)  # coalesce a burst of placements into one write
            dirty.clear()
            patch: dict[str, Any] = {"jobs": self.jobs_on(ns, name)}
            if key in self.checkpoints:
                patch["checkpoint"] = self.checkpoints[key]
            if key in self.last_job_at:
                patch["lastJobAt"] = format_time(self.last_job_at[key])
            try:
                await patch_status(self.deps.kube, kube.GPUINSTANCES, ns, name, patch)
            except Exception as exc:  # a write lost here is redone at the next change
                logger.warning("could not record jobs on %s/%s: %s", ns, name, exc)

    # ------------------------------------------------------------- TTL and metrics
    def _schedule_ttl(self, key: PoolKey, pool: PoolFacts | None) -> None:
        if pool is None or pool.jobs.ttl is None:
            return
        ttl = parse_duration(pool.jobs.ttl)
        loop = asyncio.get_running_loop()
        for uid, (pkey, name, finished, _phase) in self.terminal.items():
            if pkey != key or uid in self.expiring:
                continue
            due = (finished or self.deps.now()) + ttl
            delay = max((due - self.deps.now()).total_seconds(), 0.0)
            self.expiring[uid] = loop.call_later(delay, self._expire, key[0], name, uid)

    def _expire(self, namespace: str, name: str, uid: str) -> None:
        async def delete() -> None:
            with contextlib.suppress(Exception):
                await self.deps.kube.delete(kube.GENERATIONJOBS, name, namespace)

        self._spawn_cleanup(delete(), f"ttl-{uid}")

    def _publish(self, key: PoolKey, jobs: Iterable[JobFacts]) -> None:
        phases = Counter(j.phase for j in jobs)
        for pkey, _name, _finished, phase in self.terminal.values():
            if pkey == key:
                phases[phase] += 1
        for phase in ("Queued", "Scheduled", "Running", *TERMINAL_PHASES):
            metrics.JOBS.labels(key[1], phase).set(phases.get(phase, 0))
