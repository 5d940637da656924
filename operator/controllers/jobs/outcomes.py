"""What happened to a job, written: status writes in order, requeues, cancellations,
the finalizer, host failures.

:class:`JobWriter` is the runner's chokepoint for one job's writes; the functions are
for jobs no runner here holds (left by a previous process, deleted before they ran)
and for what follows an outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from warmpool.crds.common import format_time
from warmpool.crds.generationjob import GenerationJobStatus, Progress
from warmpool.operator import errors
from warmpool.operator.adapters import kube
from warmpool.operator.controllers import failures
from warmpool.operator.controllers.jobs.facts import FINALIZER, JobFacts, PoolFacts

logger = logging.getLogger(__name__)


def status_patch(status: GenerationJobStatus) -> dict[str, Any]:
    """The fields set on ``status`` as a merge patch (camelCase; None clears a field)."""
    return status.model_dump(mode="json", by_alias=True, exclude_unset=True)


def requeued(
    reason: str,
    message: str,
    *,
    excluded_hosts: Iterable[int] = (),
    excluded_gpus: Iterable[str] = (),
) -> dict[str, Any]:
    """The status of a job sent back to the queue (the one place it is written)."""
    return status_patch(GenerationJobStatus(
        phase="Queued", reason=reason, message=message[:1000], instance="", prompt_id="",
        lease_expires_at=None, started_at=None, progress=Progress(value=0, max=0, percent=0),
        excluded_hosts=sorted(excluded_hosts), excluded_gpus=sorted(excluded_gpus),
    ))  # fmt: skip


class JobWriter:
    """The status writes of one job, in order, and its finalizer."""

    def __init__(
        self, client: kube.KubeClient, job: JobFacts, *, monotonic: Callable[[], float]
    ) -> None:
        self.client, self.job, self.monotonic = client, job, monotonic
        self.finalizers = list(job.finalizers)
        self.chain: asyncio.Task[bool] | None = None  # status writes, in order
        self.last_write = 0.0

    async def write(self, status: dict[str, Any]) -> bool:
        """A merge patch of the job's status; False when the job is gone.

        Transient API failures are retried a few times (a lost outcome would leave the
        job Scheduled until its lease expires)."""
        self.last_write = self.monotonic()
        for delay in (0.2, 0.5, 1.0, None):
            try:
                await self.client.patch(kube.GENERATIONJOBS, self.job.name, self.job.namespace,
                                        {"status": status}, subresource="status")  # fmt: skip
                return True
            except errors.KubeNotFoundError:
                return False
            except errors.KubeUnavailableError:
                if delay is None:
                    raise
                await asyncio.sleep(delay)
        return True

    def enqueue(self, status: dict[str, Any]) -> None:
        """Write soon, after the writes already queued (the caller does not wait)."""
        previous = self.chain
        self.last_write = self.monotonic()

        async def step() -> bool:
            if previous is not None:
                try:
                    if not await previous:
                        return False  # the job is gone
                except errors.KubeError:
                    pass  # logged by flush(); later writes still go
            return await self.write(status)

        self.chain = asyncio.create_task(step())

    async def flush(self) -> bool:
        """Wait for the queued writes; False when the job turned out to be gone."""
        if self.chain is None:
            return True
        try:
            return await self.chain
        except errors.KubeError as exc:
            job = self.job
            logger.warning("job %s/%s: a status write failed: %s", job.namespace, job.name, exc)
            return True

    async def add_finalizer(self) -> bool:
        """Our finalizer on the job (deleting it interrupts the prompt); False if gone."""
        if FINALIZER in self.finalizers:
            return True
        ops: list[dict[str, Any]] = (
            [{"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}]
            if self.finalizers
            else [{"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}]
        )
        try:
            await self.client.patch(kube.GENERATIONJOBS, self.job.name, self.job.namespace, ops)
        except errors.KubeNotFoundError:
            return False
        self.finalizers.append(FINALIZER)
        return True


async def requeue_orphan(client: kube.KubeClient, job: JobFacts, why: str) -> bool:
    """A job Scheduled/Running with no runner here (lease expired, instance gone,
    operator restarted before it ran): back to the queue.

    Only from the version the decision saw (``metadata.resourceVersion`` in the patch: a
    409 otherwise): facts a moment old — a peer finished the job meanwhile, or renewed
    its lease — never send a job that moved on back to the queue; its event brings the
    next dispatch the new facts. True when it was written."""
    status = requeued(why, f"requeued: {why}", excluded_hosts=job.excluded_hosts,
                      excluded_gpus=job.excluded_gpus)  # fmt: skip
    body: dict[str, Any] = {"status": status}
    version = (job.body.get("metadata") or {}).get("resourceVersion")
    if version:
        body["metadata"] = {"resourceVersion": version}
    try:
        await client.patch(kube.GENERATIONJOBS, job.name, job.namespace, body,
                           subresource="status")  # fmt: skip
    except errors.KubeNotFoundError:
        return False
    except errors.KubeConflictError:
        logger.info("job %s/%s: not requeued (%s): it changed since", job.namespace, job.name,
                    why)  # fmt: skip
        return False
    logger.info("job %s/%s: requeued (%s)", job.namespace, job.name, why)
    return True


async def cancel_unplaced(client: kube.KubeClient, job: JobFacts, *, now: datetime) -> None:
    """A job being deleted that no runner here holds: Cancelled, finalizer removed."""
    if job.phase not in ("Succeeded", "Failed", "Cancelled"):
        status = status_patch(GenerationJobStatus(
            phase="Cancelled", reason="Deleted", message="deleted before it ran",
            finished_at=format_time(now),
        ))  # fmt: skip
        with contextlib.suppress(errors.KubeNotFoundError):
            await client.patch(kube.GENERATIONJOBS, job.name, job.namespace, {"status": status},
                               subresource="status")  # fmt: skip
    await remove_finalizer(client, job, list(job.finalizers))


async def remove_finalizer(client: kube.KubeClient, job: JobFacts, finalizers: list[str]) -> None:
    """Drop our finalizer (a JSON patch guarded by ``test``; re-read on a mismatch)."""
    for _ in range(3):
        if FINALIZER not in finalizers:
            return
        index = finalizers.index(FINALIZER)
        ops = [
            {"op": "test", "path": f"/metadata/finalizers/{index}", "value": FINALIZER},
            {"op": "remove", "path": f"/metadata/finalizers/{index}"},
        ]
        try:
            await client.patch(kube.GENERATIONJOBS, job.name, job.namespace, ops)
            return
        except errors.KubeNotFoundError:
            return
        except errors.KubeError:
            body = await client.get(kube.GENERATIONJOBS, job.name, job.namespace)
            if body is None:
                return
            finalizers = list(body["metadata"].get("finalizers") or [])


async def record_host_failure(
    client: kube.KubeClient,
    pool: PoolFacts,
    machine: int | None,
    reason: str,
    message: str,
    *,
    now: datetime,
) -> None:
    """The host goes into the pool's failure ledger (it is not rented again for a while)."""
    try:
        await failures.record_failure(client, pool.namespace, pool.name, machine_id=machine,
                                      reason=reason, message=message, cooldown=pool.host_cooldown,
                                      now=now)  # fmt: skip
    except errors.KubeError as exc:  # the job's outcome matters more: it is still written
        logger.warning("pool %s/%s: could not record host %s failing: %s", pool.namespace,
                       pool.name, machine, exc)  # fmt: skip
