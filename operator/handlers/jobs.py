"""GenerationJob handlers: queue on creation (scheduling comes with the jobs issue)."""

from __future__ import annotations

from typing import Any

import kopf

from warmpool.operator.deps import Deps
from warmpool.operator.handlers import common
from warmpool.operator.handlers.registry import GENERATIONJOBS, registry


@kopf.on.create(*GENERATIONJOBS, registry=registry, id="queue")
async def on_create_job(
    body: kopf.Body, spec: kopf.Spec, patch: kopf.Patch, memo: Deps, **_: Any
) -> None:
    """A new job is Queued; its pool is woken (queued jobs are scale-up demand)."""
    if not (body.get("status") or {}).get("phase"):
        patch.status["phase"] = "Queued"
        patch.status["queuedAt"] = common.iso(memo.now())
    memo.wake(body.metadata.namespace or "default", spec.get("pool", ""))
