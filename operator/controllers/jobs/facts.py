"""What the job controllers know of the objects: facts built from bodies (Kopf index values).

Facts come from Kopf indexes kept in memory (:mod:`..handlers.jobs` registers them):
the non-terminal GenerationJobs, the GpuInstances and the GpuPools, by pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pydantic

from warmpool.crds.checkpoint import CheckpointSpec, checkpoint_of
from warmpool.crds.common import parse_duration, parse_optional_time
from warmpool.crds.generationjob import GenerationJobSpec
from warmpool.crds.gpuinstance import GpuInstance
from warmpool.crds.gpupool import JobsSpec, ModelSpec
from warmpool.operator.decisions import recovery, workflows

PoolKey = tuple[str, str]
#: Finalizer on a job while it has been placed: deleting it interrupts the prompt first.
FINALIZER = "warmpool.dev/job-running"
HELD_PHASES = recovery.HELD_PHASES
#: Instance phases whose running jobs keep going (no new job goes to Draining ones).
SERVING = ("Ready", "Draining")


@dataclass(frozen=True)
class JobFacts:
    """What placement and the runner need of a GenerationJob object."""

    namespace: str
    name: str
    uid: str
    pool: str
    phase: str
    priority: int
    created: datetime
    checkpoint: str
    """The job's ``spec.model``; empty for the pool's default (:meth:`PoolFacts.model_of`)."""
    instance: str
    prompt_id: str
    lease_expires_at: datetime | None
    attempts: int
    excluded_hosts: frozenset[int]
    excluded_gpus: frozenset[str]
    deleting: bool
    finalizers: tuple[str, ...]
    finished_at: datetime | None
    seconds: float = 0.0
    """Expected run time (the workflow estimate on the reference GPU)."""
    body: dict[str, Any] = field(compare=False, repr=False, default_factory=dict)

    @property
    def finalized(self) -> bool:
        """Our finalizer is on the object."""
        return FINALIZER in self.finalizers


@dataclass(frozen=True)
class InstanceFacts:
    """What placement and the runner need of a GpuInstance object."""

    namespace: str
    name: str
    pool: str
    phase: str
    machine_id: int | None
    gpu_name: str
    price_per_hour: float
    checkpoint: str
    comfy_url: str
    token_secret: str
    deleting: bool


@dataclass(frozen=True)
class PoolFacts:
    """The pool's job settings and the GPU models it may run on."""

    namespace: str
    name: str
    jobs: JobsSpec
    gpu_names: tuple[str, ...]
    host_cooldown: timedelta
    checkpoints: tuple[CheckpointSpec, ...] = ()
    """The template's declared checkpoints (how each is run)."""
    flux_redux: frozenset[str] = frozenset()
    """Checkpoints a Flux Redux style model names (Flux, unless declared otherwise)."""
    default_checkpoint: str = workflows.DEFAULT_CHECKPOINT
    """What a job without ``spec.model`` runs here (:func:`workflows.default_checkpoint`)."""

    def checkpoint(self, name: str | None) -> CheckpointSpec:
        """How checkpoint ``name`` (a job's ``spec.model``; None: the pool's default) is run."""
        return checkpoint_of(name or self.default_checkpoint, self.checkpoints, self.flux_redux)

    def model_of(self, job: JobFacts) -> str:
        """The checkpoint ``job`` loads on this pool (its own, else the pool's default)."""
        return job.checkpoint or self.default_checkpoint


def job_facts(body: Mapping[str, Any]) -> JobFacts:
    """A GenerationJob body as placement and the runner see it."""
    meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
    return JobFacts(
        namespace=meta.get("namespace") or "default",
        name=meta["name"],
        uid=meta.get("uid") or meta["name"],
        pool=spec.get("pool", ""),
        phase=status.get("phase") or "Queued",
        priority=int(spec.get("priority") or 0),
        created=parse_optional_time(status.get("queuedAt") or meta.get("creationTimestamp"))
        or datetime.min,
        checkpoint=spec.get("model") or "",
        instance=status.get("instance") or "",
        prompt_id=status.get("promptId") or "",
        lease_expires_at=parse_optional_time(status.get("leaseExpiresAt")),
        attempts=int(status.get("attempts") or 0),
        excluded_hosts=frozenset(int(h) for h in status.get("excludedHosts") or []),
        excluded_gpus=frozenset(status.get("excludedGpus") or []),
        deleting=bool(meta.get("deletionTimestamp")),
        finalizers=tuple(meta.get("finalizers") or ()),
        finished_at=parse_optional_time(status.get("finishedAt")),
        seconds=cached_job_seconds(meta.get("uid") or meta["name"], meta.get("generation"), spec),
        body=dict(body),
    )


