"""One GpuInstance's loop: which concern acts now (launch, liveness, cold, termination).

One daemon per GpuInstance walks it through its phases: no contract yet → launch;
rented → liveness; Stopped/Resuming (the cold tier) → cold; Terminating/Failed or its
pool gone → termination.

A Ready instance for which nothing is due (:func:`quiet.step_due`: its object, its pool's
spec, its listing row and the credit state as the last full step saw them; its probe and
its status refresh not due yet) is not stepped: the step would end as the last one did.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Coroutine
from typing import Any

import kopf

from warmpool.crds.common import parse_optional_time
from warmpool.crds.gpuinstance import GpuInstance
from warmpool.crds.gpupool import GpuPool
from warmpool.operator import errors
from warmpool.operator.adapters import kube
from warmpool.operator.controllers import balance
from warmpool.operator.controllers.instance import cold, launch, liveness, termination
from warmpool.operator.controllers.pause import pause
from warmpool.operator.decisions import quiet
from warmpool.operator.deps import Deps

#: After the daemon is asked to stop (the object is being deleted, the operator exits),
#: how long a step in flight may finish before it is cancelled here, quietly. Kopf's
#: ``cancellation_backoff`` waits a little longer before it cancels the daemon itself
#: (logging a warning for every instance deleted while starting: every hedge loser).
STEP_GRACE_S = 3.0


async def run(
    stopped: kopf.DaemonStopped, body: kopf.Body, memo: Deps, logger: kopf.Logger
) -> None:
    """Walk one GpuInstance to Ready and keep it healthy until it is deleted."""
    settings = memo.settings
    key = f"{body.metadata.namespace or 'default'}/{body.metadata.name}"
    last: quiet.Observation | None = None  # what the last full step saw
    ready = False
    while not stopped:
        if body.metadata.get("deletionTimestamp"):
            return
        # Not under step_until_stopped (two tasks per instance per interval): it awaits
        # nothing but the shared listing, which is cached for the interval.
        seen = await observe(memo, body) if ready else None
        if quiet.step_due(last, ready, seen, now=memo.now(),
                          probe_every=settings.ready_probe_interval,
                          refresh_every=settings.status_refresh):  # fmt: skip
            fresh = await current_body(memo, body)
            if fresh is None:
                return
            try:
                outcome = await step_until_stopped(step(memo, fresh, logger), stopped)
            except errors.TemporaryError as exc:
                logger.warning("Will retry: %s", exc)
                outcome = False
            if outcome is None:
                return
            ready = outcome
            # What the step saw, at the version it wrote or read (its own write is no
            # change); after a step that began elsewhere than Ready, the next one runs too.
            last = (
                dataclasses.replace(seen, version=memo.seen_versions.get(key))
                if seen is not None
                else None
            )
        await pause(stopped, settings.reconcile_interval if ready else settings.probe_interval)


async def observe(deps: Deps, body: kopf.Body) -> quiet.Observation | None:
    """What a step of this Ready instance would depend on, from the body at hand, the
    pool's cached model and the cached listing (no API request but the shared listing's,
    once per interval for everyone); None when it is not a Ready rental of a known pool
    or the listing cannot be had (the step runs and says why)."""
    status = body.get("status") or {}
    contract = status.get("contractId")
    if status.get("phase") != "Ready" or contract is None:
        return None
    ns, name = body.metadata.namespace or "default", body.metadata.name or ""
    pool = pool_model(deps, ns, str(body.spec.get("pool") or ""))
    if pool is None:
        return None
    try:
        rec = await deps.inventory.by_id(int(contract))
    except errors.TemporaryError:
        return None
    port = pool.spec.template.comfy_port
    live = body.metadata.get("resourceVersion")
    key = f"{ns}/{name}"
    probe = status.get("lastProbe") or {}
    probed = parse_optional_time(probe.get("time"))
    return quiet.Observation(
        version=live,
        current=live is not None and deps.seen_versions.get(key) == live,
        pool=(pool.metadata.uid, pool.metadata.generation),
        rental=liveness.rental_view(rec, port),
        url=liveness.machine_url(deps, rec, port),
        out_of_credit=balance.out_of_credit(deps),
        phase="Ready",
        comfy_url=str(status.get("comfyUrl") or ""),
        probe_ok=bool(probe.get("ok")),
        probe_failures=int(status.get("probeFailures") or 0),
        probed_at=deps.probed_at.get(key) or probed,
        refreshed_at=probed,
    )


async def current_body(deps: Deps, body: kopf.Body) -> dict[str, Any] | None:
    """The object as it is now: the live body when it shows the version this process last
    wrote or read (nothing changed since), else read fresh (the live body lags behind
    writes: ours, the dispatcher's, the pool's); None when it is gone."""
    ns, name = body.metadata.namespace or "default", body.metadata.name or ""
    key = f"{ns}/{name}"
    live = body.metadata.get("resourceVersion")
    if live is not None and deps.seen_versions.get(key) == live:
        return dict(body)
    fresh = await deps.kube.get(kube.GPUINSTANCES, name, ns)
    if fresh is not None:
        deps.seen_versions[key] = str(fresh["metadata"].get("resourceVersion"))
    else:
        deps.seen_versions.pop(key, None)
    return fresh


def pool_model(deps: Deps, namespace: str, name: str) -> GpuPool | None:
    """The pool as its last watch event showed it (parsed once per change), or None."""
    return deps.pool_models.get((namespace, name))


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
    # The pool as its watch events show it (no read per instance per interval); read
    # when this process has not seen it (yet).
    pool = pool_model(deps, ns, inst.spec.pool)
    pool_body = None if pool is not None else await deps.kube.get(kube.GPUPOOLS, inst.spec.pool, ns)
    if pool is None and pool_body is None:
        log.info("Pool %s is gone; terminating.", inst.spec.pool)
        await termination.terminate(
            deps, inst, reason="PoolGone", message="the pool no longer exists"
        )
        return False
    if pool is None:
        assert pool_body is not None
        pool = GpuPool.from_body(pool_body)
    if inst.status.phase in ("Terminating", "Failed"):
        await termination.terminate(
            deps, inst, reason=inst.status.reason or "Failed", message=inst.status.message
        )
        return False
    if inst.status.contract_id is None:
        await launch.rent(deps, inst, pool, log)
        return False
    if cold.is_cold(inst):
        return await cold.follow(deps, inst, pool, log)
    if await cold.stopped_by_account(deps, inst, pool):
        return False
    return await liveness.follow(deps, inst, pool, log, dict(body.get("status") or {}))
