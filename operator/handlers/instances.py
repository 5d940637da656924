"""GpuInstance handlers: rent, follow, probe, terminate, destroy.

One daemon per GpuInstance walks it through its phases; the deletion handler is
the finalizer that destroys the rental (deleting a GpuInstance with kubectl is
how an admin terminates one machine now).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

import kopf

from warmpool.crds.gpuinstance import GpuInstance
from warmpool.crds.gpupool import GpuPool
from warmpool.operator.adapters import kube
from warmpool.operator.deps import Deps
from warmpool.operator.handlers import probing, renting
from warmpool.operator.handlers.registry import GPUINSTANCES, registry

logger = logging.getLogger(__name__)


#: After the daemon is asked to stop (the object is being deleted, the operator exits),
#: how long a step in flight may finish before it is cancelled here, quietly. Kopf's
#: ``cancellation_backoff`` waits a little longer before it cancels the daemon itself
#: (logging a warning for every instance deleted while starting: every hedge loser).
STEP_GRACE_S = 3.0


@kopf.daemon(*GPUINSTANCES, registry=registry, id="instance",
             cancellation_backoff=STEP_GRACE_S + 2, cancellation_timeout=10)  # fmt: skip
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
            outcome = await step_until_stopped(step(memo, fresh, logger), stopped)
        except kopf.TemporaryError as exc:
            logger.warning("Will retry: %s", exc)
            outcome = False
        if outcome is None:
            return
        ready = outcome
        settings = memo.settings
        await stopped.wait(settings.reconcile_interval if ready else settings.probe_interval)


async def step_until_stopped(
    work: Coroutine[Any, Any, bool], stopped: kopf.DaemonStopped
) -> bool | None:
    """The step's result; None when the daemon was stopped and the step did not end
    within :data:`STEP_GRACE_S` (it is cancelled)."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait({task}, timeout=STEP_GRACE_S)
    except BaseException:  # cancelled from outside: the step goes too
        task.cancel()
        raise
    finally:
        stop.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None
    return task.result()


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
