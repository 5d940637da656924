"""Request and response bodies of the studio API.

Requests reuse the custom-resource models of ``warmpool.crds`` so the studio refuses
exactly what the API server refuses (same bounds, same cross-field rules); only the
``owner`` field is hidden, because the server sets it from the caller.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from warmpool.crds.common import CamelModel
from warmpool.crds.generationjob import (
    GenerationJobSpec,
    GenerationJobStatus,
    JobKind,
    JobPhase,
    ReferenceUse,
)
from warmpool.crds.muse import MuseSpec

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
#: Any object name (a DNS subdomain), for path parameters.
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"


class Out(BaseModel):
    """Base of response bodies: camelCase on the wire."""

    model_config = ConfigDict(
        alias_generator=CamelModel.model_config["alias_generator"], populate_by_name=True
    )


# ---------------------------------------------------------------- generations


class GenerationRequest(GenerationJobSpec):
    """A generation to create (the GenerationJob spec; the owner is the caller)."""

    model_config = ConfigDict(**{**GenerationJobSpec.model_config, "extra": "forbid"})

    owner: SkipJsonSchema[str] = Field("", exclude=True)


class EstimateOut(Out):
    """Expected time and cost of a generation."""

    pool: str
    seconds: float = Field(description="Expected run time once placed, seconds.")
    dollars: float = Field(description="Expected cost, dollars.")
    price_per_hour: float = Field(description="The $/hour the estimate assumes.")
    positive: str = Field(description="The composed positive prompt (muse applied).")
    negative: str = Field(description="The composed negative prompt.")
    wait_seconds: float = Field(0.0, description="Expected wait for a machine, seconds.")
    wait_reason: str = Field("", description="Why that wait (from the pool's status).")
    reference_mode: Literal["style", "start", "none"] = Field(
        "none",
        description=(
            "How the muse's reference images are used: style (they condition the image "
            "through the pool's style model, Flux Redux), start (the first one is the "
            "image-to-image start) or none."
        ),
    )
    references: int = Field(0, description="Reference images that condition it (style mode).")
    references_left_out: int = Field(0, description="The muse's references not used.")
    architecture: str = Field(
        "sdxl",
        description="How the checkpoint is run: sdxl, flux-dev or flux-schnell (video: empty).",
    )
    notes: list[str] = Field(
        default_factory=list,
        description=(
            "What the job asks for that the architecture does not use (a negative prompt "
            "on Flux, cfg on schnell) or uses differently (cfg as the Flux guidance)."
        ),
    )


class OutputOut(Out):
    """One output of a generation (addressed by job name and index, never by key)."""

    index: int
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None
    url: str = Field(description="Download URL.")
    thumbnail_url: str = Field(description="Thumbnail URL.")


class GenerationOut(Out):
    """A generation as the studio shows it."""

    name: str
    created: str | None = None
    owner: str
    phase: JobPhase
    percent: int = 0
    message: str = ""
    spec: GenerationJobSpec
    status: GenerationJobStatus
    outputs: list[OutputOut] = Field(default_factory=list)
    events_url: str = Field(description="Server-Sent Events progress stream.")
    estimate: EstimateOut | None = Field(None, description="Set in the answer to a create.")
    composed_prompt: str | None = Field(
        None, description="The positive prompt as composed at submission (muse applied)."
    )
    model: str | None = Field(None, description="The checkpoint (or video family) it uses.")


class GenerationPage(Out):
    items: list[GenerationOut]
    total: int
    offset: int
    limit: int
    next_offset: int | None = None


# ---------------------------------------------------------------- muses


class MuseRequest(MuseSpec):
    """A muse to create or replace (the owner is the caller)."""

    model_config = ConfigDict(**{**MuseSpec.model_config, "extra": "forbid"})

    owner: SkipJsonSchema[str] = Field("", exclude=True)
    name: str | None = Field(
        None,
        max_length=63,
        pattern=NAME_PATTERN,
        description="Object name (DNS label); made from the display name when unset.",
    )


class MuseOut(Out):
    name: str
    owner: str
    created: str | None = None
    spec: MuseSpec
    jobs: int = 0


class MusePage(Out):
    items: list[MuseOut]
    total: int
    offset: int
    limit: int
    next_offset: int | None = None


class MuseExportItem(BaseModel):
    name: str = Field(max_length=63, pattern=NAME_PATTERN)
    spec: MuseRequest


class MuseExport(BaseModel):
    """Portable muses: what export answers and import accepts."""

    model_config = ConfigDict(extra="forbid")

    api_version: Literal["warmpool.dev/v1alpha1"] = Field(
        "warmpool.dev/v1alpha1", alias="apiVersion"
    )
    kind: Literal["MuseExport"] = "MuseExport"
    muses: list[MuseExportItem] = Field(default_factory=list, max_length=200)


class ImportResult(Out):
    created: list[str]


# ---------------------------------------------------------------- uploads, gallery, pools


class UploadOut(Out):
    """A stored reference image; pass ``key`` as ``referenceImage`` or in a muse."""

    key: str
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None


class GalleryItem(Out):
    job: str
    index: int
    owner: str
    muse: str | None = None
    kind: JobKind
    prompt: str
    created: str | None = None
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None
    tags: list[str] = Field(default_factory=list)
    url: str
    thumbnail_url: str
    pool: str | None = None
    model: str | None = None
    negative_prompt: str = ""
    references: ReferenceUse | None = Field(
        None, description="How the muse's reference images were used (the job's status)."
    )
    favourite: bool = Field(False, description="The caller's favourite.")
    rating: int | None = Field(None, description="The caller's 1–5 rating.")
    albums: list[int] = Field(default_factory=list, description="The caller's albums with it.")


class GalleryPage(Out):
    items: list[GalleryItem]
    total: int
    offset: int
    limit: int
    next_offset: int | None = None


class ReferenceModeOut(Out):
    """How a muse's reference images are used by image jobs on one checkpoint of a pool."""

    checkpoint: str
    mode: Literal["style", "start"] = Field(
        description="style: they condition the image (the style model); start: the first one "
        "is the image-to-image start."
    )
    architecture: str | None = Field(None, description='The style model\'s, e.g. "flux-redux".')
    style_model: str | None = Field(None, description="The style model file (style mode).")
    max_references: int = Field(1, description="References a job uses at most.")


