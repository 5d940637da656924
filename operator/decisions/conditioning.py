"""How a job uses reference images: conditioning through a style model, or an image start.

Pure: no I/O. Both the operator (which uploads what :func:`plan_references` names and
builds the graph) and the studio (which tells people which mode a generation will use)
call these functions, so the page can never promise what the machine will not do.

A muse's reference images, on a job of kind ``image`` or ``animation``:

- **style** — the pool declares a style model (``template.styleModels``, Flux Redux) for
  the job's checkpoint: each reference, up to the style model's ``maxReferences``, goes
  ``LoadImage`` → ``CLIPVisionEncode`` → ``StyleModelApply`` chained onto the positive
  conditioning (:func:`style_nodes`). The latent stays empty (text-to-image), unless the
  job names its own ``referenceImage``, which stays its image-to-image start.
- **start** — otherwise, an image job starts from the muse's first reference
  (image-to-image, as before), unless it names its own ``referenceImage``; the other
  references are not used. An animation uses none (its frames cannot start from one image).
- **none** — the muse has no references (or there is no muse): no conditioning nodes.

A video job never uses a muse's references (only its own ``referenceImage``, for
image-to-video). Every key the plan names is still checked for ownership
(:mod:`.references`) by the operator before a byte is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from warmpool.crds.generationjob import ReferenceUse
from warmpool.crds.stylemodel import StyleModelSpec

ReferenceMode = Literal["style", "start", "none"]
#: ``StyleModelApply.strength`` when neither the job nor its muse sets one (the node's own
#: default in ComfyUI 0.3.64; lower values leave the prompt more say).
DEFAULT_REFERENCE_STRENGTH = 1.0
#: First node id of the style-model nodes (the image graph uses 1-10, video graphs 11-35).
FIRST_NODE = 50


@dataclass(frozen=True)
class ReferencePlan:
    """What a job does with reference images (artifact keys, not yet uploaded)."""

    mode: ReferenceMode
    start: str | None = None
    """The image-to-image (or image-to-video) start: the job's own or the muse's first."""
    references: tuple[str, ...] = ()
    """Keys conditioned through the style model, in the muse's order (style mode only)."""
    style: StyleModelSpec | None = None
    strength: float = DEFAULT_REFERENCE_STRENGTH
    left_out: int = 0
    """The muse's references past the cap (style) or past the first (start)."""

    def artifact_keys(self) -> list[str]:
        """Every key to check and upload, once each: the start first."""
        keys = [self.start] if self.start else []
        return keys + [k for k in self.references if k not in keys]


@dataclass(frozen=True)
class StyleInputs:
    """The style-model part of a graph: files on the machine and uploaded inputs."""

    style_model: str
    clip_vision: str
    images: tuple[str, ...]
    """ComfyUI input names of the uploaded references (``"<subfolder>/<name>"``)."""
    strength: float
    strength_type: str


def style_for(
    styles: Sequence[StyleModelSpec], checkpoint: str, kind: str
) -> StyleModelSpec | None:
    """The style model that conditions ``checkpoint`` for a job of ``kind``, or None."""
    if kind not in ("image", "animation"):
        return None
    return next((s for s in styles if checkpoint in s.checkpoints), None)


