"""Following a rental from contract to Ready, and keeping it healthy.

Facts come from the shared inventory (one Vast.ai listing per interval for all
instances) and from ComfyUI probes; :func:`lifecycle.decide_instance` decides.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import kopf

from warmpool.crds.common import format_time, parse_duration, parse_optional_time
from warmpool.crds.generationjob import GenerationJobSpec
from warmpool.crds.gpuinstance import COLD_PHASES, GpuInstance
from warmpool.crds.gpupool import GpuPool
from warmpool.operator import errors, metrics
from warmpool.operator.adapters import comfy, kube, secrets
from warmpool.operator.adapters.status import patch_status
from warmpool.operator.adapters.vastai_models import Instance
from warmpool.operator.controllers import failures
from warmpool.operator.controllers.cache import CLOCK_FIELDS
from warmpool.operator.controllers.events import event
from warmpool.operator.controllers.instance import models, termination
from warmpool.operator.decisions import addresses, downloads, lifecycle, workflows
from warmpool.operator.deps import Deps

#: Probe attempt time-out, seconds (the daemon's cadence spaces the attempts).
PROBE_TIMEOUT = 5.0
#: Status and event reason of a rental whose address the operator refuses to contact.
ADDRESS_REFUSED = "MachineAddressRefused"


def rental_view(rec: Instance | None, port: int) -> lifecycle.RentalView:
    """The decision layer's view of what Vast.ai says about a rental."""
    if rec is None:
        return lifecycle.RentalView(present=False)
    return lifecycle.RentalView(
        present=True,
        actual_status=rec.actual_status,
        intended_status=rec.intended_status,
        cur_state=rec.cur_state,
        status_msg=rec.status_msg,
        has_port=rec.host_port(port) is not None,
        public_ip=rec.public_ipaddr,
    )


async def run_probe(
    deps: Deps, inst: GpuInstance, pool: GpuPool, url: str
) -> tuple[lifecycle.ProbeView, dict[str, Any]]:
    """Probe ComfyUI once; run the canary when everything else is there and it is due.

    Returns the probe view and the status timestamps reached now.
    """
    now = deps.now()
    stamps: dict[str, Any] = {}
    # The token and the pinned certificate never change for an instance (read once); the
    # probe goes over the URL's own small connection pool (a shared pool is scanned on
    # every request).
    ns = inst.metadata.namespace or "default"
    token = await deps.tokens.get(ns, inst.metadata.name, secret=inst.status.token_secret)
    pin = await deps.tokens.pin(ns, inst.metadata.name, secret=inst.status.token_secret)
    models = [(m.folder, m.file) for m in pool.spec.template.models]
    result = await comfy.probe(
        deps.comfy.http_for(url, pin), url, token, required_models=models, deadline=0.0,
        attempt_timeout=PROBE_TIMEOUT, limits=deps.comfy.limits,
        allow_http=deps.comfy.allow_http,
    )  # fmt: skip
    if not result.ready:
        reason = result.reason.value if result.reason else "unknown"
        stage: lifecycle.ProbeStage = (
            "models" if result.reason is comfy.ProbeReason.MODEL_MISSING else "answering"
        )
        if stage == "models" and not inst.status.answering_at:
            stamps["answeringAt"] = format_time(now)
        return lifecycle.ProbeView(ok=False, stage=stage, reason=reason,
                                   message=result.message), stamps  # fmt: skip
    if not inst.status.answering_at:
        stamps["answeringAt"] = format_time(now)
    if not inst.status.models_at:
        stamps["modelsAt"] = format_time(now)
    canary = pool.spec.readiness.canary
    if inst.status.ready_at or not canary.enabled:
        return lifecycle.ProbeView(ok=True, stage="canary", reason="", message="ready"), stamps
    try:
        await run_canary(deps, inst, pool, url, token, pin=pin)
    except (errors.ComfyError, TimeoutError) as exc:
        return lifecycle.ProbeView(ok=False, stage="canary", reason="canary_failed",
                                   message=str(exc)[:300]), stamps  # fmt: skip
    return lifecycle.ProbeView(ok=True, stage="canary", reason="", message="canary done"), stamps


