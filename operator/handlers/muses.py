"""Muse handlers: muses are data; the operator only acknowledges them."""

from __future__ import annotations

from typing import Any

import kopf

from warmpool.operator.handlers.registry import MUSES, registry


@kopf.on.resume(*MUSES, registry=registry, id="muse")
@kopf.on.create(*MUSES, registry=registry, id="muse")
@kopf.on.update(*MUSES, registry=registry, id="muse", field="spec")
async def on_change_muse(meta: kopf.Meta, patch: kopf.Patch, **_: Any) -> None:
    """Record the generation seen, so ``kubectl get -o yaml`` shows it was read."""
    patch.status["observedGeneration"] = meta.get("generation")
