"""Crash recovery of jobs: what one dispatch does with held and orphaned jobs. Pure.

A job is *held* while a runner of this process has it. An *orphan* is a job the
objects say is Scheduled/Running that no runner here holds: left by a previous
operator process, or by a runner that ended without writing an outcome. Each dispatch
classifies them into intents, applied by the job loops
(:mod:`warmpool.operator.controllers.jobs.loops`):

- :class:`Halt` a held job whose object went away (``gone``), is being deleted
  (``cancelled``) or whose instance stopped serving (``instance_lost``); and one queued
  in the ComfyUI of a Draining instance that has not started (``drained``: it is taken
  out of that queue and placed elsewhere);
- :class:`Cancel` a job being deleted that no runner holds (our finalizer is on it);
- :class:`Resume` a Running orphan (or a Scheduled one whose prompt was queued ahead) on
  a serving instance at the pool's first dispatch of this process (its prompt is followed
  again, not resubmitted);
- :class:`Requeue` an orphan whose lease ran out, whose instance is gone, whose runner
  ended here without an outcome, or that this process found at start and cannot resume;
- :class:`Hold` any other orphan: its lease still runs, so its slot stays taken.

Queued jobs (neither held nor being cleaned up) are returned for placement.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from warmpool.operator.decisions import scheduler

#: Phases of a placed job (it holds a slot on an instance).
HELD_PHASES = ("Scheduled", "Running")

HaltReason = Literal["gone", "cancelled", "instance_lost", "drained"]
RequeueReason = Literal["LeaseExpired", "OperatorRestarted", "InstanceLost", "RunnerLost"]


class JobLike(Protocol):
    """What recovery reads of a job (the job controllers' facts pass as they are)."""

    @property
    def uid(self) -> str: ...
    @property
    def phase(self) -> str: ...
    @property
    def instance(self) -> str: ...
    @property
    def prompt_id(self) -> str: ...
    @property
    def lease_expires_at(self) -> datetime | None: ...
    @property
    def deleting(self) -> bool: ...
    @property
    def finalized(self) -> bool: ...


@dataclass(frozen=True)
class JobView:
    """What recovery needs of a job object (a :class:`JobLike`)."""

    uid: str
    phase: str
    instance: str = ""
    prompt_id: str = ""
    lease_expires_at: datetime | None = None
    deleting: bool = False
    finalized: bool = False
    """Our finalizer is on the object."""


@dataclass(frozen=True)
class HeldView:
    """A job a runner of this process holds, and the instance it runs on."""

    uid: str
    instance: str
    started: bool = True
    """Its prompt began to run (False: submitted or about to be, queued behind others)."""


@dataclass(frozen=True)
class Halt:
    uid: str
    reason: HaltReason


@dataclass(frozen=True)
class Cancel:
    uid: str


@dataclass(frozen=True)
class Resume:
    uid: str
    instance: str


@dataclass(frozen=True)
class Requeue:
    uid: str
    reason: RequeueReason


@dataclass(frozen=True)
class Hold:
    uid: str
    instance: str


Intent = Halt | Cancel | Resume | Requeue | Hold


@dataclass(frozen=True)
class Recovery:
    """The intents of one dispatch, in order, and the uids left for placement."""

    intents: tuple[Intent, ...]
    queued: tuple[str, ...]


def plan_recovery(
    held: Sequence[HeldView],
    jobs: Sequence[JobLike],
    *,
    serving: Collection[str],
    draining: Collection[str] = (),
    deleted: Collection[str] = (),
    released: Collection[str] = (),
    lost: Collection[str] = (),
    busy: Collection[str] = (),
    first_dispatch: bool = False,
    pool_known: bool = True,
    now: datetime,
) -> Recovery:
    """Classify a pool's held and orphaned jobs (see the module docstring).

    ``serving``: instances that take jobs (not being deleted, Ready or Draining);
    ``draining``: those of them that are Draining.
    ``deleted``: held jobs whose DELETED event came (absent from the index for good).
    ``released``: jobs whose runner here ended with an outcome written (their stale
    Scheduled/Running facts hold nothing). ``lost``: runners that ended here without one.
    ``busy``: jobs with a cleanup or requeue write in flight. ``first_dispatch``: this
    process has not dispatched the pool before (orphans are adopted).
    """
    by_uid = {j.uid: j for j in jobs}
    intents: list[Intent] = []
    for h in held:
        job = by_uid.get(h.uid)
        if job is None:
            if h.uid in deleted:  # (not merely absent from the index for a moment)
                intents.append(Halt(h.uid, "gone"))
        elif job.deleting:
            intents.append(Halt(h.uid, "cancelled"))
        elif h.instance not in serving:
            intents.append(Halt(h.uid, "instance_lost"))
        elif h.instance in draining and not h.started:
            intents.append(Halt(h.uid, "drained"))

    holding = {h.uid for h in held}
    queued: list[str] = []
    orphans: list[JobLike] = []
    for job in jobs:
        if job.uid in holding or job.uid in busy:
            continue
        if job.deleting:
            if job.finalized:
                intents.append(Cancel(job.uid))
            continue
        if job.phase in HELD_PHASES:
            if job.uid not in released:
                orphans.append(job)
        elif job.phase == "Queued":
            queued.append(job.uid)

    leases = [scheduler.HeldJob(j.uid, j.lease_expires_at) for j in orphans]
    expired = set(scheduler.expired_leases(leases, now=now))
    for job in orphans:
        alive = job.instance in serving
        # A Scheduled job with a prompt id was queued ahead on its instance: followed too.
        if first_dispatch and alive and job.prompt_id and pool_known:
            intents.append(Resume(job.uid, job.instance))
        elif job.uid in lost:
            intents.append(Requeue(job.uid, "RunnerLost"))
        elif not alive:
            intents.append(Requeue(job.uid, "InstanceLost"))
        elif job.uid in expired:
            intents.append(Requeue(job.uid, "LeaseExpired"))
        elif first_dispatch:
            intents.append(Requeue(job.uid, "OperatorRestarted"))
        else:
            intents.append(Hold(job.uid, job.instance))
    return Recovery(tuple(intents), tuple(queued))
