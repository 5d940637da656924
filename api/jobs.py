"""Generations: GenerationJob objects made, read, listed and cancelled for a user.

The rules the CRD schema cannot express live here: the minors policy (on each text
and on the composed prompt), the pool and
model must exist, the muse and reference image must be the caller's, and the
per-user limit of unfinished jobs.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, status

from warmpool.api import slots, urls
from warmpool.api.auth import OWNER_LABEL, User
from warmpool.api.problems import FieldError, not_found
from warmpool.api.schemas import (
    CheckpointOut,
    EstimateOut,
    GenerationOut,
    GenerationRequest,
    OutputOut,
    PresetOut,
    ReferenceModeOut,
)
from warmpool.api.state import Studio
from warmpool.crds.generationjob import TERMINAL_PHASES, GenerationJob
from warmpool.crds.gpupool import GpuPool
from warmpool.crds.muse import Muse, MuseSpec
from warmpool.operator.adapters import kube
from warmpool.operator.decisions import architectures, conditioning, prompts, workflows

MUSE_LABEL = "warmpool.dev/muse"
COMPOSED_ANNOTATION = "warmpool.dev/composed-prompt"
COMPOSED_MAX = 8000
QUEUE_RETRY_AFTER = "30"


def new_name(prefix: str) -> str:
    """A unique object name whose hex time part sorts by creation."""
    return f"{prefix}-{int(time.time() * 1000):011x}{secrets.token_hex(3)}"


def owner_of(obj: dict[str, Any]) -> str:
    return str((obj.get("spec") or {}).get("owner") or "")


def owner_selector(user: User, everyone: bool) -> str | None:
    return None if (everyone and user.admin) else f"{OWNER_LABEL}={user.label}"


def newest_first(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(o: dict[str, Any]) -> tuple[str, str]:
        meta = o.get("metadata") or {}
        return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))

    return sorted(items, key=key, reverse=True)


# ---------------------------------------------------------------- reading


async def get_owned(studio: Studio, user: User, res: kube.Resource, name: str) -> dict[str, Any]:
    """The object when it exists and the caller may touch it; 404 otherwise (no leak)."""
    obj = await studio.kube.get(res, name, studio.settings.studio_namespace)
    if obj is None or not user.may_touch(owner_of(obj)):
        raise not_found(res.kind)
    return obj


def to_out(obj: dict[str, Any], estimate: EstimateOut | None = None) -> GenerationOut:
    job = GenerationJob.from_body(obj)
    name = job.metadata.name
    outputs = [
        OutputOut(
            index=i,
            content_type=o.content_type,
            size=o.size,
            width=o.width,
            height=o.height,
            url=urls.output(name, i),
            thumbnail_url=urls.thumbnail(name, i),
        )
        for i, o in enumerate(job.status.outputs)
    ]
    return GenerationOut(
        name=name,
        created=job.metadata.creation_timestamp,
        owner=job.spec.owner,
        phase=job.status.phase,
        percent=100 if job.status.phase == "Succeeded" else job.status.progress.percent,
        message=job.status.message,
        spec=job.spec,
        status=job.status,
        outputs=outputs,
        events_url=urls.events(name),
        estimate=estimate,
        composed_prompt=job.metadata.annotations.get(COMPOSED_ANNOTATION),
        model=job.spec.model
        or (None if job.spec.kind == "video" else workflows.DEFAULT_CHECKPOINT),
    )


def progress_of(obj: dict[str, Any], deleted: bool = False) -> dict[str, Any]:
    """The data of a ``progress`` event (a job deleted before its end is ``Cancelled``)."""
    out = to_out(obj)
    phase = out.phase if (out.phase in TERMINAL_PHASES or not deleted) else "Cancelled"
    return {
        "name": out.name,
        "phase": phase,
        "percent": out.percent,
        "value": out.status.progress.value,
        "max": out.status.progress.max,
        "message": out.message,
        "outputs": [o.model_dump(by_alias=True) for o in out.outputs],
    }


# ---------------------------------------------------------------- checks


async def pool_for(studio: Studio, name: str) -> GpuPool:
    allowed = studio.settings.studio_pools
    obj = None
    if not allowed or name in allowed:
        # The shared watch's copy when it has one (no API call per submission); a pool it
        # has not seen yet (created a moment ago) is read from the API.
        watched = studio.pools
        if watched is not None and watched.synced.is_set():
            obj = watched.objects.get(name)
        if obj is None:
            obj = await studio.kube.get(kube.GPUPOOLS, name, studio.settings.studio_namespace)
    if obj is None:
        raise FieldError(["body", "pool"], f"unknown pool {name!r}", type="unknown_pool")
    return validated_pool(studio, obj)


def validated_pool(studio: Studio, obj: dict[str, Any]) -> GpuPool:
    """The pool's validated model, validated again only when its resourceVersion moved
    (callers read it, never change it)."""
    meta = obj.get("metadata") or {}
    name, version = str(meta.get("name") or ""), str(meta.get("resourceVersion") or "")
    cached = studio.validated_pools.get(name)
    if cached is not None and version and cached[0] == version:
        return cached[1]
    pool = GpuPool.from_body(obj)
    if version:
        studio.validated_pools[name] = (version, pool)
    return pool


def default_model(pool: GpuPool) -> str:
    """The checkpoint a job without ``model`` runs on ``pool`` (as the operator decides it)."""
    template = pool.spec.template
    return workflows.default_checkpoint(template.checkpoints, template.models)


def pool_models(studio: Studio, pool: GpuPool) -> list[str]:
    """Checkpoints a job on this pool may name."""
    names = pool.spec.template.image_checkpoints()
    names += [m for m in studio.settings.studio_models if m not in names]
    if not names:
        names = [default_model(pool)]
    return names


def checkpoints_out(studio: Studio, pool: GpuPool) -> list[CheckpointOut]:
    """Per checkpoint of the pool: its architecture and that architecture's presets, so the
    create page shows the defaults the operator will use."""
    out = []
    for name in pool_models(studio, pool):
        ckpt = pool.spec.template.checkpoint(name)
        presets = architectures.presets_for(ckpt)
        label = "Guidance" if ckpt.architecture == "flux-dev" else "" if ckpt.flux else "CFG"
        out.append(CheckpointOut(
            name=name, architecture=ckpt.architecture, split=ckpt.split,
            negative_prompt=not ckpt.flux, cfg_label=label,
            presets={q: PresetOut(steps=p.steps, width=p.width, height=p.height,
                                  cfg=(ckpt.guidance if ckpt.guidance is not None else p.cfg),
                                  sampler=p.sampler, scheduler=p.scheduler)
                     for q, p in presets.items()},
        ))  # fmt: skip
    return out


def reference_modes(studio: Studio, pool: GpuPool) -> list[ReferenceModeOut]:
    """Per checkpoint of the pool: whether a muse's references condition image jobs
    through a style model (Flux Redux) or the first one is the image-to-image start."""
    out = []
    for checkpoint in pool_models(studio, pool):
        style = conditioning.style_for(pool.spec.template.style_models, checkpoint, "image")
        if style is None:
            out.append(ReferenceModeOut(checkpoint=checkpoint, mode="start"))
        else:
            out.append(ReferenceModeOut(checkpoint=checkpoint, mode="style",
                                        architecture=style.architecture,
                                        style_model=style.style_model,
                                        max_references=style.max_references))  # fmt: skip
    return out


def price_per_hour(studio: Studio, pool: GpuPool) -> float:
    """$/hour of one instance: the current rentals' average, else the offer ceiling."""
    if pool.status.price_per_hour > 0 and pool.status.replicas > 0:
        return round(pool.status.price_per_hour / pool.status.replicas, 6)
    if pool.spec.offer.max_price_per_hour:
        return pool.spec.offer.max_price_per_hour
    return studio.settings.studio_fallback_price_per_hour


