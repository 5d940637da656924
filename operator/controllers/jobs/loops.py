"""The per-pool job loops: woken by events, each dispatch applies recovery and placement.

Facts come from Kopf indexes kept in memory (:mod:`warmpool.operator.handlers.jobs`
registers them): the non-terminal GenerationJobs, the GpuInstances and the GpuPools,
by pool. The slot ledger (:mod:`.ledger`) is authoritative for this process; what to do
with held and orphaned jobs is :func:`recovery.plan_recovery`, where queued jobs go is
:func:`scheduler.plan_placement`. Runners (:mod:`.runner`) get a held slot and return
an outcome; the loop releases the slot.

Every job, instance or pool event wakes its pool's loop (no polling; arrivals into a pool
whose places are all taken are gathered for :data:`ARRIVAL_BATCH` first); one dispatch is
synchronous — no ``await`` between reading the facts and updating the ledger — so two
dispatches never give away the same slot. An instance takes its pool's
``concurrencyPerInstance`` jobs and ``WARMPOOL_QUEUE_AHEAD`` more, queued in its ComfyUI
behind them (used only when no slot is free anywhere); a dispatch looks at the first few
queued jobs in placement order, not at the whole queue (:data:`PRESELECT`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections import Counter
from collections.abc import Coroutine, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import kopf

from warmpool.crds.common import format_time, parse_duration, parse_optional_time
from warmpool.crds.generationjob import TERMINAL_PHASES
from warmpool.operator import errors, metrics
from warmpool.operator.adapters import kube
from warmpool.operator.adapters.status import patch_status
from warmpool.operator.controllers.jobs import outcomes, runner
from warmpool.operator.controllers.jobs.facts import (
    SERVING,
    InstanceFacts,
    JobFacts,
    PoolFacts,
    PoolKey,
)
from warmpool.operator.controllers.jobs.ledger import Held, InstanceKey, Ledger
from warmpool.operator.decisions import peering, recovery, scheduler
from warmpool.operator.deps import Deps

logger = logging.getLogger(__name__)

V = TypeVar("V")


#: Seconds between two writes of an instance's job count while it stays busy.
BUSY_COUNT_REFRESH = 5.0
#: Seconds new arrivals into a pool whose last dispatch left jobs waiting are gathered
#: before it dispatches again (nothing frees a place but a release or an instance event,
#: which dispatch at once): one dispatch per batch, not one per job.
ARRIVAL_BATCH = 0.1
#: Seconds a replica taking over waits at most for Kopf's job index to catch up with
#: the jobs it listed (``decisions/peering.py``).
CATCH_UP_SECONDS = 30.0
#: Seconds a replica standing down gives its runners to write their jobs' placements.
HAND_OVER_SECONDS = 2.0
#: A dispatch with N places to fill looks at the first PRESELECT × N + PRESELECT queued
#: jobs in placement order (all of them when exclusions left places free).
PRESELECT = 4


def instance_write_due(written: Mapping[str, Any], patch: Mapping[str, Any], age: float) -> bool:
    """Whether the instance's job fields are written now (see ``_write_instance``)."""
    if all(written.get(k) == v for k, v in patch.items()):
        return False
    before, now = written.get("jobs"), patch.get("jobs")
    flipped = before is None or bool(before) != bool(now)
    others = any(written.get(k) != v for k, v in patch.items() if k != "jobs")
    return flipped or others or age >= BUSY_COUNT_REFRESH


def dispatcher(memo: Deps) -> Dispatcher:
    """The memo's dispatcher, created on first use."""
    found = memo.dispatcher
    if not isinstance(found, Dispatcher):
        found = memo.dispatcher = Dispatcher(memo)
    return found


