"""GpuPool handlers: the pool's reconcile loop (:mod:`..controllers.pool`), wake-ups."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from warmpool.operator.adapters import kube
from warmpool.operator.controllers import cache, pool, shards
from warmpool.operator.deps import Deps
from warmpool.operator.handlers.boundary import kopf_errors
from warmpool.operator.handlers.registry import GPUPOOLS, registry
from warmpool.operator.handlers.shard import in_shard


@kopf.daemon(*GPUPOOLS, registry=registry, id="pool", cancellation_timeout=10, when=in_shard)
async def on_daemon_pool(
    stopped: kopf.DaemonStopped, body: kopf.Body, memo: Deps, logger: kopf.Logger, **_: Any
) -> None:
    """Reconcile the pool now, whenever something changes, and every interval."""
    with kopf_errors():
        await pool.run(stopped, body, memo, logger)


@kopf.on.create(*GPUPOOLS, registry=registry, id="wake-on-create", when=in_shard)
@kopf.on.update(*GPUPOOLS, registry=registry, id="wake-on-update", field="spec", when=in_shard)
async def on_change_pool(body: kopf.Body, memo: Deps, **_: Any) -> None:
    """A spec change (scale, pause, budget) is handled now, not at the next tick."""
    memo.wake(body.metadata.namespace or "default", body.metadata.name or "")
    await asyncio.sleep(0)


@kopf.on.delete(*GPUPOOLS, registry=registry, id="pool-deleted", optional=True, when=in_shard)
async def on_delete_pool(body: kopf.Body, memo: Deps, **_: Any) -> None:
    """Forget the pool's caches; its GpuInstances go by cascading deletion."""
    pool.forget(memo, body.metadata.namespace or "default", body.metadata.name or "")
    with kopf_errors():
        await shards.release_others(memo, kube.GPUPOOLS, body)


@kopf.on.event(*GPUPOOLS, registry=registry, id="pool-model", when=in_shard)
async def on_event_pool_model(body: kopf.Body, type: str | None, memo: Deps, **_: Any) -> None:
    """Keep the pool's parsed model for its instances' steps (no read per instance)."""
    cache.observe_pool(memo, body, deleted=type == "DELETED")
