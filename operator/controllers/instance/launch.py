"""Launching an instance: adopt its rental by label, reserve an offer, rent it.

With :mod:`.termination`, the only code paths that spend money.

Every rental first looks for an existing rental carrying the instance's
idempotency label (adopting it), then checks the pool's budget, and only then
calls Vast.ai — under a per-pool lock so that two instances of one scale-up never
pick the same machine or both fit under a budget only one fits under.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import kopf

from warmpool.crds.common import format_time, parse_duration, pool_selector, rental_label
from warmpool.crds.gpuinstance import COLD_PHASES, LIVE_PHASES, GpuInstance
from warmpool.crds.gpupool import GpuPool
from warmpool.operator import errors, metrics
from warmpool.operator.adapters import kube, machine_tls, secrets, vastai
from warmpool.operator.adapters.status import patch_status, update_status
from warmpool.operator.adapters.vastai_models import CreateInstanceRequest, Instance, Offer
from warmpool.operator.controllers import spending
from warmpool.operator.controllers.events import event
from warmpool.operator.controllers.instance import cold
from warmpool.operator.controllers.views import instance_view, offer_view
from warmpool.operator.decisions import budget, channel, downloads, offers, provisioning
from warmpool.operator.deps import Deps, Reservation

#: Offers considered per rental step (best score first; over budget ones are skipped).
OFFER_CANDIDATES = 12
#: Offers actually tried (create calls) per rental step.
OFFER_TRIES = 3


async def search(deps: Deps, pool: GpuPool) -> list[Offer]:
    """Offers for a pool, one search per ``offer_cache`` seconds per pool."""
    key = f"{pool.metadata.namespace}/{pool.metadata.name}"
    cached = deps.offer_cache.get(key)
    if cached is not None and deps.monotonic() - cached[0] < deps.settings.offer_cache:
        return list(cached[1])
    query = vastai.build_offer_query(pool.spec.offer, disk_gb=pool.spec.template.disk_gb)
    found = await deps.vastai.search_offers(query)
    deps.offer_cache[key] = (deps.monotonic(), list(found))
    return list(found)


def cheapest_offer(deps: Deps, pool: GpuPool) -> float | None:
    """$/hour of the cheapest offer last found for the pool (None: no search yet)."""
    cached = deps.offer_cache.get(f"{pool.metadata.namespace}/{pool.metadata.name}")
    prices = [o.dph_total for o in (cached[1] if cached else []) if o.dph_total is not None]
    return min(prices) if prices else None


def _forget_offer(deps: Deps, pool: GpuPool, offer_id: int) -> None:
    key = f"{pool.metadata.namespace}/{pool.metadata.name}"
    cached = deps.offer_cache.get(key)
    if cached is not None:
        deps.offer_cache[key] = (cached[0], [o for o in cached[1] if o.id != offer_id])


def create_request(
    pool: GpuPool,
    *,
    label: str,
    token: str,
    models: provisioning.Provisioning | None = None,
    model_tokens: dict[str, str] | None = None,
    identity: machine_tls.Identity | None = None,
) -> CreateInstanceRequest:
    """What to launch: the pool's template, the port mapping and the token; with
    ``models``, the provisioning step (onstart bootstrap + payload) and the download
    tokens (environment variables named by ``models.token_env``); with ``identity``, the
    machine's TLS pair and the onstart line that installs it (``decisions/channel.py``)."""
    t = pool.spec.template
    models = models or provisioning.compose_provisioning(t)
    onstart = channel.with_tls(models.onstart) if identity is not None else models.onstart
    env = {
        **t.env,
        **vastai.port_env(t.comfy_port),
        "OPEN_BUTTON_TOKEN": token,
        "WARMPOOL_MODELS": " ".join(f"{m.folder}/{m.file}" for m in t.models),
        **models.env,
        **(model_tokens or {}),
        **(channel.tls_env(identity.cert_pem, identity.key_pem) if identity else {}),
    }
    return CreateInstanceRequest(
        image=t.image,
        disk_gb=t.disk_gb,
        label=label,
        env=env,
        onstart=onstart or None,
        bid_price=pool.spec.offer.bid_price if pool.spec.offer.interruptible else None,
    )


