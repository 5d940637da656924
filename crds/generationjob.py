"""GenerationJob: a request for images or a video from a pool.

Deleting a job that is running interrupts it on ComfyUI.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from warmpool.crds.common import CamelModel, Condition, Duration, ObjectMeta, with_rules
from warmpool.crds.stylemodel import MAX_STRENGTH

Quality = Literal["low", "medium", "high", "ultra"]
#: ``video``: a real video model of the pool (``template.videoFamilies``), saved as MP4;
#: ``animation``: SDXL frames saved as an animated WEBP, for pools without a video model.
JobKind = Literal["image", "video", "animation"]
JobPhase = Literal["Queued", "Scheduled", "Running", "Succeeded", "Failed", "Cancelled"]
TERMINAL_PHASES: tuple[JobPhase, ...] = ("Succeeded", "Failed", "Cancelled")

MAX_PROMPT = 4000
MAX_SIDE = 4096
MIN_SIDE = 64
MAX_SEED = 2**53 - 1  # exact in JSON numbers everywhere, JavaScript included
#: Sides are multiples of 16: the latent is 1/8 of the image, and the video and
#: newer image models need an even latent size. (1000 is refused, 1008 accepted.)
SIDE_STEP = 16


class LoraRef(CamelModel):
    """A LoRA applied on top of the checkpoint."""

    name: str = Field(min_length=1, max_length=255, description="LoRA file name (loras folder).")
    strength: float = Field(1.0, ge=-5, le=5, description="Strength for model and CLIP.")


class GenerationJobSpec(CamelModel):
    """What to generate, where, and for whom."""

    model_config = with_rules(
        {
            "rule": "self.kind != 'image' || !has(self.frames)",
            "message": "frames is only for video and animation jobs",
            "fieldPath": ".frames",
        },
        {
            "rule": "!has(self.denoise) || has(self.referenceImage)",
            "message": "denoise needs a referenceImage",
            "fieldPath": ".denoise",
        },
        {
            "rule": "!has(self.variation) || has(self.museRef)",
            "message": "variation needs a museRef",
            "fieldPath": ".variation",
        },
        {
            "rule": "!has(self.referenceStrength) || has(self.museRef)",
            "message": "referenceStrength needs a museRef",
            "fieldPath": ".referenceStrength",
        },
    )

    pool: str = Field(min_length=1, max_length=253, description="GpuPool to run on.")
    kind: JobKind = Field(
        "image",
        description="image, video (a video family of the pool: MP4) or animation (animated WEBP).",
    )
    prompt: str = Field(
        min_length=1, max_length=MAX_PROMPT, description="What to generate (1–4000 characters)."
    )
    negative_prompt: str = Field("", max_length=MAX_PROMPT, description="What to avoid.")
    muse_ref: str | None = Field(
        None, max_length=253, description="Name of a Muse whose prompt is composed in."
    )
    variation: str | None = Field(
        None, max_length=63, description="Name of one of the muse's variations."
    )
    model: str | None = Field(
        None,
        max_length=255,
        description=(
            "Checkpoint file name (default: the preset's); for a video job, the name of "
            "one of the pool's videoFamilies (default: its first)."
        ),
    )
    quality: Quality = Field("medium", description="Preset: low, medium, high or ultra.")
    width: int | None = Field(
        None, ge=MIN_SIDE, le=MAX_SIDE, multiple_of=SIDE_STEP, description="Width in pixels."
    )
    height: int | None = Field(
        None, ge=MIN_SIDE, le=MAX_SIDE, multiple_of=SIDE_STEP, description="Height in pixels."
    )
    steps: int | None = Field(None, ge=1, le=150, description="Sampler steps.")
    cfg: float | None = Field(
        None,
        ge=0,
        le=30,
        description=(
            "Classifier-free guidance scale; on a flux-dev checkpoint the Flux guidance "
            "(the sampler runs at CFG 1), on flux-schnell ignored."
        ),
    )
    sampler: str | None = Field(None, max_length=64, description="KSampler sampler_name.")
    scheduler: str | None = Field(None, max_length=64, description="KSampler scheduler.")
    seed: int = Field(-1, ge=-1, le=MAX_SEED, description="Seed; -1 = choose one and record it.")
    batch_size: int = Field(1, ge=1, le=16, description="Images per job.")
    frames: int | None = Field(None, ge=1, le=240, description="Video frames.")
    fps: int | None = Field(None, ge=1, le=60, description="Video frames per second.")
    lora: LoraRef | None = Field(None, description="Optional LoRA.")
    reference_image: str | None = Field(
        None,
        max_length=512,
        description="Artifact key of a reference image (image-to-image, image-to-video).",
    )
    denoise: float | None = Field(
        None, ge=0, le=1, description="Image-to-image strength (1 = ignore the reference)."
    )
    reference_strength: float | None = Field(
        None,
        ge=0,
        le=MAX_STRENGTH,
        description=(
            "How strongly the muse's reference images condition the image on a pool with a "
            "style model (Flux Redux; StyleModelApply strength; default: the muse's, else 1)."
        ),
    )
    priority: int = Field(0, ge=-100, le=100, description="Higher runs first.")
    timeout: Duration = Field("30m", description="Longest run time before the job fails.")
    owner: str = Field("", max_length=253, description="Studio user who asked for it.")
    tags: list[str] = Field(default_factory=list, max_length=20, description="Free tags.")

    @model_validator(mode="after")
    def _cross_fields(self) -> GenerationJobSpec:
        if self.kind == "image" and self.frames is not None:
            raise ValueError("frames is only for video and animation jobs")
        if self.denoise is not None and self.reference_image is None:
            raise ValueError("denoise needs a referenceImage")
        if self.variation is not None and self.muse_ref is None:
            raise ValueError("variation needs a museRef")
        if self.reference_strength is not None and self.muse_ref is None:
            raise ValueError("referenceStrength needs a museRef")
        return self


class Progress(CamelModel):
    """Progress of the running prompt."""

    value: int = Field(0, description="Steps done.")
    max: int = Field(0, description="Steps in all.")
    percent: int = Field(0, ge=0, le=100, description="Whole-job percent.")


class Output(CamelModel):
    """One stored output."""

    key: str = Field(description="Artifact store key.")
    content_type: str = Field(description="MIME type.")
    size: int = Field(description="Bytes.")
    sha256: str = Field(description="Hex digest of the bytes.")
    width: int | None = Field(None, description="Pixels.")
    height: int | None = Field(None, description="Pixels.")
    frames: int | None = Field(None, description="Frames of a video.")


class ReferenceUse(CamelModel):
    """How the attempt used the muse's reference images (written when the graph is built)."""

    mode: Literal["style", "start", "none"] = Field(
        description=(
            "style: they conditioned the image through the pool's style model (Flux Redux); "
            "start: the first one was the image-to-image start; none: not used (an "
            "animation on a pool without a style model)."
        )
    )
    applied: int = Field(
        0, ge=0, description="The muse's references applied (style: conditioned; start: 1)."
    )
    left_out: int = Field(0, ge=0, description="The muse's references not used.")
    strength: float | None = Field(
        None, description="StyleModelApply strength (style mode; the job's, else the muse's)."
    )
    style_model: str | None = Field(None, description="The style model file (style mode).")


