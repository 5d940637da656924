"""Facts cached from watch events, so that per-interval work does not read what nothing
changed:

- the pools as parsed models (every instance's step needs its pool's spec): one parse per
  change of a pool, instead of one read and one parse per instance per interval;
- a mark per pool that moves whenever one of its GpuInstances changes in a way the pool's
  reconcile can see (a write that only moves clock fields, ``lastProbe.time`` or ``cost``,
  does not count): the reconcile lists the pool's instances again only when the mark
  moved since its last listing, when it acted on them itself, or when the listing is older
  than the status refresh (:func:`listing`).

Filled by Kopf ``on.event`` handlers (:mod:`warmpool.operator.handlers.pools` and
:mod:`~warmpool.operator.handlers.instances`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic

from warmpool.crds.common import POOL_LABEL
from warmpool.crds.gpupool import GpuPool
from warmpool.operator.deps import Deps, Listing

__all__ = ["Listing", "drop_listing", "instance_mark", "keep_listing", "listing",
           "observe_instance", "observe_pool", "significant"]  # fmt: skip

#: Status fields of a GpuInstance that move with the clock alone: the pool reads neither,
#: and the instance writes them at most every ``status_refresh`` seconds when nothing else
#: changed (:func:`liveness.unchanged`).
CLOCK_FIELDS = frozenset({"lastProbe", "cost"})
#: Metadata that every write moves.
VOLATILE_METADATA = frozenset({"resourceVersion", "managedFields", "generation"})


def observe_pool(deps: Deps, body: Mapping[str, Any], *, deleted: bool) -> None:
    """A pool's watch event: keep its parsed model (or forget it when deleted or invalid)."""
    meta = body.get("metadata") or {}
    key = (meta.get("namespace") or "default", meta.get("name") or "")
    if deleted or meta.get("deletionTimestamp"):
        deps.pool_models.pop(key, None)
        return
    try:
        deps.pool_models[key] = GpuPool.from_body(dict(body))
    except pydantic.ValidationError:
        deps.pool_models.pop(key, None)


def significant(body: Mapping[str, Any]) -> dict[str, Any]:
    """What of a GpuInstance the pool's reconcile can see: all but the fields every write
    or the clock alone moves (``lastProbe`` keeps its verdict, loses its time)."""
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k not in VOLATILE_METADATA}
    raw = body.get("status") or {}
    status = {k: v for k, v in raw.items() if k not in CLOCK_FIELDS}
    status["lastProbe"] = {k: v for k, v in (raw.get("lastProbe") or {}).items() if k != "time"}
    return {"metadata": meta, "spec": body.get("spec"), "status": status}


def pool_of(body: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, pool) of a GpuInstance."""
    meta = body.get("metadata") or {}
    pool = (body.get("spec") or {}).get("pool") or (meta.get("labels") or {}).get(POOL_LABEL)
    return meta.get("namespace") or "default", str(pool or "")


def observe_instance(deps: Deps, body: Mapping[str, Any], *, deleted: bool) -> None:
    """An instance's watch event: its pool's mark moves unless nothing but the clock
    fields changed since the last event of this instance."""
    meta = body.get("metadata") or {}
    ns, pool = pool_of(body)
    key = (ns, str(meta.get("name") or ""))
    seen = deps.instance_seen
    if deleted:
        seen.pop(key, None)
    else:
        now = significant(body)
        if seen.get(key) == now:
            return
        seen[key] = now
    deps.instance_marks[(ns, pool)] = deps.instance_marks.get((ns, pool), 0) + 1


def instance_mark(deps: Deps, namespace: str, pool: str) -> int:
    """How many significant changes of the pool's instances this process has seen."""
    return deps.instance_marks.get((namespace, pool), 0)


def listing(deps: Deps, namespace: str, pool: str, *, max_age: float) -> Listing | None:
    """The pool's last listing while it still holds: no significant change of its
    instances seen since, and younger than ``max_age`` seconds; else None (list again)."""
    found = deps.pool_listings.get((namespace, pool))
    if found is None or found.mark != instance_mark(deps, namespace, pool):
        return None
    if deps.monotonic() - found.at >= max_age:
        return None
    return found


def keep_listing(deps: Deps, namespace: str, pool: str, listing: Listing) -> None:
    deps.pool_listings[(namespace, pool)] = listing


def drop_listing(deps: Deps, namespace: str, pool: str) -> None:
    """The pool changed its instances itself: the next reconcile lists them again."""
    deps.pool_listings.pop((namespace, pool), None)


def forget_pool(deps: Deps, namespace: str, pool: str) -> None:
    deps.pool_listings.pop((namespace, pool), None)
    deps.instance_marks.pop((namespace, pool), None)
    deps.pool_status_at.pop((namespace, pool), None)
