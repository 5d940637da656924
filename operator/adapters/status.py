"""Writes of the ``status`` subresource: read-modify-write with conflict retries, and a
plain merge patch.

:func:`update_status` says what happened (:class:`Update`): written, nothing to write,
the object gone, or given up after too many conflicts — never one ``None`` for two.

The read-modify-writes of one object through one client take turns. A pool's status is
written by each of its instances (cool-downs, unavailable offers, failures, the models'
records): with 200 instances becoming Ready together, every writer read the same
version, all but one met a conflict, and some gave up after their 12 attempts
(``bench/scale.py``). In turns, each writer reads the version the one before wrote; a
conflict is left only for writers outside this process, or a plain patch between the
read and the write.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from warmpool.operator import errors, metrics
from warmpool.operator.adapters import kube

logger = logging.getLogger(__name__)


class Update(enum.Enum):
    """How a read-modify-write of ``status`` ended."""

    WRITTEN = "written"
    UNCHANGED = "unchanged"  # ``mutate`` had nothing to write
    GONE = "gone"  # the object does not exist (any more)
    GAVE_UP = "gave_up"  # every attempt met a conflict


@dataclass(frozen=True)
class Updated:
    """What :func:`update_status` did, and the object as last read or written."""

    outcome: Update
    obj: dict[str, Any] | None = None


#: Per client (each belongs to one event loop), a lock per object being written through
#: it; a lock goes once no writer holds or awaits it (weak values).
_turns: weakref.WeakKeyDictionary[
    object, weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock]
] = weakref.WeakKeyDictionary()


async def update_status(
    client: kube.KubeClient,
    res: kube.Resource,
    namespace: str,
    name: str,
    mutate: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None] | dict[str, Any] | None],
    *,
    attempts: int = 12,
) -> Updated:
    """Read-modify-write of ``status`` with optimistic concurrency (409 → retry).

    ``mutate`` gets the current status (a copy) and returns the fields to write, or
    None to write nothing. Giving up is logged and counted
    (``warmpool_operator_errors_continued_total{where="status_conflicts"}``). Writers of
    the same object through the same client go one at a time.
    """
    locks = _turns.setdefault(client, weakref.WeakValueDictionary())
    async with locks.setdefault((res.plural, namespace, name), asyncio.Lock()):
        for attempt in range(attempts):
            obj = await client.get(res, name, namespace)
            if obj is None:
                return Updated(Update.GONE)
            current = dict(obj.get("status") or {})
            result = mutate(current)
            if isinstance(result, Awaitable):
                result = await result
            if not result:
                return Updated(Update.UNCHANGED, obj)
            patch = {
                "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                "status": result,
            }
            try:
                written = await client.patch(res, name, namespace, patch, subresource="status")
                return Updated(Update.WRITTEN, written)
            except errors.KubeConflictError:
                # Many writers (e.g. 50 instances becoming Ready at once): spread the retries.
                await asyncio.sleep(random.uniform(0.0, 0.05 * (attempt + 1)))
                continue
            except errors.KubeNotFoundError:
                return Updated(Update.GONE)
        metrics.ERRORS_CONTINUED.labels("status_conflicts").inc()
        logger.warning("status of %s/%s: gave up after %d conflicts", namespace, name, attempts)
        return Updated(Update.GAVE_UP)


async def patch_status(
    client: kube.KubeClient, res: kube.Resource, namespace: str, name: str, status: dict[str, Any]
) -> None:
    """A plain merge patch of ``status`` (last writer wins); ignores a vanished object."""
    with contextlib.suppress(errors.KubeNotFoundError):
        await client.patch(res, name, namespace, {"status": status}, subresource="status")
