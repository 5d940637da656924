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
    handover: bool = False
    """Live peers of lower priority exist: they stand down on seeing this replica; it waits
    the hand-over grace before it works."""


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
    if blockers:
        return Standing(False, tuple(sorted(p.identity for p in blockers)))
    if not any(p.identity == me and p.deadline > now for p in peers):
        return Standing(False)  # not announced: its peers cannot see it yet
    return Standing(True, handover=any(p.priority < priority for p in live))


def combined(standings: Sequence[Standing]) -> Standing:
    """Several peering objects (a namespaced operator meets its peers in each namespace it
    serves): Kopf pauses on a conflict in any, so it works only when every one says so."""
    return Standing(
        active=all(s.active for s in standings),
        blockers=tuple(sorted({b for s in standings for b in s.blockers})),
        handover=any(s.handover for s in standings),
    )


# ---------------------------------------------------------------- catching up on resuming
#
# While a replica stands by, Kopf's watch streams are stopped and its in-memory indexes
# keep what they last saw; on resuming, Kopf lists again and the index entries are renewed
# object by object. A dispatch before that is done would place a job the peer ran to its
# end meanwhile (still Queued in the index), and never learns of a job deleted meanwhile
# (Kopf gets no event for it). So the replica lists the jobs itself on taking over, and
# its dispatcher starts once the index is not behind that listing (:func:`behind`), leaving
# out what the index holds but the listing no longer has (:func:`ghosts`).


@dataclass(frozen=True)
class Listed:
    """A job as the take-over listing saw it."""

    version: str
    terminal: bool


@dataclass(frozen=True)
class JobListing:
    """The jobs listed on taking over, and the listing's own resourceVersion."""

    version: str
    jobs: Mapping[str, Listed]


def same_or_newer(version: str, than: str) -> bool:
    """Whether ``version`` is ``than`` or later. Kubernetes' resourceVersions are opaque;
    the API servers that exist (etcd's revisions, the emulator's counter) give integers,
    compared as such; anything else compares by equality."""
    try:
        return int(version) >= int(than)
    except ValueError:
        return version == than


def behind(listing: JobListing, indexed: Mapping[str, str]) -> set[str]:
    """The listed jobs the index (uid → resourceVersion, non-terminal jobs only) has not
    caught up with: a live job missing or older there, a finished one still there from
    before."""
    late: set[str] = set()
    for uid, job in listing.jobs.items():
        version = indexed.get(uid)
        if job.terminal:
            if version is not None and not same_or_newer(version, job.version):
                late.add(uid)
        elif version is None or not same_or_newer(version, job.version):
            late.add(uid)
    return late


def ghosts(listing: JobListing, indexed: Mapping[str, str]) -> set[str]:
    """Jobs the index holds that were deleted before the listing: not listed, and last
    changed before it (a job created after the listing is newer than it)."""
    return {
        uid for uid, v in indexed.items() if uid not in listing.jobs and older(v, listing.version)
    }


def older(version: str, than: str) -> bool:
    """Whether ``version`` is certainly before ``than`` (integers only: of opaque versions
    nothing is certain, and a job is never left out on a guess)."""
    try:
        return int(version) < int(than)
    except ValueError:
        return False