async def run_canary(
    deps: Deps,
    inst: GpuInstance,
    pool: GpuPool,
    url: str,
    token: str | None,
    *,
    pin: str | None = None,
) -> None:
    """A small real generation: the checkpoint ends up in GPU memory before any job."""
    canary = pool.spec.readiness.canary
    # The first image checkpoint (a file in models/checkpoints, or split Flux files), run
    # the way the pool declares it: a split Flux pool has no checkpoint file to load.
    checkpoint = next(iter(pool.spec.template.image_checkpoints()), None)
    spec = GenerationJobSpec(
        pool=pool.metadata.name,
        prompt="warmpool canary: a small red cube on a white table",
        quality="low",
        model=checkpoint,
        width=_side(canary.size),
        height=_side(canary.size),
        steps=canary.steps,
        seed=1,
    )
    flow = workflows.build_workflow(
        spec,
        namespace=inst.metadata.namespace or "default",
        job=f"canary-{inst.metadata.name}",
        checkpoint=pool.spec.template.checkpoint(checkpoint) if checkpoint else None,
    )
    client = deps.comfy.client(url, token, timeout=deps.settings.comfy_timeout, pin=pin)
    deadline = parse_duration(canary.timeout).total_seconds()
    await client.run_prompt(flow.graph, deadline=deadline)


def _side(size: int) -> int:
    return max(64, size - size % 16)


def unchanged(current: dict[str, Any], patch: dict[str, Any], *, now: datetime,
              refresh: float) -> bool:  # fmt: skip
    """Whether ``patch`` would only move the clock fields (:data:`cache.CLOCK_FIELDS`),
    refreshed less than ``refresh`` seconds ago: then the write (and the watch event every
    replica handles) is skipped."""
    for key, value in patch.items():
        if key == "lastProbe":
            seen = current.get(key) or {}
            if any(seen.get(k) != value.get(k) for k in ("ok", "reason", "message")):
                return False
        elif key not in CLOCK_FIELDS and current.get(key) != value:
            return False
    probed = parse_optional_time((current.get("lastProbe") or {}).get("time"))
    return probed is not None and (now - probed).total_seconds() < refresh


def probe_due(deps: Deps, inst: GpuInstance, rec: Instance | None, url: str,
              now: datetime) -> bool:  # fmt: skip
    """Whether ComfyUI is probed in this step: always on the way to Ready and whenever
    something is off; a Ready instance that Vast.ai lists as running and whose last probe
    passed is probed every ``ready_probe_interval`` seconds only (and its jobs' progress
    shows it alive in between)."""
    s = inst.status
    if s.phase not in ("Ready", "Draining") or url != s.comfy_url or s.probe_failures:
        return True
    if rec is None or rec.actual_status != "running" or not s.last_probe.ok:
        return True
    key = f"{inst.metadata.namespace or 'default'}/{inst.metadata.name}"
    probed = deps.probed_at.get(key) or parse_optional_time(s.last_probe.time)
    interval = deps.settings.ready_probe_interval
    return probed is None or (now - probed).total_seconds() >= interval


async def write_status(deps: Deps, inst: GpuInstance, patch: dict[str, Any]) -> None:
    """Merge-patch the instance's status and remember the version written (the next step
    uses the live body instead of reading the object again when it shows this version)."""
    ns, name = inst.metadata.namespace or "default", inst.metadata.name
    with contextlib.suppress(errors.KubeNotFoundError):
        written = await deps.kube.patch(kube.GPUINSTANCES, name, ns, {"status": patch},
                                        subresource="status")  # fmt: skip
        deps.seen_versions[f"{ns}/{name}"] = str(written["metadata"].get("resourceVersion"))