def plan_references(
    *,
    kind: str,
    checkpoint: str,
    own_reference: str | None,
    muse_references: Sequence[str],
    styles: Sequence[StyleModelSpec],
    job_strength: float | None = None,
    muse_strength: float | None = None,
) -> ReferencePlan:
    """How a job of ``kind`` on ``checkpoint`` uses its references.

    ``own_reference`` is the job's ``spec.referenceImage``; ``muse_references`` the
    muse's ``referenceImages`` (empty without a muse); ``styles`` the pool's
    ``template.styleModels``. The strength is the job's, else the muse's, else
    :data:`DEFAULT_REFERENCE_STRENGTH`.
    """
    strength = next(
        (s for s in (job_strength, muse_strength) if s is not None), DEFAULT_REFERENCE_STRENGTH
    )
    refs = list(dict.fromkeys(muse_references))  # a key listed twice is applied once
    if kind == "video" or not refs:
        return ReferencePlan("none", start=own_reference, strength=strength)
    style = style_for(styles, checkpoint, kind)
    if style is not None:
        used = tuple(refs[: style.max_references])
        return ReferencePlan("style", start=own_reference, references=used, style=style,
                             strength=strength, left_out=len(refs) - len(used))  # fmt: skip
    if kind != "image":
        return ReferencePlan("none", start=own_reference, strength=strength, left_out=len(refs))
    start = own_reference or refs[0]
    return ReferencePlan("start", start=start, strength=strength,
                         left_out=len(refs) - (0 if own_reference else 1))  # fmt: skip


def reference_use(plan: ReferencePlan, *, own_reference: str | None) -> ReferenceUse | None:
    """What the job's status records of ``plan``: the mode, the muse's references applied
    and left out, the strength and style model (style mode); None when the job had no
    muse references to use (``own_reference``: the job's own ``spec.referenceImage``)."""
    if plan.mode == "style" and plan.style is not None:
        return ReferenceUse(mode="style", applied=len(plan.references), left_out=plan.left_out,
                            strength=plan.strength, style_model=plan.style.style_model)  # fmt: skip
    if plan.mode == "start":
        applied = 0 if own_reference else 1  # the job's own image starts it: none of the muse's
        return ReferenceUse(mode="start", applied=applied, left_out=plan.left_out)
    if plan.left_out:
        return ReferenceUse(mode="none", applied=0, left_out=plan.left_out)
    return None


def style_inputs(plan: ReferencePlan, uploads: dict[str, str]) -> StyleInputs | None:
    """The graph's style inputs for ``plan``, with ``uploads`` (key → ComfyUI input name)."""
    if plan.mode != "style" or plan.style is None or not plan.references:
        return None
    return StyleInputs(
        style_model=plan.style.style_model,
        clip_vision=plan.style.clip_vision,
        images=tuple(uploads[k] for k in plan.references),
        strength=plan.strength,
        strength_type=plan.style.strength_type,
    )


def style_nodes(style: StyleInputs, positive: list[Any]) -> tuple[dict[str, Any], list[Any]]:
    """The nodes that apply each reference to ``positive``, and the conditioning they give.

    ``50`` StyleModelLoader, ``51`` CLIPVisionLoader, then per reference *i* (0-based)
    ``52+3i`` LoadImage → ``53+3i`` CLIPVisionEncode (crop ``center``, as the vision
    encoder wants a square) → ``54+3i`` StyleModelApply, each applying onto the previous one.
    """
    loader, vision = str(FIRST_NODE), str(FIRST_NODE + 1)
    nodes: dict[str, Any] = {
        loader: {"class_type": "StyleModelLoader",
                 "inputs": {"style_model_name": style.style_model}},
        vision: {"class_type": "CLIPVisionLoader", "inputs": {"clip_name": style.clip_vision}},
    }  # fmt: skip
    conditioning = positive
    for i, image in enumerate(style.images):
        load, encode, apply = (str(FIRST_NODE + 2 + 3 * i + k) for k in range(3))
        nodes[load] = {"class_type": "LoadImage", "inputs": {"image": image}}
        nodes[encode] = {
            "class_type": "CLIPVisionEncode",
            "inputs": {"clip_vision": [vision, 0], "image": [load, 0], "crop": "center"},
        }
        nodes[apply] = {
            "class_type": "StyleModelApply",
            "inputs": {
                "conditioning": conditioning,
                "style_model": [loader, 0],
                "clip_vision_output": [encode, 0],
                "strength": style.strength,
                "strength_type": style.strength_type,
            },
        }
        conditioning = [apply, 0]
    return nodes, conditioning
