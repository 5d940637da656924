"""ComfyUI 0.3.64 as the simulator speaks it (``warmpool-sim comfyui --comfy-version 0.3.64``).

The node catalogue is the real server's ``/object_info``, recorded with no model
installed (``data/comfyui-0.3.64-object_info.json``: 478 classes, the Wan, LTX-Video
and Hunyuan video nodes included); the model-file choices are filled here from the
simulator's inventory, as the real server fills them from its folders. What differs
from the 0.38 dialect of :mod:`.comfyui_nodes` and :mod:`.comfyui_validation`:

- an unknown ``class_type`` (or none) is refused as ``invalid_prompt`` with
  ``"Cannot execute because node X does not exist."`` and details ``Node ID '#N'``;
- a client-chosen ``prompt_id`` need not be a UUID;
- ``SaveImage`` outputs ``[]``; the sampler list has 42 entries; COMBO inputs are
  plain lists; ``/system_stats`` has that version's fields;
- a link to a missing node or output slot is an ``exception_during_validation``
  (``KeyError`` / ``IndexError``) without ``input_name``, as the recordings show.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

VERSION = "0.3.64"

#: (class, input) → the model folder whose files the COMBO lists.
MODEL_INPUTS: dict[tuple[str, str], str] = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("CheckpointLoader", "ckpt_name"): "checkpoints",
    ("ImageOnlyCheckpointLoader", "ckpt_name"): "checkpoints",
    ("unCLIPCheckpointLoader", "ckpt_name"): "checkpoints",
    ("LoraLoader", "lora_name"): "loras",
    ("LoraLoaderModelOnly", "lora_name"): "loras",
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("CLIPLoader", "clip_name"): "text_encoders",
    ("DualCLIPLoader", "clip_name1"): "text_encoders",
    ("DualCLIPLoader", "clip_name2"): "text_encoders",
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("ControlNetLoader", "control_net_name"): "controlnet",
    ("StyleModelLoader", "style_model_name"): "style_models",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
}
MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pt2", ".bin", ".pth", ".pkl", ".sft")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tiff")


def _data(name: str) -> Any:
    return json.loads(resources.files("warmpool.sim").joinpath("data", name).read_text())


@functools.cache
def _catalogue() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = _data("comfyui-0.3.64-object_info.json")
    return data


def recorded_system_stats() -> dict[str, Any]:
    """``/system_stats`` of the recorded server (on CPU)."""
    data: dict[str, Any] = _data("comfyui-0.3.64-system_stats.json")
    return data


def model_folders() -> list[str]:
    """``GET /models`` of 0.3.64."""
    data: list[str] = _data("comfyui-0.3.64-models.json")
    return data


def _files(files: Sequence[str], extensions: tuple[str, ...]) -> list[str]:
    return sorted(f for f in files if f.lower().endswith(extensions))


def node_definitions(
    models: Mapping[str, Sequence[str]], input_files: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The recorded catalogue with model and input-image choices filled in."""
    return recorded_nodes(_catalogue(), models, input_files)


def recorded_nodes(
    names: Sequence[str] | Mapping[str, Any],
    models: Mapping[str, Sequence[str]],
    input_files: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """The recorded definitions of the classes ``names``, choices filled in.

    Only the classes whose choices are filled are copied; the others are the cached
    recorded definitions themselves (read-only: serialised and read by validation).
    """
    catalogue = _catalogue()
    filled = {cls for cls, _ in MODEL_INPUTS} | {"VAELoader", "LoadImage"}
    defs = {n: copy.deepcopy(catalogue[n]) if n in filled else catalogue[n] for n in names}
    for (cls, name), folder in MODEL_INPUTS.items():
        spec = defs.get(cls, {}).get("input", {}).get("required", {}).get(name)
        if spec is not None:
            spec[0] = _files(models.get(folder, ()), MODEL_EXTENSIONS)
    if "VAELoader" in defs:
        vae = defs["VAELoader"]["input"]["required"]["vae_name"]
        vae[0] = [*_files(models.get("vae", ()), MODEL_EXTENSIONS), "pixel_space"]
    if "LoadImage" in defs:
        load = defs["LoadImage"]["input"]["required"]["image"]
        load[0] = _files(input_files, IMAGE_EXTENSIONS)
    return defs


def system_stats(
    *, gpu_name: str, vram_total: int, vram_free: int, pytorch_version: str
) -> dict[str, Any]:
    """0.3.64's ``/system_stats`` fields, for a machine with one CUDA GPU."""
    stats = recorded_system_stats()
    system = stats["system"]
    system.update(
        os="posix",
        comfyui_version=VERSION,
        pytorch_version=pytorch_version,
        argv=["main.py", "--listen", "0.0.0.0", "--port", "8188"],
    )
    stats["devices"] = [
        {
            "name": f"cuda:0 {gpu_name} : cudaMallocAsync",
            "type": "cuda",
            "index": 0,
            "vram_total": vram_total,
            "vram_free": vram_free,
            "torch_vram_total": 0,
            "torch_vram_free": 0,
        }
    ]
    return stats


def is_legacy(version: str) -> bool:
    """Whether ``version`` speaks the 0.3.x dialect."""
    return version.startswith("0.3.")
