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

from warmpool.crds.generationjob import TERMINAL_PHASES
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
    next read of the peering object, their runners' hand-over writes (at most
    ``loops.HAND_OVER_SECONDS``, 2 s) and a second for the runners to stop."""
    return 2 * poll_seconds(lifetime) + 3.0


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


async def list_jobs(deps: Deps) -> peering.JobListing:
    """Every GenerationJob this replica serves, with its version and whether it ended."""
    jobs: dict[str, peering.Listed] = {}
    versions: list[str] = []
    for namespace in deps.settings.list_namespaces:
        items, version = await deps.kube.list_with_version(kube.GENERATIONJOBS, namespace)
        versions.append(version)
        for item in items:
            meta = item.get("metadata") or {}
            phase = (item.get("status") or {}).get("phase") or "Queued"
            uid = str(meta.get("uid") or meta.get("name") or "")
            jobs[uid] = peering.Listed(str(meta.get("resourceVersion") or ""),
                                       phase in TERMINAL_PHASES)  # fmt: skip
    # several namespaces, several listings: a job is a ghost only if older than all of them
    oldest = min(versions, key=lambda v: int(v) if v.isdigit() else 0) if versions else ""
    return peering.JobListing(oldest, jobs)


async def take_over(deps: Deps) -> bool:
    """Start working; False when the jobs could not be listed (tried again next time).

    The jobs are listed first: Kopf's job index held still while this replica stood by, and
    the dispatcher (one that has not dispatched yet: created while standing by, its loops
    waited on :attr:`Deps.active`) starts once the index caught up with the listing. Its
    first dispatch then treats the jobs it finds held as a restarted process does."""
    try:
        deps.catch_up = await list_jobs(deps)
    except errors.KubeError as exc:
        logger.warning("Could not list the jobs before taking over; will retry: %s", exc)
        return False
    deps.active.set()
    metrics.OPERATOR_ACTIVE.set(1)
    logger.info("Working: this replica (%s) is the active one.", deps.settings.pod_id)
    return True


async def follow(deps: Deps, priority: int) -> None:
    """Keep :attr:`Deps.active` by the peering object until cancelled.

    A replica that cannot read the object for longer than the heartbeat's lifetime stands
    down: a standby may have taken over meanwhile."""
    lifetime = deps.settings.peering_lifetime
    every = poll_seconds(lifetime)
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
            due = not standing.handover or deps.monotonic() >= (ready_at or 0.0)
            if due and await take_over(deps):
                ready_at = None
        elif standing is not None and not standing.active:
            ready_at = None
            if deps.active.is_set():
                await stand_down(deps, standing)
        await asyncio.sleep(every)
