"""Job placement: which queued job runs on which ready instance, and what a failure means.

Pure: no I/O, no clock reads. The dispatcher (``controllers/jobs/loops.py``) gathers the
facts — queued jobs, the pool's ready instances with their free slots — and applies
what these functions return.

Placement rules (:func:`plan_placement`):

1. Jobs go in order: higher ``priority`` first, then older (``queued_at``), then the
   order the operator first saw them (``seq``), then the name.
2. A job may run on an instance with a free slot (``concurrencyPerInstance`` minus
   the jobs it holds) whose machine is not in the job's ``excluded_hosts`` and whose
   GPU model is not in its ``excluded_gpus``.
3. Among those, a job avoids an instance that a later job (one that could be placed
   in the same round) can use *only*: affinity never makes another job wait. Then it
   prefers an instance with its checkpoint already loaded (model affinity), then one
   whose loaded checkpoint no other waiting job wants, then the emptiest, then the name.
4. Because jobs are taken in priority order, a lower-priority job only ever gets a
   slot no higher-priority job could use: affinity never makes a higher-priority job
   wait for a lower one.
5. Queue-ahead: an instance may also take ``ahead`` jobs beyond its free slots; they are
   queued in its ComfyUI behind the running prompt (ComfyUI runs its queue in order), so
   the GPU never waits for the operator between two jobs. A job takes such a place only
   when no instance it may run on has a free slot; among them it prefers its checkpoint
   already loaded (or going to be), then the most places left, then the name. Once no
   slot and no place is left, every further job waits.

A job that cannot be placed now waits; :attr:`Placement.waiting` is the pool's
scale-up demand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal


@dataclass(frozen=True)
class QueuedJob:
    """A job waiting for a slot."""

    name: str
    queued_at: datetime
    priority: int = 0
    seq: int = 0
    checkpoint: str = ""
    excluded_hosts: frozenset[int] = frozenset()
    excluded_gpus: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SlotView:
    """A Ready instance as placement sees it. ``free`` = concurrency − jobs it holds."""

    name: str
    free: int
    checkpoint: str = ""
    machine_id: int | None = None
    gpu_name: str = ""
    ahead: int = 0
    """Places behind the running prompts (queue-ahead), used when no slot is free."""


@dataclass(frozen=True)
class Assignment:
    """Run ``job`` on ``instance``; ``affinity`` when its checkpoint is already loaded."""

    job: str
    instance: str
    affinity: bool = False
    behind: bool = False
    """Queued behind the instance's running prompt (a queue-ahead place)."""


@dataclass(frozen=True)
class Placement:
    """What :func:`plan_placement` decided: assignments, and the jobs left waiting."""

    assignments: tuple[Assignment, ...] = ()
    waiting: tuple[str, ...] = ()


def job_order(job: QueuedJob) -> tuple[int, datetime, int, str]:
    """Sort key: priority (high first), then age, then first seen, then name."""
    return (-job.priority, job.queued_at, job.seq, job.name)


def free_slots(concurrency: int, held: int) -> int:
    """Slots left on an instance running ``held`` jobs (never negative)."""
    return max(concurrency - held, 0)


def may_run_on(job: QueuedJob, slot: SlotView) -> bool:
    """Whether the instance is allowed for the job (its exclusions), free slots aside."""
    if slot.machine_id is not None and slot.machine_id in job.excluded_hosts:
        return False
    return not (slot.gpu_name and slot.gpu_name in job.excluded_gpus)


