"""Image architectures: what ``sdxl``, ``flux-dev`` and ``flux-schnell`` mean for a graph.

Pure: no I/O. The quality presets per architecture (the tables in :mod:`.workflows`), the
loader nodes of an all-in-one or split checkpoint, and the notes telling a person what a
job asks for that its architecture does not use (a negative prompt on FLUX.1, which
samples at CFG 1; ``cfg`` on schnell, which takes no guidance). A Flux job's negative
prompt is ignored with a note rather than refused: a muse brings its own negative prompt
to every job, and a job moved between an SDXL and a Flux checkpoint should keep working.
The studio shows the notes in its estimate (before submission and in a create's answer).

A job without ``spec.model`` runs the pool's :func:`default_checkpoint`: the operator (its
graph, estimate and scheduling) and the studio (its estimate and job views) both ask here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from warmpool.crds.checkpoint import CheckpointSpec

#: What a model-less image job runs on a pool that declares no image checkpoint.
DEFAULT_CHECKPOINT = "sd_xl_base_1.0.safetensors"


class ModelFileLike(Protocol):
    """The fields of ``ModelSpec`` (a template's ``models[]``) read here."""

    @property
    def folder(self) -> str: ...
    @property
    def file(self) -> str: ...


def default_checkpoint(
    declared: Sequence[CheckpointSpec], models: Iterable[ModelFileLike] = ()
) -> str:
    """The checkpoint an image job without ``spec.model`` runs on a pool: the first of its
    ``template.checkpoints``, else the first ``checkpoints``-folder file of its
    ``template.models``, else :data:`DEFAULT_CHECKPOINT` (a Flux-only pool has no SDXL
    base, and ComfyUI refuses a prompt naming a file it does not hold)."""
    if declared:
        return declared[0].name
    files = (m.file for m in models if m.folder == "checkpoints")
    return next(files, DEFAULT_CHECKPOINT)


#: ``FluxGuidance.guidance`` of a flux-dev job without ``cfg`` (the node's default in 0.3.64).
DEFAULT_FLUX_GUIDANCE = 3.5


@dataclass(frozen=True)
class Preset:
    """What a quality word means."""

    steps: int
    width: int
    height: int
    cfg: float
    sampler: str
    scheduler: str
    video_width: int
    video_height: int
    seconds: float  # one image at this size and these steps on the reference GPU


PRESETS: dict[str, Preset] = {
    "low": Preset(12, 768, 768, 5.0, "euler", "normal", 384, 384, 2.0),
    "medium": Preset(24, 1024, 1024, 6.5, "dpmpp_2m", "karras", 512, 512, 5.0),
    "high": Preset(32, 1152, 1152, 7.0, "dpmpp_2m", "karras", 640, 640, 9.0),
    "ultra": Preset(48, 1536, 1536, 7.0, "dpmpp_2m_sde", "karras", 768, 768, 25.0),
}
#: FLUX.1 [dev]: ``cfg`` is the Flux guidance (the sampler runs at CFG 1).
FLUX_DEV_PRESETS: dict[str, Preset] = {
    "low": Preset(16, 768, 768, DEFAULT_FLUX_GUIDANCE, "euler", "simple", 384, 384, 5.0),
    "medium": Preset(20, 1024, 1024, DEFAULT_FLUX_GUIDANCE, "euler", "simple", 512, 512, 11.0),
    "high": Preset(28, 1152, 1152, DEFAULT_FLUX_GUIDANCE, "euler", "simple", 640, 640, 20.0),
    "ultra": Preset(40, 1536, 1536, DEFAULT_FLUX_GUIDANCE, "euler", "simple", 768, 768, 55.0),
}
#: FLUX.1 [schnell]: 4 steps, no guidance (``cfg`` 1.0 is the sampler's).
FLUX_SCHNELL_PRESETS: dict[str, Preset] = {
    "low": Preset(4, 768, 768, 1.0, "euler", "simple", 384, 384, 1.3),
    "medium": Preset(4, 1024, 1024, 1.0, "euler", "simple", 512, 512, 2.2),
    "high": Preset(4, 1152, 1152, 1.0, "euler", "simple", 640, 640, 2.9),
    "ultra": Preset(4, 1536, 1536, 1.0, "euler", "simple", 768, 768, 5.5),
}
ARCHITECTURE_PRESETS: dict[str, dict[str, Preset]] = {
    "sdxl": PRESETS, "flux-dev": FLUX_DEV_PRESETS, "flux-schnell": FLUX_SCHNELL_PRESETS,
}  # fmt: skip
#: What a job on a checkpoint nobody declared is run as.
SDXL = CheckpointSpec(name="sdxl", architecture="sdxl")


def presets_for(checkpoint: CheckpointSpec | None) -> dict[str, Preset]:
    """The quality presets of ``checkpoint``'s architecture (``sdxl`` without one)."""
    return ARCHITECTURE_PRESETS[checkpoint.architecture if checkpoint else "sdxl"]


NEGATIVE_IGNORED = (
    "FLUX.1 does not use a negative prompt (it samples at CFG 1): the negative prompt is ignored"
)
CFG_IS_GUIDANCE = (
    "on FLUX.1 [dev] cfg is the Flux guidance (FluxGuidance); the sampler runs at CFG 1"
)
CFG_IGNORED = "FLUX.1 [schnell] takes no guidance: cfg is ignored"


def notes_for(
    checkpoint: CheckpointSpec | None, *, kind: str, negative: str, cfg: float | None
) -> tuple[str, ...]:
    """What a job of ``kind`` asks for that ``checkpoint``'s architecture uses differently
    or not at all (the studio's estimate shows them). ``negative`` is
    the composed negative prompt (a muse's included); ``cfg`` the job's explicit one."""
    if checkpoint is None or not checkpoint.flux or kind == "video":
        return ()
    notes = []
    if negative.strip():
        notes.append(NEGATIVE_IGNORED)
    if cfg is not None:
        notes.append(CFG_IS_GUIDANCE if checkpoint.architecture == "flux-dev" else CFG_IGNORED)
    return tuple(notes)


def loader_nodes(
    ckpt: CheckpointSpec, name: str
) -> tuple[dict[str, Any], list[Any], list[Any], list[Any]]:
    """The loader nodes of ``ckpt`` (file ``name`` when all-in-one) and their model, clip
    and vae links: ``1`` CheckpointLoaderSimple, or ``1`` UNETLoader, ``13`` DualCLIPLoader
    (type ``flux``: CLIP-L and T5-XXL) and ``14`` VAELoader for split Flux files."""
    if not ckpt.split:
        graph = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": name}}}
        return graph, ["1", 0], ["1", 1], ["1", 2]
    graph = {
        "1": {"class_type": "UNETLoader",
              "inputs": {"unet_name": ckpt.diffusion_model, "weight_dtype": ckpt.weight_dtype}},
        "13": {"class_type": "DualCLIPLoader",
               "inputs": {"clip_name1": ckpt.clip_l, "clip_name2": ckpt.t5xxl, "type": "flux"}},
        "14": {"class_type": "VAELoader", "inputs": {"vae_name": ckpt.vae}},
    }  # fmt: skip
    return graph, ["1", 0], ["13", 0], ["14", 0]
