"""Orphaned rentals: warmpool's label, but no GpuInstance any more.

A crash between a create call and the status write is healed by adoption (the
GpuInstance finds its rental by label). A rental whose GpuInstance is gone is
destroyed after a grace period — money never leaks through a lost object.

With ``WARMPOOL_NAMESPACE=a,b`` the operator may read GpuInstances in those namespaces only
(the chart grants no cluster-wide read then): the sweep lists each served namespace and
judges only the rentals whose label names one of them; another namespace's rentals are
not this operator's to destroy.
"""

from __future__ import annotations

import asyncio
import logging

from warmpool.crds.common import LABEL_ROOT, namespace_of_label, uid_of_label
from warmpool.operator import metrics
from warmpool.operator.adapters import kube
from warmpool.operator.deps import Deps

logger = logging.getLogger(__name__)


async def sweep(deps: Deps) -> list[int]:
    """Destroy rentals labelled by warmpool whose GpuInstance no longer exists."""
    rentals = await deps.inventory.by_label_prefix(f"{LABEL_ROOT}.")
    served = deps.settings.served_namespaces
    if served:
        rentals = [r for r in rentals if namespace_of_label(r.label) in served]
    if not rentals:
        return []
    known: set[str | None] = set(
        await known_uids(deps, {uid for r in rentals if (uid := uid_of_label(r.label))})
    )
    destroyed = []
    now = deps.monotonic()
    orphans = {r.id for r in rentals if uid_of_label(r.label) not in known}
    # Grace counts from when this process first saw the rental orphaned: the
    # rental's own start_date is the provider's clock, which need not agree with ours.
    for gone in set(deps.orphans_seen) - orphans:
        del deps.orphans_seen[gone]
    for rental in rentals:
        if rental.id not in orphans or uid_of_label(rental.label) is None:
            continue
        seen = deps.orphans_seen.setdefault(rental.id, now)
        if now - seen < deps.settings.orphan_grace:
            continue
        logger.warning("Destroying orphaned rental %s (label %s): no GpuInstance has its uid.",
                       rental.id, rental.label)  # fmt: skip
        if await deps.vastai.destroy_instance(rental.id):
            destroyed.append(rental.id)
        deps.orphans_seen.pop(rental.id, None)
        metrics.ORPHANS_DESTROYED.inc()
    if destroyed:
        deps.inventory.invalidate()
    return destroyed


async def known_uids(deps: Deps, wanted: set[str]) -> set[str]:
    """The uids of every GpuInstance: the last listing's while it knows every uid asked
    for and is younger than half the orphan grace (a sweep where every rental has its
    object lists nothing), else listed now."""
    cached = deps.known_uids
    max_age = deps.settings.orphan_grace / 2
    if cached is not None and deps.monotonic() - cached[0] < max_age and wanted <= cached[1]:
        return cached[1]
    at = deps.monotonic()
    known: set[str] = set()
    for namespace in deps.settings.list_namespaces:
        bodies = await deps.kube.list(kube.GPUINSTANCES, namespace)
        known |= {str(b["metadata"]["uid"]) for b in bodies if b["metadata"].get("uid")}
    deps.known_uids = (at, known)
    return known


async def sweep_forever(deps: Deps) -> None:
    """Sweep every few reconcile intervals until cancelled; never while this replica
    stands by for a peer (the active one sweeps)."""
    while True:
        await deps.active.wait()
        try:
            await sweep(deps)
        except Exception:
            logger.exception("Orphan sweep failed; will retry.")
        await asyncio.sleep(deps.settings.reconcile_interval)
