"""Video graphs for real video model families (Wan 2.x, LTX-Video), from core nodes only.

Pure: no I/O, no clock. Node ids are fixed so golden files stay stable; every class and
input was checked against the real ComfyUI 0.3.64 ``/object_info``:

- loaders: ``1`` UNETLoader (``diffusion_models``) · ``2`` CLIPLoader (type ``wan`` or
  ``ltxv``) · ``3`` VAELoader · Wan: ``4`` ModelSamplingSD3 (shift 8, as Comfy's examples);
- prompts: ``6``/``7`` CLIPTextEncode (positive/negative);
- image-to-video: ``11`` LoadImage → ``12`` ImageScale (to the video size, centre crop);
  Wan with a CLIP vision file: ``13`` CLIPVisionLoader → ``14`` CLIPVisionEncode;
- latent: ``20`` EmptyHunyuanLatentVideo | WanImageToVideo (Wan 2.1, Wan 2.2 14B),
  Wan22ImageToVideoLatent (Wan 2.2 5B, start image optional), EmptyLTXVLatentVideo |
  LTXVImgToVideo (LTX) · LTX: ``21`` LTXVConditioning (frame rate);
- ``30`` KSampler → ``31`` VAEDecode → ``32`` ImageFromBatch (first frame) → ``33``
  SaveImage (the poster) and ``34`` CreateVideo (fps) → ``35`` SaveVideo (MP4, H.264).

Frame counts follow the models' temporal compression: Wan makes ``4k+1`` frames, LTX
``8k+1``; a request is rounded up to the next such count. Sides are multiples of 16
(Wan) or 32 (Wan 2.2 5B, LTX), rounded down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warmpool.crds.videofamily import VideoArchitecture, VideoFamilySpec


@dataclass(frozen=True)
class Architecture:
    """What a model architecture needs and how fast it runs."""

    fps: int
    frame_step: int  # frames = k * frame_step + 1
    side_step: int
    cfg: float
    sampler: str
    scheduler: str
    text_encoder_type: str
    seconds_per_frame: float  # RTX 4090, 832×480, 20 steps


ARCHITECTURES: dict[VideoArchitecture, Architecture] = {
    "wan": Architecture(16, 4, 16, 6.0, "uni_pc", "simple", "wan", 2.0),
    "wan22": Architecture(24, 4, 32, 5.0, "uni_pc", "simple", "wan", 1.0),
    "ltxv": Architecture(24, 8, 32, 3.0, "euler", "simple", "ltxv", 0.3),
}
#: quality → (steps, width, height) of a video.
VIDEO_PRESETS: dict[str, tuple[int, int, int]] = {
    "low": (12, 512, 288),
    "medium": (20, 832, 480),
    "high": (30, 1024, 576),
    "ultra": (40, 1280, 720),
}
REFERENCE_PIXELS = 832 * 480
REFERENCE_STEPS = 20
DEFAULT_VIDEO_FRAMES = 33
WAN_SHIFT = 8.0
POSTER_SUFFIX = "-poster"


@dataclass(frozen=True)
class VideoSettings:
    """Resolved settings of one video job."""

    width: int
    height: int
    steps: int
    cfg: float
    sampler: str
    scheduler: str
    frames: int
    fps: int


def video_frames(requested: int, architecture: VideoArchitecture) -> int:
    """The smallest frame count the model makes that is at least ``requested``."""
    step = ARCHITECTURES[architecture].frame_step
    return ((max(1, requested) - 1 + step - 1) // step) * step + 1


def fit_side(value: int, step: int) -> int:
    """``value`` rounded down to a multiple of ``step`` (at least ``step``)."""
    return max(step, value - value % step)


def resolve_video(
    *,
    architecture: VideoArchitecture,
    quality: str,
    width: int | None,
    height: int | None,
    steps: int | None,
    cfg: float | None,
    sampler: str | None,
    scheduler: str | None,
    frames: int | None,
    fps: int | None,
) -> VideoSettings:
    """The architecture's defaults and the quality's size and steps, overridden."""
    arch = ARCHITECTURES[architecture]
    p_steps, p_width, p_height = VIDEO_PRESETS[quality]
    return VideoSettings(
        width=fit_side(width or p_width, arch.side_step),
        height=fit_side(height or p_height, arch.side_step),
        steps=steps or p_steps,
        cfg=cfg if cfg is not None else arch.cfg,
        sampler=sampler or arch.sampler,
        scheduler=scheduler or arch.scheduler,
        frames=video_frames(frames or DEFAULT_VIDEO_FRAMES, architecture),
        fps=fps or arch.fps,
    )


def video_seconds(s: VideoSettings, family: VideoFamilySpec, *, speed: float = 1.0) -> float:
    """Expected sampling seconds: seconds per frame × frames, scaled by pixels and steps."""
    per_frame = family.seconds_per_frame or ARCHITECTURES[family.architecture].seconds_per_frame
    scale = (s.width * s.height / REFERENCE_PIXELS) * (s.steps / REFERENCE_STEPS)
    return per_frame * s.frames * scale / speed


def build_video_graph(
    s: VideoSettings,
    family: VideoFamilySpec,
    *,
    seed: int,
    positive: str,
    negative: str,
    prefix: str,
    start_image: str | None = None,
) -> dict[str, Any]:
    """The API-format graph of one video job (see the module docstring for the nodes)."""
    arch = ARCHITECTURES[family.architecture]
    wan = family.architecture in ("wan", "wan22")
    graph: dict[str, Any] = {
        "1": {"class_type": "UNETLoader",
              "inputs": {"unet_name": family.diffusion_model, "weight_dtype": "default"}},
        "2": {"class_type": "CLIPLoader",
              "inputs": {"clip_name": family.text_encoder, "type": arch.text_encoder_type}},
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": family.vae}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": positive, "clip": ["2", 0]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": negative, "clip": ["2", 0]}},
    }  # fmt: skip
    model: list[Any] = ["1", 0]
    if wan:
        graph["4"] = {"class_type": "ModelSamplingSD3",
                      "inputs": {"model": model, "shift": WAN_SHIFT}}  # fmt: skip
        model = ["4", 0]
    size = {"width": s.width, "height": s.height, "length": s.frames, "batch_size": 1}
    pos: list[Any] = ["6", 0]
    neg: list[Any] = ["7", 0]
    if start_image is not None:
        graph["11"] = {"class_type": "LoadImage", "inputs": {"image": start_image}}
        graph["12"] = {"class_type": "ImageScale", "inputs": {
            "image": ["11", 0], "upscale_method": "lanczos", "width": s.width,
            "height": s.height, "crop": "center"}}  # fmt: skip
    if family.architecture == "wan22":
        inputs_22: dict[str, Any] = {"vae": ["3", 0], **size}
        if start_image is not None:
            inputs_22["start_image"] = ["12", 0]
        graph["20"] = {"class_type": "Wan22ImageToVideoLatent", "inputs": inputs_22}
        latent: list[Any] = ["20", 0]
    elif wan and start_image is not None:
        inputs: dict[str, Any] = {"positive": pos, "negative": neg, "vae": ["3", 0], **size,
                                  "start_image": ["12", 0]}  # fmt: skip
        if family.clip_vision:
            graph["13"] = {"class_type": "CLIPVisionLoader",
                           "inputs": {"clip_name": family.clip_vision}}  # fmt: skip
            graph["14"] = {"class_type": "CLIPVisionEncode", "inputs": {
                "clip_vision": ["13", 0], "image": ["12", 0], "crop": "none"}}  # fmt: skip
            inputs["clip_vision_output"] = ["14", 0]
        graph["20"] = {"class_type": "WanImageToVideo", "inputs": inputs}
        pos, neg, latent = ["20", 0], ["20", 1], ["20", 2]
    elif wan:
        graph["20"] = {"class_type": "EmptyHunyuanLatentVideo", "inputs": size}
        latent = ["20", 0]
    elif start_image is not None:
        graph["20"] = {"class_type": "LTXVImgToVideo", "inputs": {
            "positive": pos, "negative": neg, "vae": ["3", 0], "image": ["12", 0], **size,
            "strength": 1.0}}  # fmt: skip
        pos, neg, latent = ["20", 0], ["20", 1], ["20", 2]
    else:
        graph["20"] = {"class_type": "EmptyLTXVLatentVideo", "inputs": size}
        latent = ["20", 0]
    if not wan:
        graph["21"] = {"class_type": "LTXVConditioning", "inputs": {
            "positive": pos, "negative": neg, "frame_rate": float(s.fps)}}  # fmt: skip
        pos, neg = ["21", 0], ["21", 1]
    graph["30"] = {"class_type": "KSampler", "inputs": {
        "seed": seed, "steps": s.steps, "cfg": s.cfg, "sampler_name": s.sampler,
        "scheduler": s.scheduler, "denoise": 1.0, "model": model, "positive": pos,
        "negative": neg, "latent_image": latent}}  # fmt: skip
    graph["31"] = {"class_type": "VAEDecode", "inputs": {"samples": ["30", 0], "vae": ["3", 0]}}
    graph["32"] = {"class_type": "ImageFromBatch",
                   "inputs": {"image": ["31", 0], "batch_index": 0, "length": 1}}  # fmt: skip
    graph["33"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["32", 0], "filename_prefix": prefix + POSTER_SUFFIX},
    }
    graph["34"] = {"class_type": "CreateVideo",
                   "inputs": {"images": ["31", 0], "fps": float(s.fps)}}  # fmt: skip
    graph["35"] = {
        "class_type": "SaveVideo",
        "inputs": {"video": ["34", 0], "filename_prefix": prefix, "format": "mp4", "codec": "h264"},
    }
    return graph