async def adopt(deps: Deps, inst: GpuInstance, rental: Instance, log: kopf.Logger) -> None:
    """Take over a rental that already carries our label (crash between create and status)."""
    ns = inst.metadata.namespace or "default"
    event("GpuInstance", inst.metadata, "Adopted",
                 f"rental {rental.id} already carried this instance's label; adopted it, "
                 "not rented again")  # fmt: skip
    await patch_status(
        deps.kube,
        kube.GPUINSTANCES,
        ns,
        inst.metadata.name,
        {
            "phase": "Provisioning",
            "reason": "Adopted",
            "message": f"rental {rental.id} already existed with this instance's label",
            "contractId": rental.id,
            "machineId": rental.machine_id,
            "hostId": rental.host_id,
            "gpuName": rental.gpu_name or "",
            "pricePerHour": rental.dph_total or 0.0,
            "rentedAt": inst.status.rented_at or format_time(_started(rental, deps.now())),
        },
    )


def _started(rental: Instance, now: datetime) -> datetime:
    """When the rental started: its start_date, but never later than now."""
    if rental.start_date is None:
        return now
    return min(now, datetime.fromtimestamp(rental.start_date, UTC))


async def rent(deps: Deps, inst: GpuInstance, pool: GpuPool, log: kopf.Logger) -> None:
    """Rent a machine for ``inst``: adopt by label, else budget check, choose, create.

    Choosing an offer and checking the budget happen under the pool's lock and end with
    a reservation (machine and price), so concurrent rentals of one pool never pick the
    same machine nor together cross the budget; the create call itself runs unlocked.
    """
    ns = inst.metadata.namespace or "default"
    label = rental_label(ns, pool.metadata.name, inst.metadata.uid or "")
    existing = await deps.vastai.find_instances_by_label(label)
    if existing:
        await adopt(deps, inst, existing[0], log)
        return
    if not deps.active.is_set():
        # This replica stands by for a peer (controllers/activity.py): a daemon Kopf is
        # still stopping never rents beside the replica that works now; that one rents.
        log.info("standing by for a peer: not renting for %s", inst.metadata.name)
        return
    if pool.spec.paused:
        await _pending(deps, inst, "PoolPaused", "the pool is paused; nothing is rented")
        return
    blocked = downloads.renting_blocked(pool.status.models_unavailable, pool.metadata.generation)
    if blocked is not None:
        await _pending(deps, inst, "ModelsUnavailable", blocked)
        return
    try:
        models = provisioning.compose_provisioning(
            pool.spec.template,
            stall_seconds=int(
                parse_duration(pool.spec.template.model_stall_timeout).total_seconds()
            ),
        )
        model_tokens = await secrets.read_model_tokens(deps.kube, ns, models.token_env)
    except ValueError as exc:
        await _pending(deps, inst, "InvalidTemplate", str(exc))
        return
    except errors.ModelTokenMissingError as exc:
        await _pending(deps, inst, "ModelTokenMissing", str(exc))
        return
    token = await secrets.ensure_token(deps.kube, ns, inst.metadata.name, inst.metadata.uid or "")
    identity = None
    if not deps.settings.comfy_allow_plain_http:
        identity = await secrets.read_identity(deps.kube, ns, inst.metadata.name)
        if identity is None:  # a token Secret made before TLS: no pinned pair to send
            missing = ("the instance's token Secret has no TLS pair (made by an older operator); "
                       "delete this GpuInstance and the pool makes a new one")  # fmt: skip
            await _pending(deps, inst, "ChannelCertificateMissing", missing)
            return
    request = create_request(pool, label=label, token=token, models=models,
                             model_tokens=model_tokens, identity=identity)  # fmt: skip
    reserved = deps.reservations.setdefault(f"{ns}/{pool.metadata.name}", {})
    for _ in range(OFFER_TRIES):
        pick = await reserve(deps, inst, pool, reserved)
        if isinstance(pick, tuple):
            await _pending(deps, inst, *pick)
            return
        try:
            if await create(deps, inst, pool, pick, request, label, log):
                return
        finally:
            reserved.pop(inst.metadata.name, None)
    await _pending(deps, inst, "OfferUnavailable", "every chosen offer was taken; retrying")


