"""Whether this replica works or stands by, read from the Kopf peering object. Pure.

With peering, Kopf pauses its own watch streams and daemons while a live peer of higher
priority (or of the same priority) is in the peering object, and resumes them once that
peer's heartbeat expires. The operator's own work outside Kopf's handlers — the job
dispatch loops and runners, the orphan sweep, the balance check — follows the same rule
(:func:`standing`), so that a replica that stood down neither places a job from indexes
that no longer change, nor lets a runner go on writing while the active replica runs the
same job.

Two safeguards beyond Kopf's rule:

- A replica works only once its own entry is in the object: its peers see it before it
  places a job.
- A replica that becomes active while lower-priority peers are alive (it joined a running
  pair, or came back) waits a hand-over grace first, so that they have stood down and
  stopped their runners (leases kept) before it resumes their jobs (:attr:`Standing.handover`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from warmpool.crds.common import parse_time

#: Kopf's default heartbeat lifetime, for an entry that names none.
DEFAULT_LIFETIME = 60


@dataclass(frozen=True)
class Peer:
    """One replica's entry in the peering object's status."""

    identity: str
    priority: int
    deadline: datetime
    """When its heartbeat expires (last seen + lifetime)."""


@dataclass(frozen=True)
class Standing:
    """What this replica does now."""

    active: bool
    blockers: tuple[str, ...] = ()
    """The live peers it stands by for (higher or equal priority)."""
    recheck_at: datetime | None = None
    """When the first blocker's heartbeat expires (look again then)."""
    handover: bool = False
    """Live peers of lower priority exist: they stand down on seeing this replica; it waits
    the hand-over grace before it works."""
    announced: bool = True
    """Its own entry is in the object."""


def peers_of(status: object, *, now: datetime) -> list[Peer]:
    """The entries of a peering object's status; malformed ones are skipped (another
    writer's garbage must not stop the operator), a missing ``lastseen`` counts as now and
    a missing lifetime as Kopf's default, as Kopf reads them."""
    if not isinstance(status, Mapping):
        return []
    found: list[Peer] = []
    for identity, info in status.items():
        if not isinstance(identity, str) or not isinstance(info, Mapping):
            continue
        try:
            priority = int(info.get("priority") or 0)
            lifetime = int(info.get("lifetime") or DEFAULT_LIFETIME)
            raw = info.get("lastseen")
            seen = parse_time(raw) if isinstance(raw, str) and raw else now
        except (TypeError, ValueError, OverflowError):
            continue
        found.append(Peer(identity, priority, seen + timedelta(seconds=lifetime)))
    return found


def standing(me: str, priority: int, peers: Sequence[Peer], now: datetime) -> Standing:
    """Kopf's rule: stand by while any other live peer has this priority or a higher one;
    work otherwise (once announced; see the module docstring)."""
    live = [p for p in peers if p.deadline > now and p.identity != me]
    blockers = [p for p in live if p.priority >= priority]
    announced = any(p.identity == me and p.deadline > now for p in peers)
    if blockers:
        first = min(p.deadline for p in blockers)
        return Standing(False, tuple(sorted(p.identity for p in blockers)), first,
                        announced=announced)  # fmt: skip
    if not announced:
        return Standing(False, announced=False)
    return Standing(True, handover=any(p.priority < priority for p in live))


def combined(standings: Sequence[Standing]) -> Standing:
    """Several peering objects (a namespaced operator meets its peers in each namespace it
    serves): Kopf pauses on a conflict in any, so it works only when every one says so."""
    if not standings:
        return Standing(True)
    blockers = tuple(sorted({b for s in standings for b in s.blockers}))
    rechecks = [s.recheck_at for s in standings if s.recheck_at is not None]
    return Standing(
        active=all(s.active for s in standings),
        blockers=blockers,
        recheck_at=min(rechecks) if rechecks else None,
        handover=any(s.handover for s in standings),
        announced=all(s.announced for s in standings),
    )