def check_text(studio: Studio, loc: list[str | int], text: str) -> None:
    blocked = studio.blocklist.check(text)
    if blocked is not None:
        raise FieldError(loc, blocked.message, type="content_policy")


def check_composed(
    studio: Studio,
    prefix: list[str | int],
    muse: MuseSpec | None,
    prompt: str,
    negative: str,
    *,
    positive_field: str = "prompt",
    variation: str | None = None,
) -> None:
    """The policy on what is really sent: the muse template composed with the prompt."""
    composed = prompts.compose(muse, prompt, negative, variation=variation)
    refusal = studio.blocklist.check_prompt(
        composed.positive, composed.negative, person=muse is not None
    )
    if refusal is not None:
        field = "negativePrompt" if refusal.where == "negative" else positive_field
        raise FieldError([*prefix, field], refusal.message, type="content_policy")


def check_reference(studio: Studio, user: User, loc: list[str | int], key: str) -> None:
    if not studio.uploads.owns(user, key):
        raise FieldError(loc, "not one of your uploaded images", type="unknown_upload")


async def muse_for(studio: Studio, user: User, name: str) -> Muse:
    obj = await studio.kube.get(kube.MUSES, name, studio.settings.studio_namespace)
    if obj is None or not user.may_touch(owner_of(obj)):
        raise FieldError(["body", "museRef"], f"unknown muse {name!r}", type="unknown_muse")
    return Muse.from_body(obj)