#: Seconds assumed for a job whose spec cannot be estimated (the CRD schema admits
#: nothing the estimate refuses; this is for objects written around it).
UNKNOWN_JOB_SECONDS = 60.0


#: Estimates by (uid, generation): a spec changes only with its generation, and every
#: status write of a job brings its body back through the index (one parse per spec).
_SECONDS: dict[tuple[str, int], float] = {}
_SECONDS_KEPT = 20_000


def cached_job_seconds(uid: str, generation: int | None, spec: Mapping[str, Any]) -> float:
    """:func:`job_seconds`, computed once per (uid, generation)."""
    if generation is None:
        return job_seconds(spec)
    key = (uid, generation)
    found = _SECONDS.get(key)
    if found is None:
        if len(_SECONDS) >= _SECONDS_KEPT:
            del _SECONDS[next(iter(_SECONDS))]  # the oldest (dicts keep insertion order)
        found = _SECONDS[key] = job_seconds(spec)
    return found


def job_seconds(spec: Mapping[str, Any]) -> float:
    """Expected run time of a job spec on the reference GPU (:func:`workflows.estimate`)."""
    try:
        parsed = GenerationJobSpec.model_validate(spec)
        return workflows.estimate(parsed, price_per_hour=0.0).seconds
    except (pydantic.ValidationError, KeyError, ValueError):
        return UNKNOWN_JOB_SECONDS


def instance_facts(body: Mapping[str, Any]) -> InstanceFacts | None:
    """A GpuInstance body as placement and the runner see it, parsed by the one model
    (:class:`GpuInstance`); None for a body the model refuses (the API server's schema
    refuses it too: such an object can hold no job)."""
    try:
        inst = GpuInstance.from_body(body)
    except pydantic.ValidationError:
        return None
    s, offer = inst.status, inst.spec.offer
    return InstanceFacts(
        namespace=inst.metadata.namespace or "default",
        name=inst.metadata.name,
        pool=inst.spec.pool,
        phase=s.phase,
        machine_id=s.machine_id
        if s.machine_id is not None
        else (offer.machine_id if offer else None),
        gpu_name=s.gpu_name or (offer.gpu_name if offer else ""),
        price_per_hour=s.price_per_hour or (offer.price_per_hour if offer else 0.0),
        checkpoint=s.checkpoint,
        comfy_url=s.comfy_url,
        token_secret=s.token_secret,
        deleting=bool(inst.metadata.deletion_timestamp),
    )


def pool_facts(body: Mapping[str, Any]) -> PoolFacts:
    """A GpuPool body's job settings."""
    meta, spec = body["metadata"], body.get("spec") or {}
    template = spec.get("template") or {}
    checkpoints = tuple(CheckpointSpec.model_validate(c) for c in template.get("checkpoints") or ())
    models = [ModelSpec.model_validate(m) for m in template.get("models") or ()]
    return PoolFacts(
        namespace=meta.get("namespace") or "default",
        name=meta["name"],
        jobs=JobsSpec.model_validate(spec.get("jobs") or {}),
        gpu_names=tuple((spec.get("offer") or {}).get("gpuNames") or ()),
        host_cooldown=parse_duration((spec.get("failurePolicy") or {}).get("hostCooldown") or "1h"),
        checkpoints=checkpoints,
        flux_redux=frozenset(
            c for style in template.get("styleModels") or () for c in style.get("checkpoints") or ()
        ),
        default_checkpoint=workflows.default_checkpoint(checkpoints, models),
    )


def lease_end(now: datetime, pool: PoolFacts) -> datetime:
    """When a lease taken ``now`` on a job of ``pool`` runs out."""
    return now + timedelta(seconds=pool.jobs.lease_seconds)