async def reserve(
    deps: Deps, inst: GpuInstance, pool: GpuPool, reserved: dict[str, Reservation]
) -> offers.OfferView | tuple[str, str]:
    """Under the pool's lock: the best offer that fits the budget, reserved for ``inst``.

    Returns (reason, message) when nothing can be rented now.
    """
    ns, name = inst.metadata.namespace or "default", inst.metadata.name
    now = deps.now()
    async with deps.lock(ns, pool.metadata.name):
        siblings = await deps.kube.list(
            kube.GPUINSTANCES, ns, label_selector=pool_selector(pool.metadata.name)
        )
        views = [instance_view(b) for b in siblings if b["metadata"]["name"] != name]
        live = [v for v in views if v.phase in LIVE_PHASES and not v.deleting]
        others = [r for n, r in reserved.items() if n != name]
        # Every object costs money until its rental is destroyed, deleting ones too; so do
        # the rentals other instances of the pool are making right now.
        current_hourly = budget.current_hourly(views) + sum(r.price_per_hour for r in others)
        spent = cold.spend_today(pool, siblings, now)
        fleet = await spending.fleet_spend(deps)
        busy = {v.machine_id for v in live if v.machine_id is not None}
        # The pool's cold instances keep their machines: a fresh rental there would take
        # the GPU they start on (the start would wait for ever: GpuTaken).
        stopped = [v for v in views if v.phase in COLD_PHASES and not v.deleting]
        busy |= {v.machine_id for v in stopped if v.machine_id is not None}
        busy |= {r.machine_id for r in others}
        found = [offer_view(o) for o in await search(deps, pool)]
        cooldown = parse_duration(pool.spec.failure_policy.host_cooldown)
        chosen = offers.choose_offers(
            found,
            pool.spec.offer,
            count=OFFER_CANDIDATES,
            ledger=pool.status.host_failures,
            unavailable=pool.status.unavailable_offers,
            busy_machines=busy,
            cooldown=cooldown,
            now=now,
            stopped_disk_gb=pool.spec.template.disk_gb if pool.spec.cold.replicas else 0.0,
        )
        _report_cooling(inst, pool, found, cooldown=cooldown, now=now)
        if not chosen:
            return ("NoOffers", "no Vast.ai offer matches the pool's filters "
                    "(outside cool-down and not already rented)")  # fmt: skip
        blocked: budget.BudgetVerdict | None = None
        for choice in chosen:
            verdict = budget.may_rent(
                choice.price_per_hour,
                pool.spec.budget,
                current_hourly=current_hourly,
                spend_today=spent,
                hours_left_today=budget.hours_left_today(now),
                fleet=fleet,
            )
            if verdict.allowed:
                reserved[name] = Reservation(choice.machine_id, choice.price_per_hour)
                return choice
            blocked = blocked or verdict  # a cheaper offer may still fit
        assert blocked is not None
        return ("BudgetBlocked", blocked.message)


def _report_cooling(
    inst: GpuInstance,
    pool: GpuPool,
    found: list[offers.OfferView],
    *,
    cooldown: timedelta,
    now: datetime,
) -> None:
    """An event naming the machines skipped because they failed recently."""
    if inst.status.reason == "HostCoolingDown":
        return
    cooling = [
        (o, hit)
        for o in found
        if offers.matches(o, pool.spec.offer)
        and (hit := offers.cooling_down(o, pool.status.host_failures, cooldown=cooldown,
                                        now=now)) is not None
    ]  # fmt: skip
    if cooling:
        machines = ", ".join(sorted({f"{o.machine_id} ({h.reason})" for o, h in cooling}))
        event("GpuInstance", inst.metadata, "HostCoolingDown",
                     f"skipped {len(cooling)} offer(s) on machines that failed recently: "
                     f"{machines}")  # fmt: skip