async def checked(
    studio: Studio, user: User, req: GenerationRequest
) -> tuple[GenerationRequest, GpuPool, Muse | None]:
    """Every rule beyond the schema; fills the model from the muse when unset."""
    check_text(studio, ["body", "prompt"], req.prompt)
    muse = await muse_for(studio, user, req.muse_ref) if req.muse_ref else None
    if muse is not None and req.variation and muse.spec.variation(req.variation) is None:
        names = [v.name for v in muse.spec.variations]
        raise FieldError(["body", "variation"],
                         f"muse {muse.metadata.name!r} has no variation {req.variation!r} "
                         f"(it has {names})", type="unknown_variation")  # fmt: skip
    check_composed(studio, ["body"], muse.spec if muse else None, req.prompt, req.negative_prompt,
                   variation=req.variation)  # fmt: skip
    pool = await pool_for(studio, req.pool)
    if req.kind == "video":
        check_video_family(pool, req)
        if req.reference_image is not None:
            check_reference(studio, user, ["body", "referenceImage"], req.reference_image)
        return req, pool, muse
    models = pool_models(studio, pool)
    if req.model is None and muse and muse.spec.preferred_model in models:
        req = req.model_copy(update={"model": muse.spec.preferred_model})
    if req.model is None:  # what the operator would run: named, so the views show it
        req = req.model_copy(update={"model": default_model(pool)})
    if req.model is not None and req.model not in models:
        raise FieldError(
            ["body", "model"],
            f"unknown model {req.model!r} for pool {pool.metadata.name!r}",
            type="unknown_model",
        )
    if req.reference_image is not None:
        check_reference(studio, user, ["body", "referenceImage"], req.reference_image)
    return req, pool, muse


def check_video_family(pool: GpuPool, req: GenerationRequest) -> None:
    """A video job needs one of the pool's ``videoFamilies`` (``model`` names it)."""
    template = pool.spec.template
    family = template.video_family(req.model)
    if family is None:
        names = [f.name for f in template.video_families]
        raise FieldError(
            ["body", "model"] if req.model else ["body", "kind"],
            f"pool {pool.metadata.name!r} has no video family {req.model!r} (it has {names})"
            if req.model
            else f"pool {pool.metadata.name!r} declares no video model; use kind animation",
            type="no_video_family",
        )
    mode = "image" if req.reference_image else "text"
    if mode not in family.modes:
        raise FieldError(["body", "referenceImage"],
                         f"video family {family.name!r} does not do {mode}-to-video",
                         type="unsupported_video_mode")  # fmt: skip


def estimate_of(
    studio: Studio, req: GenerationRequest, pool: GpuPool, muse: Muse | None
) -> EstimateOut:
    price = price_per_hour(studio, pool)
    family = pool.spec.template.video_family(req.model) if req.kind == "video" else None
    model = req.model or default_model(pool)
    checkpoint = pool.spec.template.checkpoint(model)
    est = workflows.estimate(req, price_per_hour=price, family=family, checkpoint=checkpoint)
    composed = prompts.compose(
        muse.spec if muse else None, req.prompt, req.negative_prompt, variation=req.variation
    )
    wait, why = expected_wait(studio, pool, est.seconds)
    plan = conditioning.plan_references(  # the very plan the operator makes for this job
        kind=req.kind, checkpoint=model,
        own_reference=req.reference_image,
        muse_references=muse.spec.reference_images if muse else (),
        styles=pool.spec.template.style_models, job_strength=req.reference_strength,
        muse_strength=muse.spec.reference_strength if muse else None,
    )  # fmt: skip
    return EstimateOut(
        pool=pool.metadata.name,
        seconds=est.seconds,
        dollars=est.dollars,
        price_per_hour=price,
        positive=composed.positive,
        negative=composed.negative,
        wait_seconds=wait,
        wait_reason=why,
        reference_mode=plan.mode,
        references=len(plan.references),
        references_left_out=plan.left_out,
        architecture="" if req.kind == "video" else checkpoint.architecture,
        notes=list(architectures.notes_for(checkpoint, kind=req.kind,
                                                     negative=composed.negative, cfg=req.cfg)),
    )  # fmt: skip