async def follow(
    deps: Deps, inst: GpuInstance, pool: GpuPool, log: kopf.Logger,
    status_body: dict[str, Any] | None = None,
) -> bool:  # fmt: skip
    """One observation of a rented instance. True when it is Ready.

    ``status_body``: the object's ``status`` as read (JSON), to skip a write that would
    change nothing but the clock fields (:func:`unchanged`)."""
    assert inst.status.contract_id is not None
    status_body = status_body or {}
    ns = inst.metadata.namespace or "default"
    port = pool.spec.template.comfy_port
    rec = await deps.inventory.by_id(inst.status.contract_id)
    if rec is None and deps.inventory.age is not None and deps.inventory.age > 0:
        # Not in a possibly stale listing: make sure before declaring it vanished.
        deps.inventory.invalidate()
        rec = await deps.inventory.by_id(inst.status.contract_id)
    if rec is not None and rec.intended_status == "stopped" and await _went_cold(deps, inst):
        return False  # the pool stopped it (cold tier) while this step began: not a failure
    now = deps.now()
    s = inst.status
    patch: dict[str, Any] = {}
    since = status_since(inst, rec, now)
    if rec is not None:
        patch.update(
            actualStatusSince=format_time(since),
            actualStatus=rec.actual_status,
            intendedStatus=rec.intended_status,
            curState=rec.cur_state,
            statusMsg=(rec.status_msg or "")[:500] or None,
        )
        if rec.actual_status == "running" and not s.running_at:
            patch["runningAt"] = format_time(now)
    url = machine_url(deps, rec, port)
    if url is None and s.phase in ("Ready", "Draining") and s.comfy_url:
        # Vast.ai says it is not running (offline, unknown...): whether ComfyUI still
        # answers decides, after `unreachableProbes` failures in a row.
        url = s.comfy_url
    if url and (refusal := refused_machine(deps, rec, url)):
        await _address_refused(deps, inst, pool, patch, refusal, now)
        return False
    probe: lifecycle.ProbeView | None = None
    if url and models.needs_downloads(inst, pool):
        token = await secrets.read_token(deps.kube, ns, inst.metadata.name)
        pin = await deps.tokens.pin(ns, inst.metadata.name)
        patch["models"], verdict = await models.observe(deps, pool, url, token, pin=pin)
        if models.bytes_done(patch["models"]) > sum(m.bytes_done for m in s.models):
            patch["modelsProgressAt"] = format_time(now)
        if verdict.action in ("replace", "stop_renting"):
            patch["comfyUrl"] = url
            await _models_failed(deps, inst, pool, patch, verdict, now)
            return False
    if url and probe_due(deps, inst, rec, url, now):
        patch["comfyUrl"] = url
        probe, stamps = await run_probe(deps, inst, pool, url)
        deps.probed_at[f"{ns}/{inst.metadata.name}"] = now
        patch.update(stamps)
        patch["lastProbe"] = {"time": format_time(now), "ok": probe.ok, "reason": probe.reason,
                              "message": probe.message[:300]}  # fmt: skip
        patch["probeFailures"] = 0 if probe.ok else s.probe_failures + 1
        if probe.reason == "model_missing" and s.last_probe.reason != "model_missing":
            event("GpuInstance", inst.metadata, "ModelMissing", probe.message,
                         warning=True)  # fmt: skip
    running_at = parse_optional_time(patch.get("runningAt") or s.running_at)
    decision = lifecycle.decide_instance(
        status_since=since,
        progress_at=parse_optional_time(patch.get("modelsProgressAt") or s.models_progress_at),
        phase=s.phase,
        rental=rental_view(rec, port),
        probe=probe,
        probe_failures=patch.get("probeFailures", s.probe_failures),
        rented_at=parse_optional_time(s.rented_at),
        running_at=running_at,
        ready_at=parse_optional_time(s.ready_at),
        now=now,
        policy=pool.spec.failure_policy,
        readiness=pool.spec.readiness,
    )
    patch["phase"] = decision.phase
    if decision.reason:
        patch["reason"] = decision.reason
        patch["message"] = decision.message
    if decision.phase == "Ready" and not s.ready_at:
        now = deps.now()  # after the probe and the canary
        patch["readyAt"] = format_time(now)
        await _became_ready(deps, inst, pool, patch, now, log)
        await models.clear_unavailable(deps, pool)
    patch["cost"] = accrued(inst, now)
    if decision.terminate or not unchanged(
        status_body, patch, now=now, refresh=deps.settings.status_refresh
    ):
        await write_status(deps, inst, patch)
    if decision.terminate:
        event("GpuInstance", inst.metadata, decision.reason, decision.message,
                     warning=True)  # fmt: skip
        await record_failure(deps, inst, pool, decision.reason, decision.message, now)
        await termination.terminate(deps, inst, reason=decision.reason, message=decision.message)
        return False
    return decision.phase == "Ready"