async def create(
    deps: Deps,
    inst: GpuInstance,
    pool: GpuPool,
    choice: offers.OfferView,
    request: CreateInstanceRequest,
    label: str,
    log: kopf.Logger,
) -> bool:
    """One create call. True when the instance has a rental now; False: try another offer."""
    ns, name = inst.metadata.namespace or "default", inst.metadata.name
    await patch_status(
        deps.kube, kube.GPUINSTANCES, ns, name,
        {"phase": "Renting", "label": label, "tokenSecret": secrets.token_secret_name(name),
         "reason": "Renting", "message": f"renting offer {choice.id}"},
    )  # fmt: skip
    try:
        created = await deps.vastai.create_instance(choice.id, request)
    except errors.VastaiOfferUnavailableError:
        _forget_offer(deps, pool, choice.id)
        await _mark_unavailable(deps, pool, choice.id)
        gone = f"offer {choice.id} was gone when renting it; trying another"
        event("GpuInstance", inst.metadata, "OfferUnavailable", gone)
        return False
    except (errors.VastaiServerError, errors.VastaiTimeoutError) as exc:
        # Ambiguous: the rental may exist. Reconcile by label, never re-create blindly.
        deps.inventory.invalidate()
        again = await deps.vastai.find_instances_by_label(label)
        if again:
            await adopt(deps, inst, again[0], log)
            return True
        raise errors.VastaiAmbiguousCreateError(
            f"create failed ambiguously: {exc}", retry_after=5
        ) from exc
    _forget_offer(deps, pool, choice.id)
    deps.inventory.invalidate()
    await patch_status(
        deps.kube, kube.GPUINSTANCES, ns, name,
        {
            "phase": "Provisioning",
            "reason": "Rented",
            "message": f"rented offer {choice.id} ({choice.gpu_name}, "
            f"${choice.price_per_hour:.3f}/h)",
            "contractId": created.instance_id,
            "machineId": choice.machine_id,
            "hostId": choice.host_id,
            "gpuName": choice.gpu_name,
            "pricePerHour": choice.price_per_hour,
            "rentedAt": format_time(deps.now()),
            "label": label,
        },
    )  # fmt: skip
    metrics.RENTALS.labels(ns, pool.metadata.name, inst.spec.reason or "Warm").inc()
    event("GpuInstance", inst.metadata, "Rented",
                 f"offer {choice.id} as contract {created.instance_id}: {choice.gpu_name}, "
                 f"${choice.price_per_hour:.3f}/h")  # fmt: skip
    return True


async def _pending(deps: Deps, inst: GpuInstance, reason: str, message: str) -> None:
    ns = inst.metadata.namespace or "default"
    if inst.status.reason != reason:
        event("GpuInstance", inst.metadata, reason, message,
                     warning=reason in ("BudgetBlocked", "NoOffers"))  # fmt: skip
    if inst.status.reason != reason or inst.status.message != message:
        await patch_status(
            deps.kube,
            kube.GPUINSTANCES,
            ns,
            inst.metadata.name,
            {"phase": "Pending", "reason": reason, "message": message},
        )


async def _mark_unavailable(deps: Deps, pool: GpuPool, offer_id: int) -> None:
    ns = pool.metadata.namespace or "default"

    def mutate(status: dict[str, Any]) -> dict[str, Any]:
        current = GpuPool.model_validate({"status": status}).status.unavailable_offers
        updated = offers.record_unavailable(current, offer_id, now=deps.now())
        return {"unavailableOffers": [u.model_dump(by_alias=True) for u in updated]}

    await update_status(deps.kube, kube.GPUPOOLS, ns, pool.metadata.name, mutate)
