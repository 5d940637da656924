"""The graph of one job's attempt: muse composed, content policy applied, reference images
planned (:func:`conditioning.plan_references`) and uploaded to the instance, the pool's
video family, then :func:`workflows.build_workflow`.

Raises :class:`errors.JobBuildError` (the job fails with its reason), or what the
workflow builder, the artifact store and the ComfyUI client raise (the runner decides).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from warmpool.crds.generationjob import GenerationJobSpec, ReferenceUse
from warmpool.crds.gpupool import GpuPool
from warmpool.crds.muse import Muse
from warmpool.operator import errors
from warmpool.operator.adapters import comfy, kube
from warmpool.operator.controllers.jobs.facts import JobFacts, PoolFacts
from warmpool.operator.decisions import (
    admission,
    conditioning,
    minors,
    prompts,
    references,
    workflows,
)
from warmpool.operator.deps import Deps

#: Status reason of a job the minors policy refuses (never submitted).
POLICY_REFUSED = "PolicyRefused"


def policy_message(refusal: minors.Refusal) -> str:
    """The status message of a refused job: which text, never the text itself."""
    where = "negative prompt" if refusal.where == "negative" else "prompt"
    return (
        f"refused by the content policy: the composed {where} suggests a person under 18 "
        "or steers away from adults; only adults may be depicted; it was not submitted"
    )


@dataclass(frozen=True)
class Built:
    """The workflow of an attempt and the spec it was built from (muse defaults applied)."""

    flow: workflows.Workflow
    spec: GenerationJobSpec
    references: ReferenceUse | None = None
    """How the muse's references are used (``status.references``)."""


async def build(
    deps: Deps,
    job: JobFacts,
    pool: PoolFacts,
    spec: GenerationJobSpec,
    *,
    status: dict[str, Any],
    client: comfy.ComfyClient,
) -> Built:
    """The graph of ``job`` for the instance behind ``client`` (see the module docstring)."""
    ns = job.namespace
    positive = negative = None
    muse = None
    if spec.muse_ref:
        body = await deps.kube.get(kube.MUSES, spec.muse_ref, ns)
        if body is None:
            raise errors.JobBuildError("MuseNotFound", f"muse {spec.muse_ref!r} does not exist")
        muse = Muse.from_body(body).spec
    composed = prompts.compose(muse, spec.prompt, spec.negative_prompt, variation=spec.variation)
    if muse is not None:
        positive, negative = composed.positive, composed.negative
    # The minors policy, second line (the studio is the first; kubectl bypasses it):
    # on the composed texts, before anything (reference upload, prompt) reaches ComfyUI.
    # The admission webhook applies this very function before the job is stored.
    refusal = admission.policy_refusal(spec, muse)
    if refusal is not None:
        raise errors.JobBuildError(POLICY_REFUSED, policy_message(refusal))
    if muse is not None and spec.model is None and muse.preferred_model:
        spec = spec.model_copy(update={"model": muse.preferred_model})
    if spec.model is None and spec.kind != "video":  # the pool's first image checkpoint
        spec = spec.model_copy(update={"model": pool.default_checkpoint})
    if spec.seed < 0 and status.get("seed") is not None:
        spec = spec.model_copy(update={"seed": int(status["seed"])})  # same on retry
    # The pool's template: its video family, or its style models for a muse's references.
    template = None
    if spec.kind == "video" or (muse is not None and muse.reference_images):
        body = await deps.kube.get(kube.GPUPOOLS, pool.name, pool.namespace)
        template = GpuPool.from_body(body).spec.template if body is not None else None
    plan = conditioning.plan_references(
        kind=spec.kind, checkpoint=spec.model or pool.default_checkpoint,
        own_reference=(own_reference := spec.reference_image),
        muse_references=muse.reference_images if muse is not None else (),
        styles=template.style_models if template is not None else (),
        job_strength=spec.reference_strength,
        muse_strength=muse.reference_strength if muse is not None else None,
    )  # fmt: skip
    spec = spec.model_copy(update={"reference_image": plan.start})
    # Only the owner's own uploads in this namespace (kubectl bypasses the studio),
    # every one of them checked before any is read.
    for key in plan.artifact_keys():
        ref = references.check_reference(key, namespace=ns, owner=spec.owner)
        if ref is not None:
            raise errors.JobBuildError(ref.reason, ref.message)
    uploads: dict[str, str] = {}
    for key in plan.artifact_keys():
        data = await deps.artifacts.get_bytes(key)
        name = f"warmpool-{job.uid}-{key.rsplit('/', 1)[-1]}"
        uploads[key] = await client.upload_image(data, name)
    family = None
    if spec.kind == "video" and template is not None:  # the pool's video family
        family = template.video_family(spec.model)
    flow = workflows.build_workflow(spec, namespace=ns, job=job.name, rng=random.Random(),
                                    positive=positive, negative=negative,
                                    reference_upload=uploads.get(plan.start or ""),
                                    family=family,
                                    style=conditioning.style_inputs(plan, uploads),
                                    checkpoint=pool.checkpoint(spec.model))  # fmt: skip
    use = conditioning.reference_use(plan, own_reference=own_reference)
    return Built(flow, spec, use)
