"""Image checkpoints a pool declares (``GpuPool.spec.template.checkpoints``): their architecture.

A checkpoint's file name does not say how to run it: ``flux1-dev-fp8.safetensors`` run the
SD 1.5/SDXL way (a negative prompt, CFG 6-7, ``dpmpp_2m``/``karras``) gives poor images at
twice the cost (CFG above 1 evaluates the negative at every step). So the pool says:

- ``sdxl`` — SD 1.5 / SDXL style (what a checkpoint nobody declares is run as):
  ``CheckpointLoaderSimple``, positive and negative ``CLIPTextEncode``, the presets' CFG;
- ``flux-dev`` — FLUX.1 [dev]: the prompt's conditioning through ``FluxGuidance``
  (distilled guidance, 3.5 by default), ``KSampler`` at CFG 1 with ``euler``/``simple``,
  about 20 steps, no negative prompt;
- ``flux-schnell`` — FLUX.1 [schnell]: the same at 4 steps, without guidance (the model
  takes none).

A checkpoint is one all-in-one file in ``models/checkpoints`` (``name`` is that file, e.g.
Comfy-Org's ``flux1-dev-fp8.safetensors``), or, for Flux, **split files** as most Hugging
Face repositories ship it: ``diffusionModel`` (``models/diffusion_models``, UNETLoader),
``clipL`` and ``t5xxl`` (``models/text_encoders``, DualCLIPLoader type ``flux``) and
``vae`` (``models/vae``, e.g. ``ae.safetensors``, VAELoader); ``name`` is then only what a
job names in ``spec.model``. Every file must also be listed in ``template.models``; a CEL
rule and a validator check it, as for video families and style models.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal

from pydantic import Field, model_validator

from warmpool.crds.common import CamelModel, with_rules

#: How an image checkpoint is run (see the module docstring).
ImageArchitecture = Literal["sdxl", "flux-dev", "flux-schnell"]
#: ``UNETLoader.weight_dtype`` choices in ComfyUI 0.3.64.
WeightDtype = Literal["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]
#: ``FluxGuidance.guidance`` bounds in ComfyUI 0.3.64.
MAX_GUIDANCE = 100.0

_SPLIT = ("diffusionModel", "clipL", "t5xxl", "vae")

_CHECKPOINT_RULES: tuple[dict[str, str], ...] = (
    {
        "rule": " && ".join(f"has(self.{k}) == has(self.diffusionModel)" for k in _SPLIT[1:]),
        "message": "split files come together: diffusionModel, clipL, t5xxl and vae",
    },
    {
        "rule": "self.architecture != 'sdxl' || !has(self.diffusionModel)",
        "message": "split files (diffusionModel, clipL, t5xxl, vae) are for Flux checkpoints",
    },
)


class CheckpointSpec(CamelModel):
    """One image checkpoint and how to run it."""

    model_config = with_rules(*_CHECKPOINT_RULES)

    name: str = Field(
        min_length=1,
        max_length=255,
        description=(
            "What a job names in spec.model; for an all-in-one checkpoint, its file in "
            "models/checkpoints (CheckpointLoaderSimple)."
        ),
    )
    architecture: ImageArchitecture = Field(
        description="sdxl (SD 1.5/SDXL style), flux-dev or flux-schnell: which graph is built."
    )
    diffusion_model: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="Split Flux: file in models/diffusion_models (UNETLoader).",
    )
    clip_l: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="Split Flux: the CLIP-L file in models/text_encoders (DualCLIPLoader).",
    )
    t5xxl: str | None = Field(
        None,
        alias="t5xxl",  # not the generated "t5Xxl"
        min_length=1,
        max_length=255,
        description="Split Flux: the T5-XXL file in models/text_encoders (DualCLIPLoader).",
    )
    vae: str | None = Field(
        None, min_length=1, max_length=255, description="Split Flux: file in models/vae."
    )
    weight_dtype: WeightDtype = Field(
        "default",
        description="Split Flux: UNETLoader weight_dtype (fp8_e4m3fn halves a bf16 file's memory).",
    )
    guidance: float | None = Field(
        None,
        ge=0,
        le=MAX_GUIDANCE,
        description=(
            "flux-dev: FluxGuidance of a job without cfg (default 3.5); "
            "a job's cfg is its guidance."
        ),
    )

    @model_validator(mode="after")
    def _split_together(self) -> CheckpointSpec:
        given = [v is not None for v in (self.diffusion_model, self.clip_l, self.t5xxl, self.vae)]
        if any(given) and not all(given):
            raise ValueError(
                f"checkpoint {self.name!r}: split files come together: "
                "diffusionModel, clipL, t5xxl and vae"
            )
        if any(given) and self.architecture == "sdxl":
            raise ValueError(
                f"checkpoint {self.name!r}: split files (diffusionModel, clipL, t5xxl, vae) "
                "are for Flux checkpoints"
            )
        return self

    @property
    def split(self) -> bool:
        """Split files (UNETLoader + DualCLIPLoader + VAELoader), not one checkpoint file."""
        return self.diffusion_model is not None

    @property
    def flux(self) -> bool:
        return self.architecture.startswith("flux")

    def files(self) -> list[tuple[str, str]]:
        """Every (folder, file) the checkpoint needs."""
        if not self.split:
            return [("checkpoints", self.name)]
        assert self.diffusion_model and self.clip_l and self.t5xxl and self.vae
        return [
            ("diffusion_models", self.diffusion_model),
            ("text_encoders", self.clip_l),
            ("text_encoders", self.t5xxl),
            ("vae", self.vae),
        ]


def checkpoint_of(
    name: str, declared: Sequence[CheckpointSpec], flux_redux: Collection[str]
) -> CheckpointSpec:
    """How checkpoint ``name`` is run: as ``declared``; else ``flux-dev`` when a Flux Redux
    style model names it (``flux_redux``: it conditions Flux checkpoints only; schnell must
    be declared); else ``sdxl``, as before the declaration existed."""
    found = next((c for c in declared if c.name == name), None)
    if found is not None:
        return found
    return CheckpointSpec(name=name, architecture="flux-dev" if name in flux_redux else "sdxl")


def _in_models(folder: str, value: str) -> str:
    return f"self.models.exists(m, m.folder == '{folder}' && m.file == {value})"


#: CEL on the template: every checkpoint file is one of the template's models, names unique.
CHECKPOINT_RULES: tuple[dict[str, str], ...] = (
    {
        "rule": "!has(self.checkpoints) || self.checkpoints.all(c, has(c.diffusionModel) ? ("
        + " && ".join(
            (
                _in_models("diffusion_models", "c.diffusionModel"),
                _in_models("text_encoders", "c.clipL"),
                _in_models("text_encoders", "c.t5xxl"),
                _in_models("vae", "c.vae"),
            )
        )
        + ") : "
        + _in_models("checkpoints", "c.name")
        + ")",
        "message": "every file of a checkpoint must be listed in template.models",
        "fieldPath": ".checkpoints",
    },
    {
        "rule": "!has(self.checkpoints) || "
        "self.checkpoints.all(c, self.checkpoints.exists_one(d, d.name == c.name))",
        "message": "checkpoint names must be unique",
        "fieldPath": ".checkpoints",
    },
)
