"""Muse: a saved character kept consistent across generations.

The schema refuses anyone under 18. The prompt composer (a pure function of
muse and user prompt) lives in ``warmpool.operator.decisions.prompts``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from warmpool.crds.common import CamelModel, Condition, ObjectMeta
from warmpool.crds.musetraits import Traits, Variation
from warmpool.crds.stylemodel import MAX_STRENGTH

MIN_AGE = 18


class Appearance(CamelModel):
    """Appearance attributes, each a short phrase."""

    presentation: str = Field("", max_length=200, description='e.g. "woman", "man".')
    body: str = Field("", max_length=200, description="Build and height.")
    skin: str = Field("", max_length=200, description="Skin tone and texture.")
    hair: str = Field("", max_length=200, description="Hair colour, length, style.")
    eyes: str = Field("", max_length=200, description="Eye colour and shape.")
    face: str = Field("", max_length=200, description="Face features.")
    outfit: str = Field("", max_length=400, description="Usual clothing.")
    features: str = Field("", max_length=400, description="Distinguishing features.")


class MuseSpec(CamelModel):
    """A character."""

    display_name: str = Field(min_length=1, max_length=100, description="Shown name.")
    age: int = Field(ge=MIN_AGE, le=150, description="Adult age in years (18 or more).")
    appearance: Appearance = Field(default_factory=Appearance, description="How they look.")
    style: str = Field("", max_length=400, description="Art style, lighting, medium.")
    personality: str = Field("", max_length=1000, description="Mood and manner.")
    prompt_template: str = Field(
        "",
        max_length=2000,
        description="Template with {prompt}, {name}, {age}, {appearance}, {style}, "
        "{personality}; empty = the default composition.",
    )
    negative_prompt: str = Field("", max_length=2000, description="Always avoided.")
    preferred_model: str | None = Field(None, max_length=255, description="Checkpoint to use.")
    reference_images: list[str] = Field(
        default_factory=list, max_length=8, description="Artifact keys of reference images."
    )
    reference_strength: float | None = Field(
        None,
        ge=0,
        le=MAX_STRENGTH,
        description=(
            "How strongly the reference images condition a job on a pool with a style model "
            "(Flux Redux; default 1); elsewhere the first one is the image-to-image start."
        ),
    )
    notes: str = Field("", max_length=4000, description="Free notes (never in prompts).")
    owner: str = Field("", max_length=253, description="Studio user who owns it.")
    tags: list[str] = Field(default_factory=list, max_length=20, description="Free tags.")
    traits: Traits = Field(
        default_factory=Traits, description="Structured attributes (pick lists or free text)."
    )
    variations: list[Variation] = Field(
        default_factory=list,
        max_length=20,
        description="Named overrides (outfit, scenario, style) a job may choose.",
    )

    @field_validator("variations")
    @classmethod
    def _unique_names(cls, value: list[Variation]) -> list[Variation]:
        names = [v.name for v in value]
        if len(set(names)) != len(names):
            raise ValueError("variation names must be unique")
        return value

    def variation(self, name: str | None) -> Variation | None:
        """The variation of that name (None for no name or an unknown one)."""
        return next((v for v in self.variations if v.name == name), None) if name else None


class MuseStatus(CamelModel):
    """Observed state of a muse."""

    observed_generation: int | None = Field(None, description="Last metadata.generation seen.")
    jobs: int = Field(0, description="Jobs that used this muse.")
    last_job: str | None = Field(None, description="The newest job that used this muse.")
    last_job_at: str | None = Field(None, description="When it finished.")
    conditions: list[Condition] = Field(default_factory=list, description="Conditions.")


class Muse(CamelModel):
    """A Muse object as read from the API server."""

    api_version: str = Field("warmpool.dev/v1alpha1", alias="apiVersion")
    kind: Literal["Muse"] = "Muse"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: MuseSpec
    status: MuseStatus = Field(default_factory=MuseStatus)

    @classmethod
    def from_body(cls, body: Any) -> Muse:
        """Parse a Kubernetes object (dict or Kopf body)."""
        return cls.model_validate(dict(body))
