"""``Muse.status.jobs``: the operator counts each job that succeeded with a muse.

Written after the job's terminal status, as a JSON patch of the muse's status guarded by
a ``test`` of its ``resourceVersion`` (two jobs of one muse finishing together cannot
lose a count: the loser re-reads and tries again). ``status.lastJob`` names the job
counted last, so a repeated call for the same job counts nothing. Best effort: a muse
deleted meanwhile, or a patch refused three times, leaves the job as it is.
"""

from __future__ import annotations

import logging

from warmpool.crds.common import format_time
from warmpool.crds.muse import Muse
from warmpool.operator import errors
from warmpool.operator.adapters import kube
from warmpool.operator.deps import Deps

logger = logging.getLogger(__name__)
ATTEMPTS = 3


async def count_job(deps: Deps, namespace: str, muse: str, job: str) -> bool:
    """Count ``job`` on ``muse``; True when it was counted now."""
    for _ in range(ATTEMPTS):
        body = await deps.kube.get(kube.MUSES, muse, namespace)
        if body is None:
            return False
        current = Muse.from_body(body)
        if current.status.last_job == job:
            return False
        status = dict(body.get("status") or {})
        status.update(
            {"jobs": current.status.jobs + 1, "lastJob": job, "lastJobAt": format_time(deps.now())}
        )
        version = str((body.get("metadata") or {}).get("resourceVersion") or "")
        ops: list[dict[str, object]] = [{"op": "add", "path": "/status", "value": status}]
        if version:
            ops.insert(0, {"op": "test", "path": "/metadata/resourceVersion", "value": version})
        try:
            await deps.kube.patch(kube.MUSES, muse, namespace, ops, subresource="status")
            return True
        except errors.KubeError as e:
            logger.info("counting job %s on muse %s: %s; trying again", job, muse, e)
    logger.warning("could not count job %s on muse %s", job, muse)
    return False
