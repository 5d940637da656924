"""Which labels a GpuInstance carries: its pool's, so that a shard's pool selector (Kopf
``when=`` filters) picks a pool's instances with the pool, and a pool relabelled into
another shard takes its instances along.

The keys copied from the pool are remembered on the instance (annotation
:data:`COPIED`), so that a label the pool drops is dropped from its instances too, while
labels someone put on an instance by hand stay.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from warmpool.crds.common import POOL_LABEL

#: Annotation of a GpuInstance: the JSON list of label keys copied from its pool.
COPIED = "warmpool.dev/pool-labels"


def wanted(pool_labels: Mapping[str, str] | None, pool: str) -> dict[str, str]:
    """The labels a GpuInstance of ``pool`` carries."""
    return {**(pool_labels or {}), POOL_LABEL: pool}


def copied_keys(annotations: Mapping[str, str] | None) -> list[str]:
    """The keys an instance's annotation says were copied from its pool ([] unreadable)."""
    try:
        keys = json.loads((annotations or {}).get(COPIED) or "[]")
    except ValueError:
        return []
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


def plan_labels(
    pool_labels: Mapping[str, str] | None, pool: str, metadata: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The merge patch of an instance's ``metadata`` that gives it its pool's labels (a
    ``None`` value removes a label the pool dropped), or None when it has them."""
    want = wanted(pool_labels, pool)
    current = metadata.get("labels") or {}
    copied = copied_keys(metadata.get("annotations"))
    labels: dict[str, str | None] = {k: v for k, v in want.items() if current.get(k) != v}
    labels.update({k: None for k in copied if k not in want and k in current})
    keys = sorted(want)
    if not labels and copied == keys:
        return None
    return {"labels": labels, "annotations": {COPIED: json.dumps(keys)}}
