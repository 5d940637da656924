"""The decision layer's views of adapter records and objects (offers, GpuInstances)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from warmpool.crds.common import parse_optional_time
from warmpool.crds.gpuinstance import GpuInstance
from warmpool.operator.adapters.vastai_models import Offer
from warmpool.operator.decisions import offers, policy


def offer_view(offer: Offer) -> offers.OfferView:
    """The decision layer's view of a Vast.ai offer."""
    return offers.OfferView(
        id=offer.id,
        machine_id=offer.machine_id or 0,
        host_id=offer.host_id,
        gpu_name=offer.gpu_name or "",
        num_gpus=offer.num_gpus or 1,
        gpu_ram_gb=(offer.gpu_ram or 0.0) / 1000.0,
        price_per_hour=offer.dph_total or 0.0,
        reliability=offer.reliability or 0.0,
        inet_down_mbps=offer.inet_down or 0.0,
        direct_ports=offer.direct_port_count or 0,
        verified=(offer.verification or "verified") == "verified",
        country=offer.country or "",
        interruptible_min_bid=offer.min_bid,
        storage_cost=offer.storage_cost or 0.0,
    )


#: Parsed GpuInstances by (uid, resourceVersion): an object that did not change is parsed
#: once, not once per caller per pass (a scale-up of N instances reads its N siblings N
#: times under the pool's lock). Values are never mutated; bounded by :data:`MEMO_SIZE`.
_PARSED: dict[tuple[str, str], tuple[GpuInstance, policy.InstanceView]] = {}
MEMO_SIZE = 8192


def parsed_instance(body: dict[str, Any]) -> GpuInstance:
    """The GpuInstance model of a body, parsed once per version (do not mutate it)."""
    return _parsed(body)[0]


def _parsed(body: dict[str, Any]) -> tuple[GpuInstance, policy.InstanceView]:
    meta = body.get("metadata") or {}
    key = (str(meta.get("uid") or ""), str(meta.get("resourceVersion") or ""))
    if all(key) and (hit := _PARSED.get(key)) is not None:
        return hit
    inst = GpuInstance.from_body(body)
    entry = (inst, _view(inst))
    if all(key):
        if len(_PARSED) >= MEMO_SIZE:
            _PARSED.clear()
        _PARSED[key] = entry
    return entry


def instance_view(body: dict[str, Any]) -> policy.InstanceView:
    """The decision layer's view of a GpuInstance object."""
    return _parsed(body)[1]


def _view(inst: GpuInstance) -> policy.InstanceView:
    s = inst.status
    created = parse_optional_time(inst.metadata.creation_timestamp)
    return policy.InstanceView(
        name=inst.metadata.name,
        phase=s.phase,
        created_at=created or parse_optional_time(s.rented_at) or _epoch(),
        rented_at=parse_optional_time(s.rented_at),
        ready_at=parse_optional_time(s.ready_at),
        last_job_at=parse_optional_time(s.last_job_at),
        jobs=s.jobs,
        template_hash=inst.spec.template_hash,
        price_per_hour=s.price_per_hour
        or (inst.spec.offer.price_per_hour if inst.spec.offer else 0),
        machine_id=s.machine_id or (inst.spec.offer.machine_id if inst.spec.offer else None),
        reason=inst.spec.reason,
        deleting=bool(inst.metadata.deletion_timestamp),
    )


def _epoch() -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC)