def plan_placement(jobs: Sequence[QueuedJob], instances: Sequence[SlotView]) -> Placement:
    """Assign queued jobs to free slots (see the module docstring for the rules)."""
    ordered = sorted(jobs, key=job_order)
    free = {s.name: s.free for s in instances if s.free > 0}
    ahead = {s.name: s.ahead for s in instances if s.ahead > 0}
    slots = {s.name: s for s in instances}
    # Loaded checkpoints still wanted by waiting jobs (decremented as jobs are placed).
    wanted = Counter(j.checkpoint for j in ordered if j.checkpoint)
    assignments: list[Assignment] = []
    waiting: list[str] = []
    for index, job in enumerate(ordered):
        if not any(free.values()) and not any(ahead.values()):
            waiting.extend(j.name for j in ordered[index:])
            break
        if job.checkpoint:
            wanted[job.checkpoint] -= 1
        candidates = [slots[n] for n, f in free.items() if f > 0 and may_run_on(job, slots[n])]
        if not candidates:
            behind = [slots[n] for n, a in ahead.items() if a > 0 and may_run_on(job, slots[n])]
            if not behind:
                waiting.append(job.name)
                continue

            def behind_score(s: SlotView, job: QueuedJob = job) -> tuple[bool, int, str]:
                affine = bool(job.checkpoint) and s.checkpoint == job.checkpoint
                return (not affine, -ahead[s.name], s.name)

            place = min(behind, key=behind_score)
            ahead[place.name] -= 1
            affine = bool(job.checkpoint) and place.checkpoint == job.checkpoint
            assignments.append(Assignment(job.name, place.name, affine, behind=True))
            if job.checkpoint:
                slots[place.name] = replace(place, checkpoint=job.checkpoint)
            continue
        capacity = sum(free.values())
        upcoming = ordered[index + 1 : index + capacity]
        needs = _sole_needs(upcoming, [slots[n] for n, f in free.items() if f > 0])

        def score(
            s: SlotView, job: QueuedJob = job, needs: Counter[str] = needs
        ) -> tuple[bool, bool, int, int, str]:
            starves = free[s.name] - 1 < needs.get(s.name, 0)
            affine = bool(job.checkpoint) and s.checkpoint == job.checkpoint
            evicts = wanted.get(s.checkpoint, 0) if s.checkpoint and not affine else 0
            return (starves, not affine, evicts, -free[s.name], s.name)

        best = min(candidates, key=score)
        free[best.name] -= 1
        affine = bool(job.checkpoint) and best.checkpoint == job.checkpoint
        assignments.append(Assignment(job.name, best.name, affine))
        if job.checkpoint:
            slots[best.name] = replace(best, checkpoint=job.checkpoint)
    return Placement(tuple(assignments), tuple(waiting))


def _sole_needs(upcoming: Sequence[QueuedJob], open_slots: Sequence[SlotView]) -> Counter[str]:
    """How many of the upcoming jobs can use only one instance, by that instance."""
    needs: Counter[str] = Counter()
    for job in upcoming:
        allowed = [s.name for s in open_slots if may_run_on(job, s)]
        if len(allowed) == 1:
            needs[allowed[0]] += 1
    return needs


# ---------------------------------------------------------------- counts


@dataclass(frozen=True)
class JobCounts:
    """A pool's jobs as its reconcile needs them."""

    queued: int = 0
    running: int = 0
    """Placed (Scheduled) or Running."""
    queued_seconds: float = 0.0
    """Expected run time of the queued jobs, summed (``controllers/jobs/facts.job_seconds``)."""


# ---------------------------------------------------------------- leases


@dataclass(frozen=True)
class HeldJob:
    """A Scheduled or Running job and the end of its lease (None: no lease recorded)."""

    name: str
    lease_expires_at: datetime | None


def expired_leases(held: Sequence[HeldJob], *, now: datetime) -> list[str]:
    """Jobs whose lease ran out (or was never written): their slot is free, they requeue."""
    return [h.name for h in held if h.lease_expires_at is None or h.lease_expires_at <= now]


# ---------------------------------------------------------------- failures

