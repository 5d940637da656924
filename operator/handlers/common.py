"""Small helpers shared by the handler modules: time, labels, status writes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import kopf

from warmpool.crds.common import API_VERSION, POOL_LABEL
from warmpool.operator import errors
from warmpool.operator.adapters import kube

logger = logging.getLogger(__name__)

#: Vast.ai label of a rental: warmpool.<namespace>.<pool>.<GpuInstance uid>.
LABEL_ROOT = "warmpool"


def rental_label(namespace: str, pool: str, uid: str) -> str:
    """The idempotency label of the rental behind a GpuInstance."""
    return f"{LABEL_ROOT}.{namespace}.{pool}.{uid}"


def uid_of_label(label: str | None) -> str | None:
    """The GpuInstance uid in a rental label, None when it is not one of ours."""
    if not label or not label.startswith(f"{LABEL_ROOT}."):
        return None
    parts = label.split(".")
    return parts[-1] if len(parts) >= 4 else None


def iso(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, as Kubernetes writes times."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> datetime | None:
    """The inverse of :func:`iso` (tolerates Kubernetes' second-precision form)."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def owner_reference(body: Any, *, controller: bool = True) -> dict[str, Any]:
    """An owner reference to ``body`` (cascading deletion)."""
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "name": body["metadata"]["name"],
        "uid": body["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def event(kind: str, meta: Any, reason: str, message: str, *, warning: bool = False) -> None:
    """A Kubernetes Event with a stable reason on a warmpool object (posted by Kopf)."""
    body = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid},
    }
    post = kopf.warn if warning else kopf.info
    post(cast(kopf.Body, body), reason=reason, message=message[:1000])


def pool_selector(pool: str) -> str:
    """The label selector of a pool's GpuInstances (also its scale selector)."""
    return f"{POOL_LABEL}={pool}"


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


def merge_conditions(
    existing: list[dict[str, Any]],
    updates: list[tuple[str, str, str, str]],
    *,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """Conditions after ``updates`` (type, status, reason, message).

    ``lastTransitionTime`` moves only when a condition's status changes.
    """
    by_type = {c.get("type"): dict(c) for c in existing}
    for ctype, status, reason, message in updates:
        old = by_type.get(ctype)
        changed = old is None or old.get("status") != status
        by_type[ctype] = {
            "type": ctype,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": iso(now)
            if changed
            else old.get("lastTransitionTime")
            if old
            else iso(now),
            "observedGeneration": generation,
        }
    return list(by_type.values())
