"""GpuInstance handlers: the instance's loop, the finalizer, wake-ups of its pool.

Deleting a GpuInstance with kubectl is how an admin terminates one machine now.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from warmpool.crds.gpuinstance import GpuInstance
from warmpool.operator.adapters import kube
from warmpool.operator.controllers import cache, shards
from warmpool.operator.controllers.instance import reconcile, termination
from warmpool.operator.deps import Deps
from warmpool.operator.handlers.boundary import kopf_errors
from warmpool.operator.handlers.registry import GPUINSTANCES, registry
from warmpool.operator.handlers.shard import in_shard


@kopf.daemon(*GPUINSTANCES, registry=registry, id="instance",
             cancellation_backoff=reconcile.STEP_GRACE_S + 2, cancellation_timeout=10,
             when=in_shard)  # fmt: skip
async def on_daemon_instance(
    stopped: kopf.DaemonStopped, body: kopf.Body, memo: Deps, logger: kopf.Logger, **_: Any
) -> None:
    """Walk one GpuInstance to Ready and keep it healthy until it is deleted."""
    with kopf_errors():
        await reconcile.run(stopped, body, memo, logger)


@kopf.on.delete(*GPUINSTANCES, registry=registry, id="destroy", when=in_shard)
async def on_delete_instance(body: kopf.Body, memo: Deps, logger: kopf.Logger, **_: Any) -> None:
    """The finalizer: destroy the rental (already gone counts as done), close the spend."""
    with kopf_errors():
        await termination.finalize(memo, GpuInstance.from_body(dict(body)), logger)
        await shards.release_others(memo, kube.GPUINSTANCES, body)


@kopf.on.create(*GPUINSTANCES, registry=registry, id="wake-pool-on-create", when=in_shard)
@kopf.on.field(
    *GPUINSTANCES, field="status.phase", registry=registry, id="wake-pool-on-phase", when=in_shard
)
async def on_change_instance(body: kopf.Body, memo: Deps, **_: Any) -> None:
    """A phase change is a scheduling and scaling event for the pool."""
    memo.wake(body.metadata.namespace or "default", body.spec.get("pool", ""))
    await asyncio.sleep(0)


@kopf.on.event(*GPUINSTANCES, registry=registry, id="instance-seen")
async def on_event_instance_seen(body: kopf.Body, type: str | None, memo: Deps, **_: Any) -> None:
    """Move the pool's instance mark when the instance changed beyond its clock fields
    (the pool lists its instances again only then). Every shard counts every instance:
    one whose labels are on their way to its pool's new labels still belongs to that pool."""
    cache.observe_instance(memo, body, deleted=type == "DELETED")
