"""Writes of the ``status`` subresource: read-modify-write with conflict retries, and a
plain merge patch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from warmpool.operator import errors
from warmpool.operator.adapters import kube

logger = logging.getLogger(__name__)


async def update_status(
    client: kube.KubeClient,
    res: kube.Resource,
    namespace: str,
    name: str,
    mutate: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None] | dict[str, Any] | None],
    *,
    attempts: int = 12,
) -> dict[str, Any] | None:
    """Read-modify-write of ``status`` with optimistic concurrency (409 → retry).

    ``mutate`` gets the current status (a copy) and returns the fields to write, or
    None to write nothing. Returns the object after the write, None if it is gone.
    """
    for attempt in range(attempts):
        obj = await client.get(res, name, namespace)
        if obj is None:
            return None
        current = dict(obj.get("status") or {})
        result = mutate(current)
        if isinstance(result, Awaitable):
            result = await result
        if not result:
            return obj
        patch = {
            "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
            "status": result,
        }
        try:
            written: dict[str, Any] = await client.patch(
                res, name, namespace, patch, subresource="status"
            )
            return written
        except errors.KubeConflictError:
            # Many writers (e.g. 50 instances becoming Ready at once): spread the retries.
            await asyncio.sleep(random.uniform(0.0, 0.05 * (attempt + 1)))
            continue
        except errors.KubeNotFoundError:
            return None
    logger.warning("status of %s/%s: gave up after %d conflicts", namespace, name, attempts)
    return None


async def patch_status(
    client: kube.KubeClient, res: kube.Resource, namespace: str, name: str, status: dict[str, Any]
) -> None:
    """A plain merge patch of ``status`` (last writer wins); ignores a vanished object."""
    with contextlib.suppress(errors.KubeNotFoundError):
        await client.patch(res, name, namespace, {"status": status}, subresource="status")