class PresetOut(Out):
    """What a quality word means on one checkpoint (its architecture's preset)."""

    steps: int
    width: int
    height: int
    cfg: float = Field(description="sdxl: the CFG; flux-dev: the Flux guidance; schnell: 1.")
    sampler: str
    scheduler: str


class CheckpointOut(Out):
    """One checkpoint of a pool and how it is run."""

    name: str
    architecture: str = Field(description="sdxl, flux-dev or flux-schnell.")
    split: bool = Field(False, description="Split Flux files (UNETLoader + DualCLIPLoader + VAE).")
    negative_prompt: bool = Field(description="Whether a negative prompt is used (not on Flux).")
    cfg_label: str = Field(description='What cfg means: "CFG", "Guidance" or "" (not used).')
    presets: dict[str, PresetOut] = Field(description="Quality word → its defaults.")


class PoolOut(Out):
    name: str
    ready: bool = Field(description="At least one instance is ready.")
    paused: bool
    replicas: int
    ready_replicas: int
    queued_jobs: int
    running_jobs: int
    price_per_hour: float = Field(description="$/hour of one instance (estimate).")
    models: list[str] = Field(description="Checkpoints usable on this pool.")
    default_model: str = Field(
        "", description="The checkpoint a job without model runs on this pool."
    )
    loras: list[str] = Field(default_factory=list, description="LoRA files the pool loads.")
    checkpoints: list[CheckpointOut] = Field(
        default_factory=list, description="Per checkpoint of models: its architecture's defaults."
    )
    reference_modes: list[ReferenceModeOut] = Field(
        default_factory=list, description="Per checkpoint of models: how muse references work."
    )


class UserOut(Out):
    name: str
    admin: bool
    auth: str
    limits: dict[str, Any]


class SessionRequest(BaseModel):
    token: str = Field(min_length=1, max_length=4096)
    name: str | None = Field(
        None, min_length=1, max_length=253, description="Optional: the user the token is for."
    )
