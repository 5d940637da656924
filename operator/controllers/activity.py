"""Whether this replica works: follows the Kopf peering object, applies stand-downs.

Kopf pauses its watch streams and daemons while a peer of higher priority is alive; the
work the operator does outside Kopf's handlers — the job dispatch loops and runners, the
orphan sweep, the balance check — waits on :attr:`Deps.active`, which this loop keeps
by Kopf's rule (:func:`decisions.peering.standing`), read from the peering object every
:func:`poll_seconds`. When the replica stands down, its job dispatcher stops: the runners
are cancelled with their jobs' leases kept (as at a graceful shutdown) and nothing is
placed any more; the replica that works resumes those jobs, following their prompts.

Without peering (one replica) :attr:`Deps.active` stays set and this loop does not run.
"""

from __future__ import annotations

import asyncio
import logging

from warmpool.operator import errors, metrics
from warmpool.operator.adapters import kube
from warmpool.operator.decisions import peering
from warmpool.operator.deps import Deps

logger = logging.getLogger(__name__)


def poll_seconds(lifetime: int) -> float:
    """How often the peering object is read: a fifth of the heartbeat's lifetime, at
    most a second (a replica notices a higher peer within that)."""
    return min(1.0, lifetime / 5)


def handover_seconds(lifetime: int) -> float:
    """How long a replica that becomes active while lower peers are alive waits: their
    next read of the peering object, plus a second for their runners to stop."""
    return 2 * poll_seconds(lifetime) + 1.0


def peering_objects(deps: Deps) -> list[tuple[kube.Resource, str | None]]:
    """Where the replicas meet: a ClusterKopfPeering for a cluster-wide operator, a
    KopfPeering in each namespace a namespaced one serves (as Kopf does)."""
    namespaces = deps.settings.served_namespaces
    if not namespaces:
        return [(kube.CLUSTER_KOPF_PEERINGS, None)]
    return [(kube.KOPF_PEERINGS, ns) for ns in namespaces]


async def read_standing(deps: Deps, priority: int) -> peering.Standing:
    """This replica's standing in every peering object it meets its peers in."""
    name = deps.settings.peering or ""
    found: list[peering.Standing] = []
    for res, namespace in peering_objects(deps):
        body = await deps.kube.get(res, name, namespace) or {}
        now = deps.now()
        peers = peering.peers_of(body.get("status"), now=now)
        found.append(peering.standing(deps.settings.pod_id, priority, peers, now))
    return peering.combined(found)


async def stand_down(deps: Deps, standing: peering.Standing) -> None:
    """Stop working: no dispatch, no runner; a fresh dispatcher starts on resuming."""
    deps.active.clear()
    metrics.OPERATOR_ACTIVE.set(0)
    found, deps.dispatcher = deps.dispatcher, None
    if found is not None:
        await found.stop()
    logger.warning("Standing by for %s: job runners stopped, their jobs' leases kept.",
                   ", ".join(standing.blockers) or "a peer")  # fmt: skip


def take_over(deps: Deps) -> None:
    """Start working. The dispatcher is one that has not dispatched yet (created while
    standing by, its loops waited on :attr:`Deps.active`): its first dispatch treats the
    jobs it finds held as a restarted process does."""
    deps.active.set()
    metrics.OPERATOR_ACTIVE.set(1)
    logger.info("Working: this replica (%s) is the active one.", deps.settings.pod_id)


async def follow(deps: Deps, priority: int) -> None:
    """Keep :attr:`Deps.active` by the peering object until cancelled.

    A replica that cannot read the object for longer than the heartbeat's lifetime stands
    down: a standby may have taken over meanwhile."""
    lifetime = deps.settings.peering_lifetime
    every = poll_seconds(lifetime)
    deps.active.clear()
    metrics.OPERATOR_ACTIVE.set(0)
    last_read = deps.monotonic()
    ready_at: float | None = None
    while True:
        try:
            standing: peering.Standing | None = await read_standing(deps, priority)
            last_read = deps.monotonic()
        except errors.KubeError as exc:
            logger.warning("Could not read the peering object; will retry: %s", exc)
            standing = None
            if deps.monotonic() - last_read > lifetime:
                standing = peering.Standing(False)
        if standing is not None and standing.active and not deps.active.is_set():
            if standing.handover and ready_at is None:
                ready_at = deps.monotonic() + handover_seconds(lifetime)
                logger.info("Taking over from lower-priority peers in %.1f s.",
                            ready_at - deps.monotonic())  # fmt: skip
            if not standing.handover or deps.monotonic() >= (ready_at or 0.0):
                ready_at = None
                take_over(deps)
        elif standing is not None and not standing.active:
            ready_at = None
            if deps.active.is_set():
                await stand_down(deps, standing)
        await asyncio.sleep(every)
