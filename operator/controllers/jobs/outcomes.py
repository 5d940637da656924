"""What happened to a job, written: requeues, cancellations, the finalizer, host failures.

For jobs no runner here holds (left by a previous process, deleted before they ran) and
for the runner's outcomes.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from warmpool.crds.common import format_time
from warmpool.operator import errors
from warmpool.operator.adapters import kube
from warmpool.operator.controllers import failures
from warmpool.operator.controllers.jobs.facts import FINALIZER, JobFacts, PoolFacts

if TYPE_CHECKING:
    from warmpool.operator.controllers.jobs.loops import Dispatcher

logger = logging.getLogger(__name__)


async def requeue_orphan(d: Dispatcher, job: JobFacts, why: str) -> None:
    """A job Scheduled/Running with no runner here (lease expired, instance gone,
    operator restarted before it ran): back to the queue."""
    logger.info("job %s/%s: requeued (%s)", job.namespace, job.name, why)
    with contextlib.suppress(errors.KubeNotFoundError):
        await d.deps.kube.patch(kube.GENERATIONJOBS, job.name, job.namespace, {"status": {
            "phase": "Queued", "reason": why, "message": f"requeued: {why}",
            "instance": "", "promptId": "", "leaseExpiresAt": None, "startedAt": None,
        }}, subresource="status")  # fmt: skip
    d.released.add(job.uid)


async def cancel_unplaced(d: Dispatcher, job: JobFacts) -> None:
    """A job being deleted that no runner here holds: Cancelled, finalizer removed."""
    if job.phase not in ("Succeeded", "Failed", "Cancelled"):
        with contextlib.suppress(errors.KubeNotFoundError):
            await d.deps.kube.patch(kube.GENERATIONJOBS, job.name, job.namespace, {"status": {
                "phase": "Cancelled", "reason": "Deleted", "message": "deleted before it ran",
                "finishedAt": format_time(d.deps.now()),
            }}, subresource="status")  # fmt: skip
    await remove_finalizer(d, job, list(job.finalizers))


async def remove_finalizer(d: Dispatcher, job: JobFacts, finalizers: list[str]) -> None:
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
            await d.deps.kube.patch(kube.GENERATIONJOBS, job.name, job.namespace, ops)
            return
        except errors.KubeNotFoundError:
            return
        except errors.KubeError:
            body = await d.deps.kube.get(kube.GENERATIONJOBS, job.name, job.namespace)
            if body is None:
                return
            finalizers = list(body["metadata"].get("finalizers") or [])


async def record_host_failure(
    d: Dispatcher, pool: PoolFacts, machine: int | None, reason: str, message: str
) -> None:
    """The host goes into the pool's failure ledger (it is not rented again for a while)."""
    with contextlib.suppress(errors.KubeError):
        await failures.record_failure(d.deps.kube, pool.namespace, pool.name, machine_id=machine,
                                      reason=reason, message=message, cooldown=pool.host_cooldown,
                                      now=d.deps.now())  # fmt: skip