FailureKind = Literal[
    "validation",  # ComfyUI refused the graph
    "execution",  # a node raised (not out of memory)
    "host_fault",  # a node raised because of the machine (disk full, I/O or CUDA fault)
    "oom",  # out of GPU memory
    "timeout",  # spec.timeout passed
    "stalled",  # no progress for stallTimeout
    "bad_output",  # empty, undecodable or flat-colour output
    "instance_lost",  # the instance went away, or ComfyUI stopped answering / crashed
    "interrupted",  # interrupted on ComfyUI by someone else
    "store_unavailable",  # the artifact store refused the outputs
    "too_large",  # the machine answered more bytes than accepted (a hostile host)
    "queue_wait",  # the prompt did not begin within its bound on ComfyUI's queue
]


@dataclass(frozen=True)
class Verdict:
    """What to do with a job after a failed attempt."""

    requeue: bool
    reason: str
    exclude_host: bool = False
    exclude_gpu: bool = False
    record_host: bool = False


_REASONS: dict[str, str] = {
    "validation": "InvalidGraph",
    "execution": "ExecutionFailed",
    "host_fault": "HostFault",
    "oom": "OutOfMemory",
    "timeout": "Timeout",
    "stalled": "Stalled",
    "bad_output": "BadOutput",
    "instance_lost": "InstanceLost",
    "interrupted": "Interrupted",
    "store_unavailable": "ArtifactStoreUnavailable",
    "too_large": "MachineAnswerTooLarge",
    "queue_wait": "QueueWaitExceeded",
}


def decide_failure(
    kind: FailureKind,
    *,
    attempts: int,
    max_attempts: int,
    gpu_name: str = "",
    pool_gpus: Collection[str] = (),
    excluded_gpus: Collection[str] = (),
) -> Verdict:
    """Requeue or fail after an attempt that did not succeed.

    ``attempts`` counts the attempts made so far, this one included.

    - an invalid graph, a failing node and a timeout fail at once (retrying the same
      graph elsewhere would fail the same way, or run past the deadline again);
    - out of memory: retried on another GPU model when the pool has one the job has
      not run out of memory on (``pool_gpus``: the models of its instances and its
      offer filter), and never again on this model; otherwise it fails;
    - a stall, a bad output, a host fault (a node failed because of the machine: see
      :func:`execution_failure`) or an answer past its byte cap is retried on another
      machine, and recorded against the host in the pool's failure ledger (it cools down);
    - a lost instance or crashed ComfyUI is retried on another machine;
    - an interruption nobody here asked for, an artifact store that refused the
      outputs, or a prompt that waited past its bound in ComfyUI's queue without beginning
      (the prompts ahead ran long: not the machine's fault) is retried (anywhere).

    Every retry is bounded by ``max_attempts``; past it the job fails with the reason
    of the last attempt.
    """
    reason = _REASONS[kind]
    left = attempts < max_attempts
    if kind in ("validation", "execution", "timeout"):
        return Verdict(False, reason)
    if kind == "oom":
        others = set(pool_gpus) - set(excluded_gpus) - {gpu_name}
        return Verdict(left and bool(others), reason, exclude_gpu=True)
    if kind in ("stalled", "bad_output", "host_fault", "too_large"):
        return Verdict(left, reason, exclude_host=True, record_host=True)
    if kind == "instance_lost":
        return Verdict(left, reason, exclude_host=True)
    return Verdict(left, reason)


#: Errors a node raises because of the machine it runs on, not the job: the disk full
#: (``OSError`` errno 28), a failing or read-only disk (errno 5, 30), a CUDA or driver
#: fault (out of memory is :class:`ComfyOutOfMemoryError`'s, decided apart). Lower case.
HOST_FAULTS = (
    "no space left on device",
    "[errno 28]",
    "input/output error",
    "[errno 5]",
    "read-only file system",
    "[errno 30]",
    "cuda error",
    "cudnn_status_internal_error",
    "uncorrectable ecc error",
)


def execution_failure(exception_type: str, message: str) -> FailureKind:
    """``host_fault`` when a node's error is the machine's (:data:`HOST_FAULTS`), else
    ``execution`` (the job's: the same graph fails the same way anywhere)."""
    text = f"{exception_type} {message}".lower()
    return "host_fault" if any(p in text for p in HOST_FAULTS) else "execution"
