"""The slot ledger: what this process holds and remembers of jobs. No I/O, no tasks.

Authoritative for this operator process: a job placed here holds a slot from the
moment it is placed until its outcome is written (:meth:`Ledger.release`). The ledger
also remembers what recovery needs between dispatches (released, lost, deleted, busy
jobs; pools dispatched once), the checkpoint each instance last loaded, the last
progress seen per instance, finished jobs awaiting their TTL, and the counts the pool
reconcile reads.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from warmpool.operator.controllers.jobs.facts import InstanceFacts, JobFacts, PoolKey
from warmpool.operator.decisions.scheduler import JobCounts

InstanceKey = tuple[str, str]


@dataclass
class Held:
    """A job placed by this process: its instance and the runner task."""

    job: JobFacts
    instance: InstanceFacts
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stop_reason: str = ""
    #: Its prompt began to run on the instance (False while queued behind another).
    started: bool = False
    #: ComfyUI's queue ``number`` for its prompt: placement order (ComfyUI runs the lowest
    #: first), so a job queued ahead never overtakes the one placed before it.
    number: float = 0.0
    #: The runner's hand-over (:meth:`..runner.Run.hand_over`): what the replica taking
    #: over needs to resume the job, written before this one stands down.
    hand_over: Callable[[], Awaitable[None]] | None = None

    def halt(self, reason: str) -> None:
        """Ask the runner to stop (the first reason wins)."""
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()

    def go_on(self) -> None:
        """The runner handled the halt without stopping (a drained prompt that had begun)."""
        self.stop.clear()
        self.stop_reason = ""


@dataclass(frozen=True)
class Finished:
    """A job in a terminal phase, remembered for its TTL and the phase gauge."""

    pool: PoolKey
    name: str
    finished_at: datetime | None
    phase: str


class Ledger:
    """The held slots and the bookkeeping of every pool's jobs in this process."""

    def __init__(self) -> None:
        self.held: dict[str, Held] = {}  # by job uid
        #: Jobs whose runner here ended: their stale Scheduled/Running facts hold nothing.
        self.released: set[str] = set()
        self.deleted: set[str] = set()  # held jobs whose DELETED event came
        self.lost: set[str] = set()  # runner ended here without writing an outcome
        self.busy: set[str] = set()  # job uids with a cleanup/requeue write in flight
        #: Jobs whose runner here wrote a terminal outcome that no event has shown yet: the
        #: index may still hold them as Queued (a short job's one write is its outcome).
        self.done: set[str] = set()
        self.dispatched: set[PoolKey] = set()  # pools dispatched once (orphans adopted)
        self.checkpoints: dict[InstanceKey, str] = {}
        #: Last progress seen per instance (monotonic seconds), shared by its runners.
        self.activity: dict[InstanceKey, float] = {}
        self.last_job_at: dict[InstanceKey, datetime] = {}
        self.finished: dict[str, Finished] = {}
        #: The finished jobs' phases counted per pool (the phase gauge, kept as they come).
        self.finished_phases: dict[PoolKey, Counter[str]] = {}
        self.waiting: dict[PoolKey, int] = {}
        self.counts: dict[PoolKey, JobCounts] = {}
        self._order = itertools.count()
        self._seen: dict[str, int] = {}
        self._number = 0.0

    def sequence(self, uid: str) -> int:
        """The order this process first saw a job (ties of creation time)."""
        if uid not in self._seen:
            self._seen[uid] = next(self._order)
        return self._seen[uid]

    def first_dispatch(self, key: PoolKey) -> bool:
        """True the first time a pool is dispatched by this process."""
        first = key not in self.dispatched
        self.dispatched.add(key)
        return first

    def held_in(self, key: PoolKey) -> list[Held]:
        """The held jobs of one pool."""
        return [h for h in self.held.values() if (h.job.namespace, h.job.pool) == key]

    def occupied(self, key: PoolKey) -> Counter[str]:
        """Held jobs of one pool per instance name."""
        return Counter(h.instance.name for h in self.held_in(key))

    def jobs_on(self, namespace: str, instance: str) -> int:
        """Jobs this process runs on an instance (the pool never releases a busy one)."""
        return sum(
            1
            for h in self.held.values()
            if h.instance.namespace == namespace and h.instance.name == instance
        )

    def hold(self, job: JobFacts, instance: InstanceFacts, *, now: datetime) -> Held:
        """Take a slot on ``instance`` for ``job`` (numbered in placement order: epoch
        seconds, strictly increasing in this process)."""
        self._number = max(now.timestamp(), self._number + 0.001)
        held = self.held[job.uid] = Held(job, instance, number=round(self._number, 3))
        self.released.discard(job.uid)
        return held

    def release(self, held: Held, *, finished: bool, clean: bool, now: datetime) -> None:
        """The runner is done with the job: the slot is free.

        ``clean``: its outcome (terminal or requeued) was written. Otherwise the job,
        if it still exists, is requeued at the next dispatch (``lost``)."""
        if self.held.get(held.job.uid) is held:
            del self.held[held.job.uid]
        self.deleted.discard(held.job.uid)
        (self.released if clean else self.lost).add(held.job.uid)
        if finished:
            self.done.add(held.job.uid)
            self.last_job_at[(held.instance.namespace, held.instance.name)] = now

    def observe(
        self, uid: str, key: PoolKey, name: str, *, phase: str, deleted: bool,
        finished_at: datetime | None, terminal: bool,
    ) -> None:  # fmt: skip
        """A job event: what the ledger learns from it."""
        self.sequence(uid)
        if deleted or terminal or phase == "Queued":
            self.released.discard(uid)
            self.lost.discard(uid)
        if deleted or terminal:
            self.done.discard(uid)
        if deleted:
            if uid in self.held:
                self.deleted.add(uid)
            self._seen.pop(uid, None)
            self._forget_finished(uid)
        elif terminal:
            self._forget_finished(uid)
            self.finished[uid] = Finished(key, name, finished_at, phase)
            self.finished_phases.setdefault(key, Counter())[phase] += 1

    def _forget_finished(self, uid: str) -> None:
        done = self.finished.pop(uid, None)
        if done is not None:
            counts = self.finished_phases.get(done.pool)
            if counts is not None:
                counts[done.phase] -= 1
                if counts[done.phase] <= 0:
                    del counts[done.phase]