async def _models_failed(
    deps: Deps,
    inst: GpuInstance,
    pool: GpuPool,
    patch: dict[str, Any],
    verdict: downloads.ModelsVerdict,
    now: datetime,
) -> None:
    """A download failed: replace the instance (cooling its host down for a disk or a stall),
    or, for a configuration error, also stop the pool renting (no host is blamed)."""
    ns = inst.metadata.namespace or "default"
    patch.update(reason=verdict.reason, message=verdict.message)
    patch["cost"] = accrued(inst, now)
    await patch_status(deps.kube, kube.GPUINSTANCES, ns, inst.metadata.name, patch)
    event("GpuInstance", inst.metadata, verdict.reason, verdict.message, warning=True)
    if verdict.configuration_error:
        await models.record_unavailable(deps, pool, verdict, now)
        stop = f"{verdict.message}: the pool stops renting until it is edited"
        event("GpuPool", pool.metadata, verdict.reason, stop, warning=True)
    await record_failure(deps, inst, pool, verdict.reason, verdict.message, now,
                         cool_down=verdict.cool_down)  # fmt: skip
    await termination.terminate(deps, inst, reason=verdict.reason, message=verdict.message)


async def _went_cold(deps: Deps, inst: GpuInstance) -> bool:
    """Whether the pool moved the instance to the cold tier (its phase says so now, or a
    step that began before the stop wrote its old phase back: ``stoppedAt`` is newer than
    the last start); the phase is put back to ``Stopped`` then."""
    ns = inst.metadata.namespace or "default"
    fresh = await deps.kube.get(kube.GPUINSTANCES, inst.metadata.name, ns)
    if fresh is None:
        return False
    status = GpuInstance.from_body(fresh).status
    if status.phase in COLD_PHASES:
        return True
    stopped, resumed = (
        parse_optional_time(status.stopped_at),
        parse_optional_time(status.resumed_at),
    )
    if stopped is None or (resumed is not None and resumed >= stopped):
        return False
    await patch_status(deps.kube, kube.GPUINSTANCES, ns, inst.metadata.name, {"phase": "Stopped"})
    return True


def machine_url(deps: Deps, rec: Instance | None, port: int) -> str | None:
    """The ComfyUI URL of a running rental: ``https://`` (the pinned channel the rental was
    given at launch) unless plain HTTP is allowed; None while it does not run."""
    if rec is None or rec.actual_status != "running":
        return None
    return rec.url_for(port, scheme="http" if deps.settings.comfy_allow_plain_http else "https")


def refused_machine(deps: Deps, rec: Instance | None, url: str) -> str | None:
    """Why the machine behind ``url`` must not be contacted (issue 15), or None: the
    address the rental reports and the host the URL really names are both checked."""
    allowed = deps.settings.allowed_machine_networks
    reported = rec.public_ipaddr if rec is not None and rec.public_ipaddr else None
    if reported is not None and (refusal := addresses.refused_address(reported, allowed=allowed)):
        return refusal
    return addresses.refused_address(urlsplit(url).hostname or "", allowed=allowed)


