"""Facts cached from watch events, so that per-interval work does not read what nothing
changed: the pools as parsed models (every instance's step needs its pool's spec).

Filled by a Kopf ``on.event`` handler (:mod:`warmpool.operator.handlers.pools`): one
parse per change of a pool, instead of one read and one parse per instance per interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic

from warmpool.crds.gpupool import GpuPool
from warmpool.operator.deps import Deps


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
