"""Choosing Vast.ai offers for a pool: filter, cool-down, skip-list, score, pick.

Pure: the handler converts the Vast.ai client's offers into :class:`OfferView` and
passes the pool's ledgers and ``now``; nothing here reads a clock or does I/O.

Timestamps in the pool status are RFC 3339 strings, converted by the one codec of
:mod:`warmpool.crds.common` (:func:`~warmpool.crds.common.parse_time`,
:func:`~warmpool.crds.common.format_time`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from warmpool.crds.common import format_time, parse_time
from warmpool.crds.gpupool import HostFailure, OfferSpec, UnavailableOffer

#: Score weights, all in $/hour-equivalents (see :func:`score`).
RELIABILITY_WEIGHT = 5.0
BANDWIDTH_WEIGHT = 0.10
BANDWIDTH_CAP_MBPS = 1000.0
PORT_WEIGHT = 0.002
PORTS_CAP = 10

_EPSILON = 1e-9


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
    storage_cost: float = 0.0
    """$/GB/month of disk (``storage_cost``); what a stopped instance bills (cold tier)."""


def effective_price(offer: OfferView, spec: OfferSpec) -> float:
    """$/hour the pool would pay: ``dph_total`` on demand, the bid if interruptible."""
    if not spec.interruptible:
        return offer.price_per_hour
    if spec.bid_price is not None:
        return spec.bid_price
    return offer.interruptible_min_bid if offer.interruptible_min_bid is not None else math.inf


def _gpu_key(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def matches(offer: OfferView, spec: OfferSpec) -> bool:
    """Whether the offer satisfies every filter of the pool's ``spec.offer``.

    GPU names compare case-insensitively with ``_`` as a space (``RTX_4090`` = ``RTX 4090``);
    the GPU count must be equal; an interruptible pool needs an offer with a minimum bid
    at or below its ``bidPrice``; ``maxPricePerHour`` bounds :func:`effective_price`.
    """
    if spec.gpu_names and _gpu_key(offer.gpu_name) not in {_gpu_key(n) for n in spec.gpu_names}:
        return False
    if spec.min_gpu_ram_gb is not None and offer.gpu_ram_gb < spec.min_gpu_ram_gb:
        return False
    if offer.num_gpus != spec.num_gpus:
        return False
    if offer.reliability < spec.min_reliability or offer.direct_ports < spec.min_direct_ports:
        return False
    if spec.min_download_mbps is not None and offer.inet_down_mbps < spec.min_download_mbps:
        return False
    if spec.verified_only and not offer.verified:
        return False
    country = offer.country.upper()
    if spec.countries and country not in {c.upper() for c in spec.countries}:
        return False
    if country and country in {c.upper() for c in spec.excluded_countries}:
        return False
    if spec.interruptible:
        floor = offer.interruptible_min_bid
        if floor is None or (spec.bid_price is not None and spec.bid_price < floor):
            return False
    price = effective_price(offer, spec)
    return spec.max_price_per_hour is None or price <= spec.max_price_per_hour + _EPSILON


def score(offer: OfferView, spec: OfferSpec) -> float:
    """Rank of an offer, higher is better, in $/hour-equivalents::

        score = - price                                   # effective $/hour
                - 5.0  * (1 - reliability)                # 1 point of unreliability ~ $0.05/h
                + 0.10 * min(inet_down_mbps, 1000) / 1000 # fast downloads: up to $0.10/h
                + 0.002 * min(direct_ports, 10)           # spare ports: a tie-breaker

    Price dominates; reliability weighs as much as a price difference of
    $0.05/hour per percentage point (a 95 % host costs $0.25/hour more than a
    perfect one); bandwidth matters for the model downloads at boot.
    """
    price = effective_price(offer, spec)
    unreliability = max(0.0, 1.0 - offer.reliability)
    bandwidth = min(max(offer.inet_down_mbps, 0.0), BANDWIDTH_CAP_MBPS) / BANDWIDTH_CAP_MBPS
    ports = min(max(offer.direct_ports, 0), PORTS_CAP)
    return (
        -price
        - RELIABILITY_WEIGHT * unreliability
        + BANDWIDTH_WEIGHT * bandwidth
        + PORT_WEIGHT * ports
    )


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
    stopped_disk_gb: float = 0.0,
) -> list[OfferView]:
    """Up to ``count`` offers to rent, best first, each on a different machine.

    Drops offers that do not match, whose machine or host failed less than
    ``cooldown`` ago (``ledger``), that are skipped until a later time
    (``unavailable``), or whose machine the pool already rents (``busy_machines``).
    ``stopped_disk_gb`` (a pool with a cold tier: its template's disk) ranks offers also by
    what they bill while stopped: :func:`score` minus ``storage_cost`` × disk / 720 $/hour
    (``dph_total`` already holds the storage of a running rental; a stopped one pays it
    alone, for hours, so cheap storage is worth as much as the same cheaper GPU price).
    """
    if count <= 0:
        return []
    skipped = {u.offer_id for u in unavailable if parse_time(u.until) > now}
    candidates = [
        o
        for o in offers
        if o.id not in skipped
        and o.machine_id not in busy_machines
        and matches(o, spec)
        and cooling_down(o, ledger, cooldown=cooldown, now=now) is None
    ]
    stopped = max(stopped_disk_gb, 0.0) / 720.0
    candidates.sort(key=lambda o: (-(score(o, spec) - stopped * max(o.storage_cost, 0.0)), o.id))
    chosen: list[OfferView] = []
    machines: set[int] = set()
    for offer in candidates:
        if offer.machine_id in machines:
            continue
        chosen.append(offer)
        machines.add(offer.machine_id)
        if len(chosen) == count:
            break
    return chosen


def cooling_down(
    offer: OfferView, ledger: Sequence[HostFailure], *, cooldown: timedelta, now: datetime
) -> HostFailure | None:
    """The ledger entry that keeps this offer's machine or host in cool-down, if any."""
    for failure in ledger:
        same_machine = failure.machine_id == offer.machine_id
        same_host = failure.host_id is not None and failure.host_id == offer.host_id
        if (same_machine or same_host) and now - parse_time(failure.time) < cooldown:
            return failure
    return None


def prune_ledger(
    ledger: Sequence[HostFailure], *, cooldown: timedelta, now: datetime
) -> list[HostFailure]:
    """The ledger without entries older than ``cooldown`` (failures decay)."""
    return [f for f in ledger if now - parse_time(f.time) < cooldown]


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
    kept = prune_ledger(ledger, cooldown=cooldown, now=now)
    entry = HostFailure(
        machine_id=machine_id,
        host_id=host_id,
        reason=reason,
        message=message,
        time=format_time(now),
    )
    return [*kept, entry]


def record_unavailable(
    unavailable: Sequence[UnavailableOffer],
    offer_id: int,
    *,
    now: datetime,
    skip: timedelta = timedelta(minutes=5),
) -> list[UnavailableOffer]:
    """The skip-list without expired entries, plus ``offer_id`` skipped until ``now + skip``."""
    kept = [u for u in unavailable if u.offer_id != offer_id and parse_time(u.until) > now]
    return [*kept, UnavailableOffer(offer_id=offer_id, until=format_time(now + skip))]