def expected_wait(studio: Studio, pool: GpuPool, seconds: float) -> tuple[float, str]:
    """Seconds before a machine takes the job, from the pool's status: the jobs ahead
    shared over the ready machines, plus renting and booting one when none is ready."""
    st = pool.status
    ahead = st.queued_jobs * seconds
    if pool.spec.paused:
        return 0.0, "the pool is paused: the job waits until it resumes"
    if st.ready_replicas > 0:
        wait = round(ahead / st.ready_replicas, 1)
        return wait, (f"{st.queued_jobs} job(s) ahead" if st.queued_jobs else "a machine is ready")
    boot = studio.settings.studio_boot_estimate_seconds
    starting = "a machine is starting" if st.replicas > 0 else "no machine is warm: one is rented"
    return round(boot + ahead, 1), starting


# ---------------------------------------------------------------- writing


async def admit(studio: Studio, user: User, name: str) -> bool:
    """Take a place for job ``name`` under the caller's limit of unfinished jobs, exact
    across replicas (:mod:`slots`): False when the caller is at the limit."""
    limit = studio.settings.studio_max_queued_jobs
    hub = studio.hub

    async def count(recent: Collection[str]) -> int:
        if hub.synced.is_set():  # the watch's view: no API call per submission
            seen = slots.unfinished(hub.unfinished_names(user.name), recent, hub.seen)
            if seen < limit:
                return seen
        # At the limit (or before the watch synced): confirmed by listing, so a job that
        # finished a moment ago, not yet seen by the watch, never blocks a submission.
        items = await studio.kube.list(
            kube.GENERATIONJOBS,
            studio.settings.studio_namespace,
            label_selector=f"{OWNER_LABEL}={user.label}",
        )
        phases = {
            str((o.get("metadata") or {}).get("name")): (o.get("status") or {}).get(
                "phase", "Queued"
            )
            for o in items
            if owner_of(o) == user.name
        }
        listed = [n for n, phase in phases.items() if phase not in TERMINAL_PHASES]
        return slots.unfinished(listed, recent, phases.__contains__)

    return await studio.slots.reserve(
        user.name, name, limit=limit, count=count, now=datetime.now(UTC)
    )


async def create(studio: Studio, user: User, req: GenerationRequest) -> GenerationOut:
    req, pool, muse = await checked(studio, user, req)
    return await create_checked(studio, user, req, pool, muse, estimate_of(studio, req, pool, muse))


async def create_checked(
    studio: Studio,
    user: User,
    req: GenerationRequest,
    pool: GpuPool,
    muse: Muse | None,
    estimate: EstimateOut,
) -> GenerationOut:
    """:func:`create` for a request :func:`checked` already passed (with its estimate)."""
    name = new_name("gen")
    if not await admit(studio, user, name):
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"at most {studio.settings.studio_max_queued_jobs} unfinished generations "
            "at once; wait for one to finish",
            headers={"Retry-After": QUEUE_RETRY_AFTER},
        )
    spec = req.model_dump(by_alias=True, exclude_none=True, mode="json")
    spec["owner"] = user.name
    labels = {OWNER_LABEL: user.label}
    if req.muse_ref and len(req.muse_ref) <= 63:
        labels[MUSE_LABEL] = req.muse_ref
    # The composed prompt as the studio previewed it, shown after the run.
    annotations = {COMPOSED_ANNOTATION: estimate.positive[:COMPOSED_MAX]}
    body = {
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": spec,
    }
    try:
        obj = await studio.kube.create(kube.GENERATIONJOBS, body, studio.settings.studio_namespace)
    except BaseException:
        await studio.slots.release(name)
        raise
    studio.hub.created(obj)
    studio.slots.noted(name)
    return to_out(obj, estimate)


async def cancel(studio: Studio, user: User, name: str) -> None:
    await get_owned(studio, user, kube.GENERATIONJOBS, name)
    await studio.kube.delete(kube.GENERATIONJOBS, name, studio.settings.studio_namespace)
