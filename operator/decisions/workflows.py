"""Workflow builders: a GenerationJob spec → a ComfyUI API-format graph of core nodes.

Pure functions: no I/O, no clock, no logging. Randomness (a seed of -1) comes from a
caller-provided :class:`random.Random`, and the chosen seed is returned so the job
can record it.

Quality presets (explicit ``width``/``height``/``steps``/``cfg``/``sampler``/
``scheduler`` in the spec override them). ``seconds`` is the expected time of one
image at the preset's size and steps on the reference GPU (an RTX 4090 with SDXL),
used by :func:`estimate`:

=========  =====  ===========  ====  ============  =========  ===========  =======
quality    steps  image size   cfg   sampler       scheduler  video size   seconds
=========  =====  ===========  ====  ============  =========  ===========  =======
low        12     768 × 768    5.0   euler         normal     384 × 384    2.0
medium     24     1024 × 1024  6.5   dpmpp_2m      karras     512 × 512    5.0
high       32     1152 × 1152  7.0   dpmpp_2m      karras     640 × 640    9.0
ultra      48     1536 × 1536  7.0   dpmpp_2m_sde  karras     768 × 768    25.0
=========  =====  ===========  ====  ============  =========  ===========  =======

Per architecture (the pool's ``template.checkpoints``, :mod:`warmpool.crds.checkpoint`;
an undeclared checkpoint is ``sdxl``, the table above). FLUX.1 runs at KSampler CFG 1 with
``euler``/``simple`` (no negative prompt is evaluated: half the work of CFG > 1), and the
``cfg`` column is then the **Flux guidance** (``FluxGuidance``; a job's explicit ``cfg`` is
its guidance). The seconds are assumed figures for an fp8 FLUX.1 on the reference GPU
(about twice an SDXL step's time at CFG 1), not measurements:

============  =========  =====  ===========  ========  =======
architecture  quality    steps  image size   guidance  seconds
============  =========  =====  ===========  ========  =======
flux-dev      low        16     768 × 768    3.5       5.0
flux-dev      medium     20     1024 × 1024  3.5       11.0
flux-dev      high       28     1152 × 1152  3.5       20.0
flux-dev      ultra      40     1536 × 1536  3.5       55.0
flux-schnell  low        4      768 × 768    —         1.3
flux-schnell  medium     4      1024 × 1024  —         2.2
flux-schnell  high       4      1152 × 1152  —         2.9
flux-schnell  ultra      4      1536 × 1536  —         5.5
============  =========  =====  ===========  ========  =======

Graphs (node ids are fixed, so golden files stay stable):

- text-to-image: ``1`` CheckpointLoaderSimple → [``2`` LoraLoader] → ``3``/``4``
  CLIPTextEncode (positive/negative) → ``5`` EmptyLatentImage (batch) → ``8`` KSampler
  → ``9`` VAEDecode → ``10`` SaveImage;
- Flux (``flux-dev``/``flux-schnell``): ``1`` CheckpointLoaderSimple, or for split files
  ``1`` UNETLoader + ``13`` DualCLIPLoader (type ``flux``) + ``14`` VAELoader →
  [``2`` LoraLoader] → ``3`` CLIPTextEncode → [``11`` FluxGuidance, dev only] → the sampler's
  positive; ``4`` ConditioningZeroOut of ``3`` is the negative (what ComfyUI's own Flux
  templates do: at CFG 1 it is never evaluated, and the negative prompt is not used) →
  ``5`` EmptySD3LatentImage (16 channels) → ``8`` KSampler at CFG 1 → …;
- image-to-image (``reference_image``): ``5`` LoadImage → ``6`` ImageScale (to the
  target size, centre crop) → ``7`` VAEEncode → ``8`` KSampler with ``denoise``
  (default 0.6) → …;
- reference conditioning (``style``, a muse's references on a pool's Flux Redux):
  ``50`` StyleModelLoader, ``51`` CLIPVisionLoader and per reference LoadImage →
  CLIPVisionEncode → StyleModelApply chained from ``3`` (after ``11`` FluxGuidance, as in
  ComfyUI's Redux template) into the sampler's positive (:mod:`.conditioning`);
- animation (pools without a video model): the SDXL latent batch holds the frames
  (default 16) → ``8`` KSampler → ``9`` VAEDecode → ``10`` SaveAnimatedWEBP at ``fps``
  (default 8): independent images, not a video model;
- video: a real video model family of the pool (Wan 2.x, LTX-Video), text- or
  image-to-video, saved as MP4 plus a poster PNG: :mod:`.videos`.

Outputs are saved under the prefix ``warmpool/<namespace>/<job>`` so every file
names its job.

Past ~400 lines: the preset tables, the estimate and the image graphs share the fixed node
ids of the golden files; what each image architecture means (presets, loaders, notes) is
in :mod:`.architectures`, video graphs in :mod:`.videos`, the graph check in
:mod:`.graphcheck`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from warmpool.crds.checkpoint import CheckpointSpec
from warmpool.crds.videofamily import VideoFamilySpec
from warmpool.operator.decisions import architectures, conditioning, videos
from warmpool.operator.decisions.architectures import DEFAULT_CHECKPOINT as DEFAULT_CHECKPOINT
from warmpool.operator.decisions.architectures import PRESETS as PRESETS
from warmpool.operator.decisions.architectures import Preset as Preset
from warmpool.operator.decisions.architectures import default_checkpoint as default_checkpoint
from warmpool.operator.decisions.graphcheck import validate_graph as validate_graph

DEFAULT_IMG2IMG_DENOISE = 0.6
DEFAULT_FRAMES = 16
DEFAULT_FPS = 8
#: Fixed seconds per job beyond sampling (graph start, decode, save, upload).
OVERHEAD_SECONDS = 3.0
#: Largest seed chosen for -1: exact in JSON numbers everywhere (JavaScript included).
MAX_CHOSEN_SEED = 2**53 - 1

Quality = Literal["low", "medium", "high", "ultra"]


class LoraLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def strength(self) -> float: ...


class JobSpecLike(Protocol):
    """The fields of ``GenerationJobSpec`` the builders read."""

    @property
    def kind(self) -> str: ...
    @property
    def prompt(self) -> str: ...
    @property
    def negative_prompt(self) -> str: ...
    @property
    def model(self) -> str | None: ...
    @property
    def quality(self) -> str: ...
    @property
    def width(self) -> int | None: ...
    @property
    def height(self) -> int | None: ...
    @property
    def steps(self) -> int | None: ...
    @property
    def cfg(self) -> float | None: ...
    @property
    def sampler(self) -> str | None: ...
    @property
    def scheduler(self) -> str | None: ...
    @property
    def seed(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def frames(self) -> int | None: ...
    @property
    def fps(self) -> int | None: ...
    @property
    def lora(self) -> LoraLike | None: ...
    @property
    def reference_image(self) -> str | None: ...
    @property
    def denoise(self) -> float | None: ...


class WorkflowError(ValueError):
    """The spec cannot be turned into a graph (e.g. a reference image was not uploaded)."""


@dataclass(frozen=True)
class Workflow:
    """A built graph and the values it was built with (for status and estimates)."""

    graph: dict[str, Any]
    seed: int
    output_node: str
    filename_prefix: str
    width: int
    height: int
    steps: int
    frames: int  # images in the batch, or video frames
    fps: int = 0  # video and animation only
    architecture: str = "sdxl"
    notes: tuple[str, ...] = ()  # what the job asked for that this architecture does not use


@dataclass(frozen=True)
class Settings:
    """Resolved generation settings: the preset overridden by the spec."""

    checkpoint: str
    width: int
    height: int
    steps: int
    cfg: float  # the KSampler's (1.0 on Flux)
    sampler: str
    scheduler: str
    count: int  # batch size, or frames for video
    fps: int
    architecture: str = "sdxl"
    guidance: float | None = None  # FluxGuidance (flux-dev only)


def resolve(spec: JobSpecLike, checkpoint: CheckpointSpec | None = None) -> Settings:
    """The preset for ``spec.quality`` on ``checkpoint``'s architecture (``sdxl`` when not
    declared) with the spec's explicit values on top. On Flux the KSampler runs at CFG 1
    and an explicit ``cfg`` is the flux-dev guidance (schnell takes none)."""
    ckpt = checkpoint or architectures.SDXL
    preset = architectures.presets_for(ckpt)[spec.quality]
    video = spec.kind != "image"  # an animation's frames (a video job: see resolve_video)
    cfg = spec.cfg if spec.cfg is not None else preset.cfg
    guidance = None
    if ckpt.flux:
        if ckpt.architecture == "flux-dev":
            default = ckpt.guidance if ckpt.guidance is not None else preset.cfg
            guidance = spec.cfg if spec.cfg is not None else default
        cfg = 1.0
    return Settings(
        checkpoint=spec.model or DEFAULT_CHECKPOINT,
        width=spec.width or (preset.video_width if video else preset.width),
        height=spec.height or (preset.video_height if video else preset.height),
        steps=spec.steps or preset.steps,
        cfg=cfg,
        sampler=spec.sampler or preset.sampler,
        scheduler=spec.scheduler or preset.scheduler,
        count=(spec.frames or DEFAULT_FRAMES) if video else spec.batch_size,
        fps=spec.fps or DEFAULT_FPS,
        architecture=ckpt.architecture,
        guidance=guidance,
    )


def filename_prefix(namespace: str, job: str) -> str:
    """``warmpool/<namespace>/<job>``: ties every output file to its job."""
    return f"warmpool/{namespace}/{job}"


def choose_seed(seed: int, rng: random.Random | None) -> int:
    """``seed`` itself, or for -1 one drawn from ``rng`` (required then)."""
    if seed >= 0:
        return seed
    if rng is None:
        raise WorkflowError("seed -1 needs a random source to choose one")
    return rng.randint(0, MAX_CHOSEN_SEED)


def resolve_video(spec: JobSpecLike, family: VideoFamilySpec) -> videos.VideoSettings:
    """The video settings of ``spec`` on ``family``."""
    return videos.resolve_video(
        architecture=family.architecture, quality=spec.quality, width=spec.width,
        height=spec.height, steps=spec.steps, cfg=spec.cfg, sampler=spec.sampler,
        scheduler=spec.scheduler, frames=spec.frames, fps=spec.fps,
    )  # fmt: skip


def build_workflow(
    spec: JobSpecLike,
    *,
    namespace: str,
    job: str,
    rng: random.Random | None = None,
    positive: str | None = None,
    negative: str | None = None,
    reference_upload: str | None = None,
    family: VideoFamilySpec | None = None,
    style: conditioning.StyleInputs | None = None,
    checkpoint: CheckpointSpec | None = None,
) -> Workflow:
    """Build the graph for ``spec``.

    ``positive``/``negative`` replace the spec's prompts (the muse composer's output);
    ``reference_upload`` is the ComfyUI input name of the uploaded reference image
    (``"<subfolder>/<name>"``), required when ``spec.reference_image`` is set;
    ``family`` is the pool's video family a ``video`` job runs on (required then);
    ``style`` the uploaded references a style model applies to the positive prompt
    (:func:`.conditioning.style_inputs`; image and animation jobs only);
    ``checkpoint`` how the pool declares ``spec.model`` (``TemplateSpec.checkpoint``;
    without one, ``sdxl``).
    """
    seed = choose_seed(spec.seed, rng)
    if spec.reference_image and reference_upload is None:
        raise WorkflowError("reference_image set but no uploaded input name given")
    prefix = filename_prefix(namespace, job)
    if spec.kind == "video":
        if style is not None:
            raise WorkflowError("reference conditioning is for image and animation jobs")
        return _video_workflow(spec, family, seed=seed, prefix=prefix, positive=positive,
                               negative=negative, reference_upload=reference_upload)  # fmt: skip
    ckpt = checkpoint or architectures.SDXL
    s = resolve(spec, ckpt)
    video = spec.kind == "animation"
    if spec.reference_image and video:
        raise WorkflowError("an animation cannot start from a reference image; use a video "
                            "job on a pool with an image-to-video family")  # fmt: skip
    graph, model, clip, vae = architectures.loader_nodes(ckpt, s.checkpoint)
    if spec.lora is not None:
        graph["2"] = {
            "class_type": "LoraLoader",
            "inputs": {
                "model": model,
                "clip": clip,
                "lora_name": spec.lora.name,
                "strength_model": spec.lora.strength,
                "strength_clip": spec.lora.strength,
            },
        }
        model, clip = ["2", 0], ["2", 1]
    graph["3"] = {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": positive if positive is not None else spec.prompt, "clip": clip},
    }
    positive_link: list[Any] = ["3", 0]
    if ckpt.flux:  # no negative prompt: the prompt's conditioning zeroed (never evaluated)
        graph["4"] = {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["3", 0]}}
        if s.guidance is not None:
            graph["11"] = {
                "class_type": "FluxGuidance",
                "inputs": {"conditioning": positive_link, "guidance": s.guidance},
            }
            positive_link = ["11", 0]
    else:
        graph["4"] = {
            "class_type": "CLIPTextEncode",
            "inputs": {
                "text": negative if negative is not None else spec.negative_prompt,
                "clip": clip,
            },
        }
    if style is not None and style.images:
        nodes, positive_link = conditioning.style_nodes(style, positive_link)
        graph.update(nodes)
    denoise = 1.0
    if spec.reference_image:
        graph["5"] = {"class_type": "LoadImage", "inputs": {"image": reference_upload}}
        graph["6"] = {
            "class_type": "ImageScale",
            "inputs": {
                "image": ["5", 0],
                "upscale_method": "lanczos",
                "width": s.width,
                "height": s.height,
                "crop": "center",
            },
        }
        graph["7"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["6", 0], "vae": vae}}
        latent: list[Any] = ["7", 0]
        denoise = spec.denoise if spec.denoise is not None else DEFAULT_IMG2IMG_DENOISE
    else:
        graph["5"] = {
            "class_type": "EmptySD3LatentImage" if ckpt.flux else "EmptyLatentImage",
            "inputs": {"width": s.width, "height": s.height, "batch_size": s.count},
        }
        latent = ["5", 0]
        if spec.denoise is not None:
            denoise = spec.denoise
    graph["8"] = {
        "class_type": "KSampler",
        "inputs": {
            "seed": seed,
            "steps": s.steps,
            "cfg": s.cfg,
            "sampler_name": s.sampler,
            "scheduler": s.scheduler,
            "denoise": denoise,
            "model": model,
            "positive": positive_link,
            "negative": ["4", 0],
            "latent_image": latent,
        },
    }
    graph["9"] = {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": vae}}
    if video:
        graph["10"] = {
            "class_type": "SaveAnimatedWEBP",
            "inputs": {
                "images": ["9", 0],
                "filename_prefix": prefix,
                "fps": float(s.fps),
                "lossless": False,
                "quality": 90,
                "method": "default",
            },
        }
    else:
        graph["10"] = {
            "class_type": "SaveImage",
            "inputs": {"images": ["9", 0], "filename_prefix": prefix},
        }
    count = 1 if spec.reference_image else s.count
    notes = architectures.notes_for(
        ckpt, kind=spec.kind, cfg=spec.cfg,
        negative=negative if negative is not None else spec.negative_prompt,
    )  # fmt: skip
    return Workflow(graph, seed, "10", prefix, s.width, s.height, s.steps, count,
                    s.fps if video else 0, architecture=ckpt.architecture,
                    notes=notes)  # fmt: skip


def _video_workflow(
    spec: JobSpecLike,
    family: VideoFamilySpec | None,
    *,
    seed: int,
    prefix: str,
    positive: str | None,
    negative: str | None,
    reference_upload: str | None,
) -> Workflow:
    if family is None:
        raise WorkflowError(
            f"the pool has no video family {spec.model!r}" if spec.model else
            "the pool declares no video family (template.videoFamilies); "
            "use kind animation for SDXL frames"
        )  # fmt: skip
    if spec.reference_image and "image" not in family.modes:
        raise WorkflowError(f"video family {family.name!r} does not do image-to-video")
    if not spec.reference_image and "text" not in family.modes:
        raise WorkflowError(f"video family {family.name!r} needs a reference image")
    if spec.lora is not None:
        raise WorkflowError("LoRAs are not supported on video families")
    s = resolve_video(spec, family)
    graph = videos.build_video_graph(
        s, family, seed=seed, prefix=prefix,
        positive=positive if positive is not None else spec.prompt,
        negative=negative if negative is not None else spec.negative_prompt,
        start_image=reference_upload if spec.reference_image else None,
    )  # fmt: skip
    return Workflow(graph, seed, "35", prefix, s.width, s.height, s.steps, s.frames, s.fps)


# ---------------------------------------------------------------- estimates


@dataclass(frozen=True)
class Estimate:
    """Expected run time and cost of one job."""

    seconds: float
    dollars: float


#: GPU speed relative to the reference RTX 4090 (diffusion sampling, fp16/bf16).
GPU_SPEED: dict[str, float] = {
    "RTX 3090": 0.55, "RTX 4080": 0.75, "RTX 4090": 1.0, "RTX 5090": 1.35,
    "RTX A6000": 0.6, "RTX 6000Ada": 0.95, "L40S": 0.95, "A100 PCIE": 1.1,
    "A100 SXM4": 1.2, "H100 PCIE": 1.6, "H100 SXM": 1.9,
}  # fmt: skip


def gpu_speed(gpu_name: str | None) -> float:
    """Speed of ``gpu_name`` (Vast.ai spelling, or ComfyUI's "NVIDIA GeForce RTX 4090")
    relative to the reference GPU; 1.0 when unknown."""
    if not gpu_name:
        return 1.0
    name = gpu_name.removeprefix("NVIDIA ").removeprefix("GeForce ").strip().lower()
    for known, speed in GPU_SPEED.items():
        if name == known.lower():
            return speed
    return 1.0


def estimate(
    spec: JobSpecLike,
    *,
    price_per_hour: float,
    speed: float | None = None,
    presets: Mapping[str, Preset] | None = None,
    family: VideoFamilySpec | None = None,
    gpu: str | None = None,
    checkpoint: CheckpointSpec | None = None,
) -> Estimate:
    """Expected seconds and dollars of ``spec`` on a GPU rented at ``price_per_hour``.

    The preset's ``seconds`` (one image at its size and steps on the reference GPU)
    scales linearly with steps, pixels and images/frames; ``speed`` is the GPU's speed
    relative to the reference (2.0 = twice as fast; default: :func:`gpu_speed` of
    ``gpu``); a fixed overhead is added. A video job is priced per frame of its
    ``family`` (:func:`videos.video_seconds`; without one, a Wan family's figure). The
    studio's estimate and a job's ``estimatedCost`` both come from here. An image job is
    priced on the presets of ``checkpoint``'s architecture (``sdxl`` without one).
    """
    speed = speed if speed is not None else gpu_speed(gpu)
    if spec.kind == "video":
        fam = family or VideoFamilySpec(name="wan", architecture="wan", diffusion_model="-",
                                        text_encoder="-", vae="-")  # fmt: skip
        sampling = videos.video_seconds(resolve_video(spec, fam), fam, speed=speed)
        seconds = round(OVERHEAD_SECONDS + sampling, 3)
        return Estimate(seconds=seconds, dollars=round(seconds / 3600.0 * price_per_hour, 6))
    preset = (presets or architectures.presets_for(checkpoint))[spec.quality]
    s = resolve(spec, checkpoint)
    count = 1 if spec.reference_image else s.count
    pixels = (s.width * s.height) / (preset.width * preset.height)
    sampling = preset.seconds * (s.steps / preset.steps) * pixels * count / speed
    seconds = round(OVERHEAD_SECONDS + sampling, 3)
    return Estimate(seconds=seconds, dollars=round(seconds / 3600.0 * price_per_hour, 6))
