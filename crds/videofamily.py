"""Video model families a pool serves (``GpuPool.spec.template.videoFamilies``).

A family names the files that make up one video model, so a pool whose machines hold
an SDXL checkpoint and, say, Wan 2.2 can take both image and video jobs. A video job
picks a family by name in ``spec.model`` (default: the pool's first family). The files
must also be listed in ``template.models`` (that is what makes them present on the
machine and part of readiness); a CEL rule and a validator check it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from warmpool.crds.common import CamelModel

#: ``wan``: Wan 2.1 and Wan 2.2 14B, on the Wan 2.1 VAE (UNETLoader + CLIPLoader type wan +
#: VAELoader, EmptyHunyuanLatentVideo or WanImageToVideo); ``wan22``: Wan 2.2 TI2V 5B on its
#: own VAE (Wan22ImageToVideoLatent, with or without a start image); ``ltxv``: LTX-Video
#: (CLIPLoader type ltxv, EmptyLTXVLatentVideo or LTXVImgToVideo, LTXVConditioning).
VideoArchitecture = Literal["wan", "wan22", "ltxv"]
VideoMode = Literal["text", "image"]

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


def _text_only() -> list[VideoMode]:
    return ["text"]


class VideoFamilySpec(CamelModel):
    """The files of one video model and what it can do."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=NAME_PATTERN,
        description='What a video job names in spec.model, e.g. "wan22-5b".',
    )
    architecture: VideoArchitecture = Field(description="wan, wan22 or ltxv: which graph is built.")
    diffusion_model: str = Field(
        min_length=1, max_length=255, description="File in models/diffusion_models (UNETLoader)."
    )
    text_encoder: str = Field(
        min_length=1, max_length=255, description="File in models/text_encoders (CLIPLoader)."
    )
    vae: str = Field(min_length=1, max_length=255, description="File in models/vae (VAELoader).")
    clip_vision: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="File in models/clip_vision, for Wan 2.1 image-to-video (optional).",
    )
    modes: list[VideoMode] = Field(
        default_factory=_text_only,
        min_length=1,
        max_length=2,
        description="text (text-to-video) and/or image (image-to-video from a reference).",
    )
    seconds_per_frame: float | None = Field(
        None,
        gt=0,
        le=600,
        description=(
            "Expected seconds per frame on an RTX 4090 at 832×480 and 20 steps "
            "(default: the architecture's figure); used for estimates and prices."
        ),
    )

    def files(self) -> list[tuple[str, str]]:
        """Every (folder, file) the family needs."""
        files = [
            ("diffusion_models", self.diffusion_model),
            ("text_encoders", self.text_encoder),
            ("vae", self.vae),
        ]
        if self.clip_vision:
            files.append(("clip_vision", self.clip_vision))
        return files


#: CEL on the template: every family file is one of the template's models, names unique.
FAMILY_RULES: tuple[dict[str, str], ...] = (
    {
        "rule": "!has(self.videoFamilies) || self.videoFamilies.all(f, "
        "self.models.exists(m, m.folder == 'diffusion_models' && m.file == f.diffusionModel) "
        "&& self.models.exists(m, m.folder == 'text_encoders' && m.file == f.textEncoder) "
        "&& self.models.exists(m, m.folder == 'vae' && m.file == f.vae) "
        "&& (!has(f.clipVision) || "
        "self.models.exists(m, m.folder == 'clip_vision' && m.file == f.clipVision)))",
        "message": "every file of a video family must be listed in template.models",
        "fieldPath": ".videoFamilies",
    },
    {
        "rule": "!has(self.videoFamilies) || "
        "self.videoFamilies.all(f, self.videoFamilies.exists_one(g, g.name == f.name))",
        "message": "video family names must be unique",
        "fieldPath": ".videoFamilies",
    },
)