async def _address_refused(
    deps: Deps,
    inst: GpuInstance,
    pool: GpuPool,
    patch: dict[str, Any],
    refusal: str,
    now: datetime,
) -> None:
    """A rental reports an address in the operator's own networks (private, loopback,
    link-local...): no request goes to it, the rental is released and replaced. The
    machine is cooled down: it reports the same address to the next rental too, and the
    cheapest offer would otherwise be rented again at once; the breaker counts it."""
    ns = inst.metadata.namespace or "default"
    patch.update(reason=ADDRESS_REFUSED, message=refusal)
    patch["cost"] = accrued(inst, now)
    await patch_status(deps.kube, kube.GPUINSTANCES, ns, inst.metadata.name, patch)
    event("GpuInstance", inst.metadata, ADDRESS_REFUSED, refusal, warning=True)
    await record_failure(deps, inst, pool, ADDRESS_REFUSED, refusal, now)
    await termination.terminate(deps, inst, reason=ADDRESS_REFUSED, message=refusal)


def status_since(inst: GpuInstance, rec: Instance | None, now: datetime) -> datetime:
    """Since when the rental has had its current ``actual_status`` (the offline grace of
    :func:`lifecycle.decide_instance` counts from it, as in the economics engine), from
    the object's ``actualStatusSince`` (written with it, so the grace survives restarts)."""
    return lifecycle.status_since(
        rec.actual_status if rec is not None else None,
        last=inst.status.actual_status,
        last_since=parse_optional_time(inst.status.actual_status_since),
        now=now,
    )


def accrued(inst: GpuInstance, now: datetime) -> float:
    """Dollars accrued: earlier billing periods (a cold-tier stop or start changed the
    price) plus the current price since it applies."""
    s = inst.status
    since = parse_optional_time(s.billed_from or s.rented_at)
    if since is None:
        return 0.0
    current = s.price_per_hour * max(0.0, (now - since).total_seconds()) / 3600.0
    return round(s.cost_before + current, 6)


async def _became_ready(
    deps: Deps,
    inst: GpuInstance,
    pool: GpuPool,
    patch: dict[str, Any],
    now: datetime,
    log: kopf.Logger,
) -> None:
    ns, pool_name = pool.metadata.namespace or "default", pool.metadata.name
    rented = parse_optional_time(inst.status.rented_at)
    if rented is not None:
        metrics.RENT_TO_READY.labels(ns, pool_name).observe((now - rented).total_seconds())
    steps = [
        ("running", inst.status.rented_at, patch.get("runningAt") or inst.status.running_at),
        ("answering", patch.get("runningAt") or inst.status.running_at,
         patch.get("answeringAt") or inst.status.answering_at),
        ("models", patch.get("answeringAt") or inst.status.answering_at,
         patch.get("modelsAt") or inst.status.models_at),
        ("canary", patch.get("modelsAt") or inst.status.models_at, patch.get("readyAt")),
    ]  # fmt: skip
    for step, start, end in steps:
        a, b = parse_optional_time(start), parse_optional_time(end)
        if a is not None and b is not None:
            metrics.READY_PHASE_SECONDS.labels(ns, pool_name, step).observe((b - a).total_seconds())
    event(
        "GpuInstance",
        inst.metadata,
        "Ready",
        f"ComfyUI answers, models present, canary done ({inst.status.gpu_name})",
    )
    ns = pool.metadata.namespace or "default"
    await failures.record_success(deps.kube, ns, pool.metadata.name, rental=inst.metadata.name,
                                  now=now)  # fmt: skip


async def record_failure(
    deps: Deps,
    inst: GpuInstance,
    pool: GpuPool,
    reason: str,
    message: str,
    now: datetime,
    *,
    cool_down: bool = True,
) -> None:
    """A failed rental: the host goes into cool-down (unless ``cool_down`` is False: not the
    host's fault) and, before it was ever Ready, the breaker window learns of it."""
    metrics.RENTAL_FAILURES.labels(
        pool.metadata.namespace or "default", pool.metadata.name, reason
    ).inc()
    s = inst.status
    await failures.record_failure(
        deps.kube, pool.metadata.namespace or "default", pool.metadata.name,
        machine_id=s.machine_id if cool_down else None, host_id=s.host_id, reason=reason,
        message=message, cooldown=parse_duration(pool.spec.failure_policy.host_cooldown),
        now=now, rental=None if s.ready_at else inst.metadata.name,
    )  # fmt: skip