class Dispatcher:
    """Per-pool dispatch loops over Kopf's indexes and the slot ledger."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.ledger = Ledger()
        self.jobs: kopf.Index[PoolKey, JobFacts] | None = None
        self.instances: kopf.Index[PoolKey, InstanceFacts] | None = None
        self.pools: kopf.Index[PoolKey, PoolFacts] | None = None
        self.arrivals: kopf.Index[PoolKey, datetime] | None = None  # every job's creation
        self.gate = asyncio.Event()  # every index populated
        self.wakeups: dict[PoolKey, asyncio.Event] = {}
        self.batching: dict[PoolKey, asyncio.TimerHandle] = {}  # arrivals gathered
        self.expiring: dict[str, asyncio.TimerHandle] = {}
        self.instance_dirty: dict[InstanceKey, asyncio.Event] = {}
        self.owned: set[asyncio.Task[None]] = set()  # every task this dispatcher started
        self.stopped = False  # stood down (:meth:`stop`): it starts nothing any more
        self.catching = asyncio.Lock()  # one catch-up for all pool loops (:meth:`_catch_up`)
        self.ghosts: set[str] = set()  # jobs deleted while this replica stood by
        self.evented: dict[str, str] = {}  # while catching up: uid → version of its last event

    # ------------------------------------------------------------- wiring
    def bind(self, indices: Mapping[str, Any]) -> None:
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

    async def stop(self) -> None:
        """Stand down (this replica stands by for a peer): cancel the dispatch loops, the
        runners and the pending writes, and start nothing more. A cancelled runner leaves
        its job's lease as it is, as at shutdown: the replica that works now resumes the
        job, following its prompt. The dispatcher is not used again: a fresh one (and a
        fresh ledger) starts from Kopf's indexes when this replica works again."""
        self.stopped = True
        handing = [h.hand_over() for h in self.ledger.held.values() if h.hand_over is not None]
        if handing:  # the placements first, so that the replica taking over resumes them
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*handing, return_exceptions=True),
                                       HAND_OVER_SECONDS)  # fmt: skip
        for handle in [*self.batching.values(), *self.expiring.values()]:
            handle.cancel()
        self.batching.clear()
        self.expiring.clear()
        tasks = list(self.owned)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for key, task in list(self.deps.tasks.items()):
            if task in tasks:
                del self.deps.tasks[key]

    def indexed_versions(self) -> dict[str, str]:
        """Every job in Kopf's index of non-terminal jobs: uid → resourceVersion."""
        found: dict[str, str] = {}
        for key in list(self.jobs or ()):
            for job in self._store(self.jobs, key):
                found[job.uid] = str((job.body.get("metadata") or {}).get("resourceVersion", ""))
        return found

    async def _catch_up(self) -> None:
        """On taking over: wait (at most :data:`CATCH_UP_SECONDS`) until Kopf's job index
        is not behind the jobs listed then (``decisions/peering.py``), and leave out the
        jobs deleted meanwhile that the index still holds."""
        async with self.catching:
            listing = self.deps.catch_up
            if listing is None:
                return
            loop = asyncio.get_running_loop()
            deadline = loop.time() + CATCH_UP_SECONDS
            while True:
                indexed = self.indexed_versions()
                # a job that ended or went after the listing left the index: its event says
                late = peering.behind(listing, {**indexed, **self.evented})
                if not late or loop.time() >= deadline:
                    break
                await asyncio.sleep(0.05)
            if late:
                logger.warning("the job index is still behind the take-over listing for %d "
                               "job(s) after %.0f s; dispatching anyway", len(late),
                               CATCH_UP_SECONDS)  # fmt: skip
            self.ghosts |= peering.ghosts(listing, indexed)
            self.deps.catch_up = None
            self.evented.clear()

    def wake(self, key: PoolKey) -> None:
        """Dispatch the pool soon (its loop is started on first use)."""
        if self.stopped:
            return
        batch = self.batching.pop(key, None)
        if batch is not None:
            batch.cancel()  # this dispatch sees the gathered arrivals too
        event = self.wakeups.get(key)
        if event is None:
            event = self.wakeups[key] = asyncio.Event()
            self._task(f"dispatch/{key[0]}/{key[1]}", self._loop(key, event))
        event.set()

    def wake_after_batch(self, key: PoolKey) -> None:
        """Dispatch the pool once :data:`ARRIVAL_BATCH` has gathered the arrivals."""
        if key not in self.batching:
            loop = asyncio.get_running_loop()
            self.batching[key] = loop.call_later(ARRIVAL_BATCH, self.wake, key)

    async def _loop(self, key: PoolKey, event: asyncio.Event) -> None:
        await self.gate.wait()
        while True:
            await event.wait()
            event.clear()
            await self.deps.active.wait()  # never while this replica stands by
            await self._catch_up()
            try:
                self.dispatch(key)
            except Exception:
                logger.exception("dispatching jobs of pool %s/%s failed", *key)
            await asyncio.sleep(0)

    def _task(
        self, key: str, work: Coroutine[Any, Any, None], *, forget: bool = False
    ) -> asyncio.Task[None]:
        """A task owned by the operator (cancelled at shutdown); ``forget``: dropped from
        ``deps.tasks`` when it ends — only if the key still names it (a job's next
        attempt may reuse the key before this task's callbacks run)."""
        task = asyncio.create_task(work, name=key)
        if self.stopped:  # a runner's release after :meth:`stop`: nothing starts
            task.cancel()
            return task
        self.owned.add(task)
        task.add_done_callback(self.owned.discard)
        self.deps.tasks[key] = task
        if forget:

            def done(ended: asyncio.Task[None]) -> None:
                if self.deps.tasks.get(key) is ended:
                    del self.deps.tasks[key]

            task.add_done_callback(done)
        return task

    # ------------------------------------------------------------- facts
    @staticmethod
    def _store(index: kopf.Index[PoolKey, V] | None, key: PoolKey) -> list[V]:
        if index is None or key not in index:
            return []
        return list(index[key])

    def pool(self, key: PoolKey) -> PoolFacts | None:
        found = self._store(self.pools, key)
        return found[0] if found else None

    def pool_gpus(self, key: PoolKey) -> set[str]:
        """The GPU models a pool may run on and those its instances have."""
        pool = self.pool(key)
        names = {i.gpu_name for i in self._store(self.instances, key) if i.gpu_name}
        return {*(pool.gpu_names if pool else ()), *names}

    def jobs_on(self, namespace: str, instance: str) -> int:
        """Jobs this process runs on an instance (the pool never releases a busy one)."""
        return self.ledger.jobs_on(namespace, instance)

    def job_counts(self, namespace: str, pool: str) -> scheduler.JobCounts | None:
        """Queued and placed/running jobs of a pool; None until the indexes are populated."""
        if not self.gate.is_set():
            return None
        return self.ledger.counts.get((namespace, pool), scheduler.JobCounts())

    def arrivals_since(self, namespace: str, pool: str, since: datetime) -> list[datetime] | None:
        """When the pool's jobs were submitted, from ``since``; None until indexed."""
        if not self.gate.is_set() or self.arrivals is None:
            return None
        return [t for t in self._store(self.arrivals, (namespace, pool)) if t >= since]

    # ------------------------------------------------------------- one dispatch
    def dispatch(self, key: PoolKey) -> None:
        """Apply recovery (halt, cancel, resume, requeue) and place what can be placed."""
        ns, pool_name = key
        pool = self.pool(key)
        if pool is None and self.deps.settings.pool_selector:
            return  # another shard's pool (or one not seen yet): its jobs are not ours
        jobs = self._store(self.jobs, key)
        if self.ghosts:
            jobs = [j for j in jobs if j.uid not in self.ghosts]
        instances = {i.name: i for i in self._store(self.instances, key)}
        now = self.deps.now()
        by_uid = {j.uid: j for j in jobs}
        self._schedule_ttl(key, pool)
        ledger = self.ledger
        mine = ledger.held_in(key)
        serving = {i.name for i in instances.values() if not i.deleting and i.phase in SERVING}
        plan = recovery.plan_recovery(
            [recovery.HeldView(h.job.uid, h.instance.name, h.started) for h in mine],
            jobs,
            serving=serving,
            draining={n for n in serving if instances[n].phase == "Draining"},
            deleted=ledger.deleted, released=ledger.released, lost=ledger.lost,
            # (done: finished here, the index may still say Queued: never placed again)
            busy=ledger.busy | ledger.done if ledger.done else ledger.busy,
            first_dispatch=ledger.first_dispatch(key),
            pool_known=pool is not None, now=now,
        )  # fmt: skip
        occupied = Counter(h.instance.name for h in mine)
        expected: dict[str, float] = {}  # seconds of the held jobs, by instance
        for h in mine:
            expected[h.instance.name] = expected.get(h.instance.name, 0.0) + h.job.seconds
        for intent in plan.intents:
            match intent:
                case recovery.Halt(uid, reason):
                    ledger.held[uid].halt(reason)
                case recovery.Cancel(uid):
                    job = by_uid[uid]
                    self._cleanup(outcomes.cancel_unplaced(self.deps.kube, job, now=now), uid)
                case recovery.Resume(uid, instance):
                    assert pool is not None
                    self._start(by_uid[uid], instances[instance], pool, resume=True)
                    occupied[instance] += 1
                case recovery.Requeue(uid, why):
                    ledger.lost.discard(uid)
                    self._cleanup(self._requeue(by_uid[uid], why), uid)
                case recovery.Hold(_uid, instance):
                    occupied[instance] += 1
        queued = [by_uid[uid] for uid in plan.queued]
        placed = self._place(key, pool, queued, instances, occupied, expected)
        left = [j for j in queued if j.uid not in placed]
        waiting = len(left)
        held = len(ledger.held_in(key))
        ledger.counts[key] = scheduler.JobCounts(waiting, held, sum(j.seconds for j in left))
        if ledger.waiting.get(key) != waiting:
            if waiting > ledger.waiting.get(key, 0):
                self.deps.wake(ns, pool_name)  # scale-up demand
            ledger.waiting[key] = waiting
        self._publish(key, jobs)

    def _place(
        self,
        key: PoolKey,
        pool: PoolFacts | None,
        queued: list[JobFacts],
        instances: dict[str, InstanceFacts],
        occupied: Counter[str],
        expected: dict[str, float],
    ) -> set[str]:
        """Start runners for the queued jobs that fit the free slots (or queue-ahead
        places: on instances whose held jobs are expected to end within
        ``WARMPOOL_QUEUE_AHEAD_MAX_SECONDS``); their uids."""
        ns, pool_name = key
        placed: set[str] = set()
        if pool is None or not queued:
            return placed
        concurrency = pool.jobs.concurrency_per_instance
        settings = self.deps.settings
        checkpoints = self.ledger.checkpoints

        def places_behind(name: str) -> int:
            if expected.get(name, 0.0) > settings.queue_ahead_max_seconds:
                return 0
            return scheduler.free_slots(concurrency + settings.queue_ahead, occupied[name]) - (
                scheduler.free_slots(concurrency, occupied[name])
            )

        slots = [
            scheduler.SlotView(i.name, scheduler.free_slots(concurrency, occupied[i.name]),
                               checkpoints.get((ns, i.name), i.checkpoint), i.machine_id,
                               i.gpu_name, ahead=places_behind(i.name))
            for i in instances.values()
            if i.phase == "Ready" and not i.deleting and i.comfy_url
        ]  # fmt: skip
        if not any(s.free or s.ahead for s in slots):
            return placed
        places = sum(s.free + s.ahead for s in slots)
        placement = scheduler.plan_placement(self._views(queued, places, pool), slots)
        if len(placement.assignments) < places and len(queued) > PRESELECT * places + PRESELECT:
            # Exclusions left places free among the first in line: every job is considered.
            placement = scheduler.plan_placement(self._views(queued, None, pool), slots)
        logger.debug("pool %s/%s: %d queued, %d places, %d placed", ns, pool_name,
                     len(queued), places, len(placement.assignments))  # fmt: skip
        by_uid = {j.uid: j for j in queued}
        for a in placement.assignments:
            job, inst = by_uid[a.job], instances[a.instance]
            checkpoints[(ns, inst.name)] = pool.model_of(job)
            self._start(job, inst, pool, resume=False)
            placed.add(job.uid)
        return placed

    def _views(
        self, queued: list[JobFacts], places: int | None, pool: PoolFacts
    ) -> list[scheduler.QueuedJob]:
        """Placement's view of the queued jobs: with ``places``, only the first
        ``PRESELECT × places + PRESELECT`` in line (the queue can be thousands long; a
        dispatch fills a few places)."""
        seq = self.ledger.sequence
        if places is not None and len(queued) > PRESELECT * places + PRESELECT:
            first = PRESELECT * places + PRESELECT
            order = lambda j: (-j.priority, j.created, seq(j.uid), j.uid)  # noqa: E731 (job_order)
            queued = heapq.nsmallest(first, queued, key=order)
        return [
            scheduler.QueuedJob(j.uid, j.created, j.priority, seq(j.uid), pool.model_of(j),
                                j.excluded_hosts, j.excluded_gpus)
            for j in queued
        ]  # fmt: skip

    def _start(self, job: JobFacts, inst: InstanceFacts, pool: PoolFacts, *, resume: bool) -> None:
        held = self.ledger.hold(job, inst, now=self.deps.now())
        self.mark_instance(inst.namespace, inst.name)
        held.task = self._task(f"job/{job.uid}", self._run(held, pool, resume=resume), forget=True)

    async def _run(self, held: Held, pool: PoolFacts, *, resume: bool) -> None:
        """One runner: its outcome releases the slot, then the finalizer goes."""
        key = (held.job.namespace, held.job.pool)
        outcome = runner.Outcome()
        try:
            outcome = await runner.run_job(
                self.deps, held, pool, resume=resume, activity=self.ledger.activity,
                pool_gpus=lambda: self.pool_gpus(key),
            )  # fmt: skip
        finally:
            self.release(held, finished=outcome.finished, clean=outcome.clean)
        if outcome.finished:  # off the slot's critical path: the outcome is already written
            await outcomes.remove_finalizer(self.deps.kube, held.job, outcome.finalizers)

    def release(self, held: Held, *, finished: bool, clean: bool = True) -> None:
        """The runner is done with the job: the slot is free, the pool dispatches again."""
        self.ledger.release(held, finished=finished, clean=clean, now=self.deps.now())
        self.mark_instance(held.instance.namespace, held.instance.name)
        self.wake((held.job.namespace, held.job.pool))

    async def _requeue(self, job: JobFacts, why: recovery.RequeueReason) -> None:
        if await outcomes.requeue_orphan(self.deps.kube, job, why):
            self.ledger.released.add(job.uid)

    def _cleanup(self, work: Coroutine[Any, Any, None], uid: str) -> None:
        """A write for a job no runner holds; the job is busy until it ends."""
        self.ledger.busy.add(uid)
        task = self._task(f"cleanup/{uid}", work, forget=True)
        task.add_done_callback(lambda _: self.ledger.busy.discard(uid))

    # ------------------------------------------------------------- events from handlers
    def job_event(self, body: Mapping[str, Any], event_type: str) -> None:
        """A job changed (or was deleted): bookkeeping, then wake its pool."""
        meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
        uid = meta.get("uid") or meta["name"]
        key = (meta.get("namespace") or "default", spec.get("pool", ""))
        phase = status.get("phase") or "Queued"
        deleted = event_type == "DELETED"
        if self.deps.catch_up is not None:
            self.evented[uid] = str(meta.get("resourceVersion") or "")
        echo = self._own_echo(uid, meta, phase, deleted=deleted)  # before the ledger learns
        self.ledger.observe(
            uid, key, meta["name"], phase=phase, deleted=deleted, terminal=phase in TERMINAL_PHASES,
            finished_at=parse_optional_time(status.get("finishedAt")),
        )  # fmt: skip
        if deleted:
            handle = self.expiring.pop(uid, None)
            if handle is not None:
                handle.cancel()
        if not self.gate.is_set() or echo:
            return
        arrival = not deleted and phase == "Queued" and not meta.get("deletionTimestamp")
        if arrival and self.ledger.waiting.get(key, 0) > 0:
            self.wake_after_batch(key)  # the places are taken: only a release frees one
        else:
            self.wake(key)

    def _own_echo(
        self, uid: str, meta: Mapping[str, Any], phase: str, *, deleted: bool
    ) -> bool:  # fmt: skip
        """An event that only echoes what this process's runner wrote (its Running,
        progress, outcome or finalizer writes): placement learns nothing from it, so the
        pool is not dispatched again (the slot's release wakes it)."""
        if deleted or meta.get("deletionTimestamp"):
            return False
        if uid in self.ledger.held:
            return True
        return phase in TERMINAL_PHASES and uid in self.ledger.released

    # ------------------------------------------------------------- instance status
    def mark_instance(self, namespace: str, name: str) -> None:
        """Write the instance's jobs/checkpoint/lastJobAt soon (coalesced writes)."""
        key = (namespace, name)
        dirty = self.instance_dirty.get(key)
        if dirty is None:
            dirty = self.instance_dirty[key] = asyncio.Event()
            self._task(f"instance-jobs/{namespace}/{name}", self._write_instance(key, dirty))
        dirty.set()

    async def _write_instance(self, key: InstanceKey, dirty: asyncio.Event) -> None:
        """The instance's ``jobs``, ``checkpoint`` and ``lastJobAt``, written when it turns
        busy or idle or loads another checkpoint (coalesced over 0.2 s); a count that
        moves between busy values is written at most every :data:`BUSY_COUNT_REFRESH`
        seconds (a display: this process's ledger is what the pool reads). ``lastJobAt``
        goes with the idle write (the idle timeout counts from it only while idle)."""
        ns, name = key
        ledger = self.ledger
        written: dict[str, Any] = {}
        loop = asyncio.get_running_loop()
        last = -BUSY_COUNT_REFRESH
        later: list[asyncio.TimerHandle] = []

        def later_due() -> None:
            later.clear()
            dirty.set()

        while True:
            await dirty.wait()
            await asyncio.sleep(0.2)  # coalesce a burst of placements into one write
            dirty.clear()
            jobs = ledger.jobs_on(ns, name)
            patch: dict[str, Any] = {"jobs": jobs}
            if key in ledger.checkpoints:
                patch["checkpoint"] = ledger.checkpoints[key]
            if key in ledger.last_job_at and not jobs:
                patch["lastJobAt"] = format_time(ledger.last_job_at[key])
            if not instance_write_due(written, patch, loop.time() - last):
                if patch.get("jobs") != written.get("jobs") and not later:
                    later.append(loop.call_later(BUSY_COUNT_REFRESH, later_due))  # the count
                continue
            try:
                await patch_status(self.deps.kube, kube.GPUINSTANCES, ns, name, patch)
                written, last = {**written, **patch}, loop.time()
            except Exception as exc:  # a write lost here is redone at the next change
                metrics.ERRORS_CONTINUED.labels("instance_jobs").inc()
                logger.warning("could not record jobs on %s/%s: %s", ns, name, exc)

    # ------------------------------------------------------------- TTL and metrics
    def _schedule_ttl(self, key: PoolKey, pool: PoolFacts | None) -> None:
        if pool is None or pool.jobs.ttl is None:
            return
        ttl = parse_duration(pool.jobs.ttl)
        loop = asyncio.get_running_loop()
        for uid, done in self.ledger.finished.items():
            if done.pool != key or uid in self.expiring:
                continue
            due = (done.finished_at or self.deps.now()) + ttl
            delay = max((due - self.deps.now()).total_seconds(), 0.0)
            self.expiring[uid] = loop.call_later(delay, self._expire, key[0], done.name, uid)

    def _expire(self, namespace: str, name: str, uid: str) -> None:
        self._cleanup(self._delete(namespace, name), f"ttl-{uid}")

    async def _delete(self, namespace: str, name: str) -> None:
        """The TTL delete of a finished job (gone already counts as done)."""
        try:
            await self.deps.kube.delete(kube.GENERATIONJOBS, name, namespace)
        except errors.KubeNotFoundError:
            pass
        except errors.KubeError as exc:
            metrics.ERRORS_CONTINUED.labels("job_ttl_delete").inc()
            logger.warning("could not delete the finished job %s/%s: %s", namespace, name, exc)

    def _publish(self, key: PoolKey, jobs: Iterable[JobFacts]) -> None:
        phases = Counter(j.phase for j in jobs)
        phases.update(self.ledger.finished_phases.get(key, {}))
        for phase in ("Queued", "Scheduled", "Running", *TERMINAL_PHASES):
            metrics.JOBS.labels(key[0], key[1], phase).set(phases.get(phase, 0))
