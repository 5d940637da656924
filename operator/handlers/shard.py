"""Kopf ``when=`` filters of one shard: the pools whose labels the operator's
``pool_selector`` selects, and their GpuInstances (which carry the pool's labels).

Generation jobs are not filtered here (a job has no labels of its pool): the job
dispatcher dispatches only the pools of its own pool index, which this filter fills.
"""

from __future__ import annotations

from typing import Any

from warmpool.operator import selectors as shards
from warmpool.operator.deps import Deps


def in_shard(labels: Any, memo: Deps, **_: Any) -> bool:
    """The object (a GpuPool, or a GpuInstance with its pool's labels) is this shard's."""
    return shards.selects(memo.settings.pool_requirements, labels)
