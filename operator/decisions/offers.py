"""Choosing Vast.ai offers for a pool: filter, cool-down, skip-list, score, pick.

Pure: the handler converts the Vast.ai client's offers into :class:`OfferView` and
passes the pool's ledgers and ``now``; nothing here reads a clock or does I/O.

Timestamps in the pool status are RFC 3339 strings; :func:`parse_time` and
:func:`format_time` are the one place that converts them for the decision modules.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from warmpool.crds.gpupool import HostFailure, OfferSpec, UnavailableOffer


@dataclass(frozen=True)
class OfferView:
    """One Vast.ai offer (ask), as the decisions need it."""

    id: int
    machine_id: int
    host_id: int | None
    gpu_name: str
    num_gpus: int
    gpu_ram_gb: float
    price_per_hour: float
    """``dph_total``: $/hour of the whole rental, storage included."""
    reliability: float
    inet_down_mbps: float
    direct_ports: int
    verified: bool
    country: str = ""
    """Two-letter country code, or "" when unknown."""
    interruptible_min_bid: float | None = None


def parse_time(text: str) -> datetime:
    """Parse RFC 3339 (``2024-05-01T12:00:00Z``) into an aware datetime (UTC if naive)."""
    raise NotImplementedError


def format_time(when: datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with a ``Z`` suffix, whole seconds."""
    raise NotImplementedError


def effective_price(offer: OfferView, spec: OfferSpec) -> float:
    """$/hour the pool would pay: ``dph_total`` on demand, the bid if interruptible."""
    raise NotImplementedError


def matches(offer: OfferView, spec: OfferSpec) -> bool:
    """Whether the offer satisfies every filter of the pool's ``spec.offer``."""
    raise NotImplementedError


def score(offer: OfferView, spec: OfferSpec) -> float:
    """Rank of an offer, higher is better, in "dollars per hour" units (formula in the body)."""
    raise NotImplementedError


def choose_offers(
    offers: Sequence[OfferView],
    spec: OfferSpec,
    *,
    count: int,
    ledger: Sequence[HostFailure],
    unavailable: Sequence[UnavailableOffer],
    busy_machines: Collection[int],
    cooldown: timedelta,
    now: datetime,
) -> list[OfferView]:
    """Up to ``count`` offers to rent, best first, each on a different machine.

    Drops offers that do not match, whose machine or host failed less than
    ``cooldown`` ago (``ledger``), that are skipped until a later time
    (``unavailable``), or whose machine the pool already rents (``busy_machines``).
    """
    raise NotImplementedError


def cooling_down(
    offer: OfferView, ledger: Sequence[HostFailure], *, cooldown: timedelta, now: datetime
) -> HostFailure | None:
    """The ledger entry that keeps this offer's machine or host in cool-down, if any."""
    raise NotImplementedError


def prune_ledger(
    ledger: Sequence[HostFailure], *, cooldown: timedelta, now: datetime
) -> list[HostFailure]:
    """The ledger without entries older than ``cooldown`` (failures decay)."""
    raise NotImplementedError


def record_failure(
    ledger: Sequence[HostFailure],
    *,
    machine_id: int,
    host_id: int | None,
    reason: str,
    message: str = "",
    cooldown: timedelta,
    now: datetime,
) -> list[HostFailure]:
    """The pruned ledger plus a failure of ``machine_id`` at ``now``."""
    raise NotImplementedError


def record_unavailable(
    unavailable: Sequence[UnavailableOffer],
    offer_id: int,
    *,
    now: datetime,
    skip: timedelta = timedelta(minutes=5),
) -> list[UnavailableOffer]:
    """The skip-list without expired entries, plus ``offer_id`` skipped until ``now + skip``."""
    raise NotImplementedError
