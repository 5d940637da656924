"""GpuInstance handlers: rent, follow, probe, terminate, destroy.

One daemon per GpuInstance walks it through its phases; the deletion handler is
the finalizer that destroys the rental (deleting a GpuInstance with kubectl is
how an admin terminates one machine now).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from warmpool.crds.gpuinstance import GpuInstance
from warmpool.crds.gpupool import GpuPool
from warmpool.operator.adapters import kube
from warmpool.operator.deps import Deps
from warmpool.operator.handlers import probing, renting
from warmpool.operator.handlers.registry import GPUINSTANCES, registry

logger = logging.getLogger(__name__)


@kopf.daemon(*GPUINSTANCES, registry=registry, id="instance", cancellation_timeout=10)
async def on_daemon_instance(
    stopped: kopf.DaemonStopped,
    body: kopf.Body,
    memo: Deps,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """Walk one GpuInstance to Ready and keep it healthy until it is deleted."""
    while not stopped:
        if body.metadata.get("deletionTimestamp"):
            return
        # The live body lags behind our own status writes: read the object fresh.
        fresh = await memo.kube.get(kube.GPUINSTANCES, body.metadata.name, body.metadata.namespace)
        if fresh is None:
            return
        try:
            ready = await step(memo, fresh, logger)
        except kopf.TemporaryError as exc:
            logger.warning("Will retry: %s", exc)
            ready = False
        settings = memo.settings
        await stopped.wait(settings.reconcile_interval if ready else settings.probe_interval)


async def step(deps: Deps, body: dict[str, Any], log: kopf.Logger) -> bool:
    """One pass over one instance. Returns True when it is Ready (slower cadence)."""
    inst = GpuInstance.from_body(body)
    ns = inst.metadata.namespace or "default"
    pool_body = await deps.kube.get(kube.GPUPOOLS, inst.spec.pool, ns)
    if pool_body is None:
        log.info("Pool %s is gone; terminating.", inst.spec.pool)
        await renting.terminate(deps, inst, reason="PoolGone", message="the pool no longer exists")
        return False
    pool = GpuPool.from_body(pool_body)
    if inst.status.phase in ("Terminating", "Failed"):
        await renting.terminate(
            deps, inst, reason=inst.status.reason or "Failed", message=inst.status.message
        )
        return False
    if inst.status.contract_id is None:
        await renting.rent(deps, inst, pool, log)
        return False
    return await probing.follow(deps, inst, pool, log)


@kopf.on.delete(*GPUINSTANCES, registry=registry, id="destroy")
async def on_delete_instance(body: kopf.Body, memo: Deps, logger: kopf.Logger, **_: Any) -> None:
    """The finalizer: destroy the rental (already gone counts as done), close the spend."""
    inst = GpuInstance.from_body(dict(body))
    destroyed = await renting.destroy(memo, inst)
    for contract in destroyed:
        logger.info("Destroyed rental %s.", contract)
    await renting.close_spend(memo, inst)
    memo.wake(inst.metadata.namespace or "default", inst.spec.pool)


@kopf.on.create(*GPUINSTANCES, registry=registry, id="wake-pool-on-create")
@kopf.on.field(*GPUINSTANCES, field="status.phase", registry=registry, id="wake-pool-on-phase")
async def on_change_instance(body: kopf.Body, memo: Deps, **_: Any) -> None:
    """A phase change is a scheduling and scaling event for the pool."""
    memo.wake(body.metadata.namespace or "default", body.spec.get("pool", ""))
    await asyncio.sleep(0)
