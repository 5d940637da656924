"""GenerationJob handlers: Kopf indexes and events feeding the dispatcher.

Three in-memory indexes, by (namespace, pool): the non-terminal GenerationJobs,
the GpuInstances and the GpuPools (:mod:`..controllers.jobs.facts` turns bodies
into facts).
Kopf fills every index from the initial listing before it calls any other handler,
so the first ``on.event`` call opens the dispatcher's gate with complete facts.
Every event of a job, an instance or a pool wakes that pool's dispatcher; the
placement itself, the runners and the ledger live in :mod:`..controllers.jobs`.
No Kopf changing handler is registered for jobs, so Kopf writes nothing on them
(no finalizer, no annotations): the only writes are the runner's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import kopf

from warmpool.crds.common import parse_optional_time
from warmpool.crds.generationjob import TERMINAL_PHASES
from warmpool.operator.controllers.jobs import facts
from warmpool.operator.controllers.jobs.loops import dispatcher
from warmpool.operator.deps import Deps, cancel_tasks
from warmpool.operator.handlers.registry import (
    GENERATIONJOBS,
    GPUINSTANCES,
    GPUPOOLS,
    registry,
)
from warmpool.operator.handlers.shard import in_shard


@kopf.on.startup(registry=registry, id="jobs-startup")
async def on_startup_jobs(memo: Deps, **kwargs: Any) -> None:
    """Create the dispatcher and keep references to the (still empty) indexes."""
    dispatcher(memo).bind(kwargs)


@kopf.on.cleanup(registry=registry, id="jobs-cleanup")
async def on_cleanup_jobs(memo: Deps, **_: Any) -> None:
    """Stop the job runners (their jobs keep their leases), then close the per-instance
    ComfyUI HTTP clients."""
    await cancel_tasks(memo)
    await memo.comfy.aclose()


@kopf.index(*GENERATIONJOBS, registry=registry, id="warmpool_jobs")
async def warmpool_jobs(body: kopf.Body, **_: Any) -> dict[facts.PoolKey, facts.JobFacts]:
    """Non-terminal jobs by (namespace, pool)."""
    phase = (body.get("status") or {}).get("phase") or "Queued"
    if phase in TERMINAL_PHASES:
        return {}  # drops the object from the index (None would keep its last value)
    job = facts.job_facts(body)
    return {(job.namespace, job.pool): job}


@kopf.index(*GENERATIONJOBS, registry=registry, id="warmpool_job_arrivals")
async def warmpool_job_arrivals(body: kopf.Body, **_: Any) -> dict[facts.PoolKey, datetime]:
    """When every job (finished ones too) was submitted, by (namespace, pool): the
    warm-up's arrivals without listing every job on every pool reconcile."""
    created = parse_optional_time(body.metadata.get("creationTimestamp"))
    if created is None:
        return {}
    pool = (body.get("spec") or {}).get("pool", "")
    return {(body.metadata.namespace or "default", pool): created}


@kopf.index(*GPUINSTANCES, registry=registry, id="warmpool_instances", when=in_shard)
async def warmpool_instances(body: kopf.Body, **_: Any) -> dict[facts.PoolKey, facts.InstanceFacts]:
    """Every GpuInstance by (namespace, pool)."""
    inst = facts.instance_facts(body)
    return {} if inst is None else {(inst.namespace, inst.pool): inst}


@kopf.index(*GPUPOOLS, registry=registry, id="warmpool_pools", when=in_shard)
async def warmpool_pools(body: kopf.Body, **_: Any) -> dict[facts.PoolKey, facts.PoolFacts]:
    """Every GpuPool's job settings by (namespace, name)."""
    pool = facts.pool_facts(body)
    return {(pool.namespace, pool.name): pool}


@kopf.on.event(*GENERATIONJOBS, registry=registry, id="job-event")
async def on_event_job(
    body: kopf.Body, type: str | None, memo: Deps, **kwargs: Any
) -> None:  # fmt: skip
    """A job appeared, changed or went away: its pool dispatches now."""
    d = dispatcher(memo)
    d.bind(kwargs)
    d.open()
    d.job_event(body, type or "")


@kopf.on.event(*GPUINSTANCES, registry=registry, id="instance-event", when=in_shard)
async def on_event_instance(body: kopf.Body, memo: Deps, **kwargs: Any) -> None:
    """An instance became Ready (or went away): its pool dispatches now."""
    d = dispatcher(memo)
    d.bind(kwargs)
    d.open()
    d.wake((body.metadata.namespace or "default", body.spec.get("pool", "")))


@kopf.on.event(*GPUPOOLS, registry=registry, id="pool-event", when=in_shard)
async def on_event_pool(body: kopf.Body, memo: Deps, **kwargs: Any) -> None:
    """A pool's job settings may have changed (concurrency, attempts)."""
    d = dispatcher(memo)
    d.bind(kwargs)
    d.open()
    d.wake((body.metadata.namespace or "default", body.metadata.name or ""))
