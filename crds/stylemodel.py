"""Style models a pool serves (``GpuPool.spec.template.styleModels``): reference conditioning.

A style model turns reference images into conditioning for the checkpoints it was made for.
The one kind today is Flux Redux (``architecture: flux-redux``): ComfyUI's core
``StyleModelLoader`` (``models/style_models``, e.g. ``flux1-redux-dev.safetensors``), a
SigCLIP vision encoder (``CLIPVisionLoader``, ``models/clip_vision``, e.g.
``sigclip_vision_patch14_384.safetensors``) and the Flux checkpoints it conditions
(``models/checkpoints``, loaded by ``CheckpointLoaderSimple``, or split Flux files declared
in ``template.checkpoints`` by name). A job naming a muse with
reference images, on one of those checkpoints, has every reference (up to
``maxReferences``) encoded and applied to its positive prompt (``StyleModelApply``); on
any other checkpoint the muse's first reference stays the image-to-image start.

The pool declares it instead of the operator guessing from file names: which checkpoint
is a Flux one cannot be told from a name. Every file must also be listed in
``template.models`` (that is what puts it on the machine and makes it part of
readiness); a CEL rule and a validator check it, as for video families.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from warmpool.crds.common import CamelModel

#: ``flux-redux``: FLUX.1 Redux [dev] on FLUX.1 checkpoints (dev or schnell).
StyleArchitecture = Literal["flux-redux"]
#: ``StyleModelApply.strength_type`` in ComfyUI 0.3.64.
StrengthType = Literal["multiply", "attn_bias"]
#: The most references one job applies (each adds 729 image tokens to the prompt's).
MAX_REFERENCES = 8
#: ``StyleModelApply.strength`` bounds in ComfyUI 0.3.64 (its default is 1.0).
MAX_STRENGTH = 10.0


class StyleModelSpec(CamelModel):
    """The files of one reference-conditioning model and the checkpoints it conditions."""

    architecture: StyleArchitecture = Field(
        "flux-redux", description="flux-redux: which graph is built."
    )
    style_model: str = Field(
        min_length=1, max_length=255, description="File in models/style_models (StyleModelLoader)."
    )
    clip_vision: str = Field(
        min_length=1,
        max_length=255,
        description="File in models/clip_vision (CLIPVisionLoader), e.g. the SigCLIP 384 one.",
    )
    checkpoints: list[str] = Field(
        min_length=1,
        max_length=16,
        description=(
            "Flux checkpoints it conditions: files in models/checkpoints, or names of "
            "template.checkpoints (split files)."
        ),
    )
    max_references: int = Field(
        4,
        ge=1,
        le=MAX_REFERENCES,
        description="Reference images applied per job at most (the muse's first ones).",
    )
    strength_type: StrengthType = Field(
        "multiply", description="StyleModelApply strength_type: multiply or attn_bias."
    )

    def files(self) -> list[tuple[str, str]]:
        """Every (folder, file) the style model needs."""
        return [
            ("style_models", self.style_model),
            ("clip_vision", self.clip_vision),
            *(("checkpoints", c) for c in self.checkpoints),
        ]


#: CEL on the template: every style-model file is one of the template's models.
STYLE_RULES: tuple[dict[str, str], ...] = (
    {
        "rule": "!has(self.styleModels) || self.styleModels.all(s, "
        "self.models.exists(m, m.folder == 'style_models' && m.file == s.styleModel) "
        "&& self.models.exists(m, m.folder == 'clip_vision' && m.file == s.clipVision) "
        "&& s.checkpoints.all(c, self.models.exists(m, m.folder == 'checkpoints' && m.file == c) "
        "|| (has(self.checkpoints) && self.checkpoints.exists(k, k.name == c))))",
        "message": "every file of a style model must be listed in template.models",
        "fieldPath": ".styleModels",
    },
    {
        "rule": "!has(self.styleModels) || !has(self.checkpoints) || self.styleModels.all(s, "
        "s.checkpoints.all(c, "
        "!self.checkpoints.exists(k, k.name == c && k.architecture == 'sdxl')))",
        "message": "a Flux Redux style model conditions Flux checkpoints, not sdxl ones",
        "fieldPath": ".styleModels",
    },
)