class GenerationJobStatus(CamelModel):
    """Observed state of a job."""

    observed_generation: int | None = Field(None, description="Last metadata.generation seen.")
    phase: JobPhase = Field("Queued", description="Lifecycle phase.")
    reason: str = Field("", description="Why (stable word).")
    message: str = Field("", description="Details.")
    instance: str = Field("", description="GpuInstance it runs or ran on.")
    gpu_name: str = Field("", description="GPU model it runs or ran on.")
    prompt_id: str = Field("", description="ComfyUI prompt id.")
    seed: int | None = Field(None, description="The seed actually used.")
    references: ReferenceUse | None = Field(
        None, description="How the muse's reference images were used (jobs of a muse with some)."
    )
    progress: Progress = Field(default_factory=Progress, description="Progress.")
    queued_at: str | None = Field(None, description="When it was queued.")
    scheduled_at: str | None = Field(None, description="When it was placed.")
    started_at: str | None = Field(None, description="When ComfyUI accepted it.")
    finished_at: str | None = Field(None, description="When it reached a terminal phase.")
    lease_expires_at: str | None = Field(None, description="End of the lease on its instance.")
    attempts: int = Field(0, description="Attempts so far.")
    excluded_hosts: list[int] = Field(
        default_factory=list, description="Machines not to use again for this job."
    )
    excluded_gpus: list[str] = Field(
        default_factory=list, description="GPU models not to use again (out of memory)."
    )
    outputs: list[Output] = Field(default_factory=list, description="Stored outputs.")
    estimated_cost: float | None = Field(None, description="Dollars estimated at submission.")
    estimated_seconds: float | None = Field(None, description="Seconds estimated.")
    actual_cost: float | None = Field(None, description="Dollars: GPU seconds × $/hour.")
    conditions: list[Condition] = Field(default_factory=list, description="Conditions.")


class GenerationJob(CamelModel):
    """A GenerationJob object as read from the API server."""

    api_version: str = Field("warmpool.dev/v1alpha1", alias="apiVersion")
    kind: Literal["GenerationJob"] = "GenerationJob"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: GenerationJobSpec
    status: GenerationJobStatus = Field(default_factory=GenerationJobStatus)

    @classmethod
    def from_body(cls, body: Any) -> GenerationJob:
        """Parse a Kubernetes object (dict or Kopf body)."""
        return cls.model_validate(dict(body))
