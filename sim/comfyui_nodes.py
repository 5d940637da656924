"""Node definitions of the ComfyUI simulator, as a current server reports them.

Shapes follow ``/object_info`` of ComfyUI 0.38 (contract §5-§6): V1 nodes from
``nodes.py`` with list combos, V3 nodes (``comfy_extras``) with ``"COMBO"`` specs,
``input_order``, ``hidden`` inputs and ``output_node``. Model combos are filled from
the simulator's inventory of files "on disk"; ``LoadImage`` from its ``input/`` folder.
The video, style-model and Flux nodes (:data:`FROM_RECORDING`) are defined alike in 0.38
and 0.3.64, so they are taken from the real 0.3.64 catalogue the simulator ships.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from warmpool.sim import comfyui_legacy

MAX_RESOLUTION = 16384
MAX_SEED = 0xFFFFFFFFFFFFFFFF

SAMPLERS: tuple[str, ...] = (
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2",
    "exp_heun_2_x0", "exp_heun_2_x0_sde", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast",
    "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde",
    "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
    "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm",
    "lcm", "ipndm", "ipndm_v", "deis", "cfgpp_ud10_ab", "res_multistep", "res_multistep_cfg_pp",
    "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "gradient_estimation",
    "gradient_estimation_cfg_pp", "er_sde", "seeds_2", "seeds_3", "sa_solver",
    "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2",
)  # fmt: skip
SCHEDULERS: tuple[str, ...] = (
    "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
    "linear_quadratic", "kl_optimal",
)  # fmt: skip
LATENT_UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]
IMAGE_UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]

#: The model folders a current server lists at ``GET /models``.
MODEL_FOLDERS: tuple[str, ...] = (
    "checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models",
    "clip_vision", "style_models", "embeddings", "diffusers", "vae_approx", "controlnet",
    "gligen", "upscale_models", "latent_upscale_models", "custom_nodes", "hypernetworks",
    "photomaker", "classifiers", "model_patches", "audio_encoders",
)  # fmt: skip
MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pt2", ".bin", ".pth", ".pkl", ".sft")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tiff")

_TIP_SEED = "The random seed used for creating the noise."
_TIP_STEPS = "The number of steps used in the denoising process."
_TIP_CFG = (
    "The Classifier-Free Guidance scale balances creativity and adherence to the prompt. "
    "Higher values result in images more closely matching the prompt however too high "
    "values will negatively impact quality."
)
_TIP_DENOISE = (
    "The amount of denoising applied, lower values will maintain the structure of the "
    "initial image allowing for image to image sampling."
)
_TIP_W = "The width of the latent images in pixels."
_TIP_H = "The height of the latent images in pixels."
_HIDDEN_V1 = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
_HIDDEN_V3 = {"prompt": ["PROMPT"], "extra_pnginfo": ["EXTRA_PNGINFO"]}


def _int(default: int, lo: int, hi: int, step: int | None = None, **extra: Any) -> list[Any]:
    opts: dict[str, Any] = {"default": default, "min": lo, "max": hi}
    if step is not None:
        opts["step"] = step
    opts.update(extra)
    return ["INT", opts]


def _float(default: float, lo: float, hi: float, step: float, **extra: Any) -> list[Any]:
    return ["FLOAT", {"default": default, "min": lo, "max": hi, "step": step, **extra}]


def _combo_v3(options: Sequence[str], default: str | None = None) -> list[Any]:
    opts: dict[str, Any] = {"multiselect": False, "options": list(options)}
    opts["default"] = default if default is not None else (options[0] if options else None)
    return ["COMBO", opts]


def _node(
    name: str,
    display: str,
    category: str,
    required: dict[str, list[Any]],
    outputs: Sequence[str],
    *,
    optional: dict[str, list[Any]] | None = None,
    hidden: Mapping[str, Any] | None = None,
    output_names: Sequence[str] | None = None,
    output_node: bool = False,
    module: str = "nodes",
    description: str = "",
) -> dict[str, Any]:
    inputs: dict[str, Any] = {"required": required}
    order: dict[str, list[str]] = {"required": list(required)}
    if optional:
        inputs["optional"] = optional
        order["optional"] = list(optional)
    if hidden:
        inputs["hidden"] = dict(hidden)
        order["hidden"] = list(hidden)
    return {
        "input": inputs,
        "input_order": order,
        "is_input_list": False,
        "output": list(outputs),
        "output_is_list": [False] * len(outputs),
        "output_name": list(output_names or outputs),
        "name": name,
        "display_name": display,
        "description": description,
        "python_module": module,
        "category": category,
        "output_node": output_node,
        "has_intermediate_output": False,
    }


#: Classes whose definitions come from the recorded real catalogue.
FROM_RECORDING: tuple[str, ...] = (
    "EmptyImage", "ImageFromBatch", "ModelSamplingSD3", "WanImageToVideo",
    "Wan22ImageToVideoLatent",
    "EmptyLTXVLatentVideo", "LTXVImgToVideo", "LTXVConditioning", "CLIPVisionLoader",
    "CLIPVisionEncode", "CreateVideo", "SaveVideo", "SaveWEBM", "StyleModelLoader",
    "StyleModelApply", "FluxGuidance", "ConditioningZeroOut", "EmptySD3LatentImage",
)  # fmt: skip


def merge_models(*sources: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Folder → files of every source, each file once, in first-seen order."""
    merged: dict[str, list[str]] = {}
    for source in sources:
        for folder, files in source.items():
            listed = merged.setdefault(folder, [])
            listed.extend(f for f in files if f not in listed)
    return merged


def scan_models(root: Path) -> dict[str, list[str]]:
    """The model files under ``root`` by folder, as ComfyUI lists them: hidden files (a
    download in progress) are not models; nested folders give ``sub/file`` names."""
    found: dict[str, list[str]] = {}
    if not root.is_dir():
        return found
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = [
            f.relative_to(folder).as_posix()
            for f in sorted(folder.rglob("*"))
            if f.is_file() and not any(part.startswith(".") for part in f.relative_to(folder).parts)
        ]
        found[folder.name] = files
    return found


def model_files(files: Sequence[str]) -> list[str]:
    """What a model combo lists: known extensions only, sorted."""
    return sorted(f for f in files if f.lower().endswith(MODEL_EXTENSIONS))


def node_definitions(
    models: Mapping[str, Sequence[str]], input_files: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Every node the simulator knows, keyed by class_type, in ``/object_info`` shape."""
    ckpts = model_files(models.get("checkpoints", ()))
    loras = model_files(models.get("loras", ()))
    vaes = [*model_files(models.get("vae", ())), "pixel_space"]
    unets = model_files(models.get("diffusion_models", ()))
    encoders = model_files(models.get("text_encoders", ()))
    images = sorted(f for f in input_files if f.lower().endswith(IMAGE_EXTENSIONS))
    samplers, schedulers = list(SAMPLERS), list(SCHEDULERS)
    res = MAX_RESOLUTION
    defs = [
        _node(
            "CheckpointLoaderSimple", "Load Checkpoint", "model/loaders",
            {"ckpt_name": [ckpts, {"tooltip": "The name of the checkpoint (model) to load."}]},
            ["MODEL", "CLIP", "VAE"],
            description="Loads a diffusion model checkpoint, diffusion models are used to "
            "denoise latents.",
        ),
        _node(
            "CLIPTextEncode", "CLIP Text Encode (Prompt)", "conditioning",
            {
                "text": ["STRING", {"multiline": True, "dynamicPrompts": True,
                                    "tooltip": "The text to be encoded."}],
                "clip": ["CLIP", {"tooltip": "The CLIP model used for encoding the text."}],
            },
            ["CONDITIONING"],
            description="Encodes a text prompt using a CLIP model into an embedding that can "
            "be used to guide the diffusion model towards generating specific images.",
        ),
        _node(
            "EmptyLatentImage", "Empty Latent Image", "latent",
            {
                "width": _int(1024, 16, res, 8, tooltip=_TIP_W),
                "height": _int(1024, 16, res, 8, tooltip=_TIP_H),
                "batch_size": _int(1, 1, 4096, tooltip="The number of latent images in the batch."),
            },
            ["LATENT"],
            description="Create a new batch of empty latent images to be denoised via sampling.",
        ),
        _node(
            "KSampler", "KSampler", "sampling",
            {
                "model": ["MODEL", {"tooltip": "The model used for denoising the input latent."}],
                "seed": _int(0, 0, MAX_SEED, control_after_generate=True, tooltip=_TIP_SEED),
                "steps": _int(20, 1, 10000, tooltip=_TIP_STEPS),
                "cfg": _float(8.0, 0.0, 100.0, 0.1, round=0.01, tooltip=_TIP_CFG),
                "sampler_name": [samplers, {"tooltip": "The algorithm used when sampling."}],
                "scheduler": [schedulers, {"tooltip": "The scheduler controls how noise is "
                                           "gradually removed to form the image."}],
                "positive": ["CONDITIONING"],
                "negative": ["CONDITIONING"],
                "latent_image": ["LATENT", {"tooltip": "The latent image to denoise."}],
                "denoise": _float(1.0, 0.0, 1.0, 0.01, tooltip=_TIP_DENOISE),
            },
            ["LATENT"],
            description="Uses the provided model, positive and negative conditioning to "
            "denoise the latent image.",
        ),
        _node(
            "KSamplerAdvanced", "KSampler (Advanced)", "sampling",
            {
                "model": ["MODEL"],
                "add_noise": [["enable", "disable"]],
                "noise_seed": _int(0, 0, MAX_SEED, control_after_generate=True),
                "steps": _int(20, 1, 10000),
                "cfg": _float(8.0, 0.0, 100.0, 0.1, round=0.01),
                "sampler_name": [samplers],
                "scheduler": [schedulers],
                "positive": ["CONDITIONING"],
                "negative": ["CONDITIONING"],
                "latent_image": ["LATENT"],
                "start_at_step": _int(0, 0, 10000),
                "end_at_step": _int(10000, 0, 10000),
                "return_with_leftover_noise": [["disable", "enable"]],
            },
            ["LATENT"],
        ),
        _node(
            "VAEDecode", "VAE Decode", "latent",
            {"samples": ["LATENT", {"tooltip": "The latent to be decoded."}],
             "vae": ["VAE", {"tooltip": "The VAE model used for decoding the latent."}]},
            ["IMAGE"],
            description="Decodes latent images back into pixel space images.",
        ),
        _node("VAEEncode", "VAE Encode", "latent",
              {"pixels": ["IMAGE"], "vae": ["VAE"]}, ["LATENT"]),
        _node(
            "SaveImage", "Save Image", "image",
            {
                "images": ["IMAGE", {"tooltip": "The images to save."}],
                "filename_prefix": ["STRING", {"default": "ComfyUI", "tooltip": (
                    "The prefix for the file to save. This may include formatting information "
                    "such as %date:yyyy-MM-dd% or %Empty Latent Image.width% to include values "
                    "from nodes.")}],
            },
            ["IMAGE"], output_names=["images"], hidden=_HIDDEN_V1, output_node=True,
            description="Saves the input images to your ComfyUI output directory.",
        ),
        _node("PreviewImage", "Preview Image", "image", {"images": ["IMAGE"]}, ["IMAGE"],
              output_names=["images"], hidden=_HIDDEN_V1, output_node=True,
              description="Saves the input images to your ComfyUI output directory."),
        _node("LoadImage", "Load Image", "image",
              {"image": [images, {"image_upload": True}]}, ["IMAGE", "MASK"]),
        _node(
            "LatentUpscale", "Upscale Latent", "latent",
            {"samples": ["LATENT"], "upscale_method": [LATENT_UPSCALE_METHODS],
             "width": _int(512, 0, res, 8), "height": _int(512, 0, res, 8),
             "crop": [["disabled", "center"]]},
            ["LATENT"],
        ),
        _node(
            "LatentUpscaleBy", "Upscale Latent By", "latent",
            {"samples": ["LATENT"], "upscale_method": [LATENT_UPSCALE_METHODS],
             "scale_by": _float(1.5, 0.01, 8.0, 0.01)},
            ["LATENT"],
        ),
        _node(
            "ImageScale", "Upscale Image", "image/upscaling",
            {"image": ["IMAGE"], "upscale_method": [IMAGE_UPSCALE_METHODS],
             "width": _int(512, 0, res, 1), "height": _int(512, 0, res, 1),
             "crop": [["disabled", "center"]]},
            ["IMAGE"],
        ),
        _node(
            "ImageScaleBy", "Upscale Image By", "image/upscaling",
            {"image": ["IMAGE"], "upscale_method": [IMAGE_UPSCALE_METHODS],
             "scale_by": _float(1.0, 0.01, 8.0, 0.01)},
            ["IMAGE"],
        ),
        _node(
            "LoraLoader", "Load LoRA (Model and CLIP)", "model/loaders",
            {
                "model": ["MODEL", {"tooltip": "The diffusion model the LoRA will be applied to."}],
                "clip": ["CLIP", {"tooltip": "The CLIP model the LoRA will be applied to."}],
                "lora_name": [loras, {"tooltip": "The name of the LoRA."}],
                "strength_model": _float(1.0, -100.0, 100.0, 0.01, tooltip=(
                    "How strongly to modify the diffusion model. This value can be negative.")),
                "strength_clip": _float(1.0, -100.0, 100.0, 0.01, tooltip=(
                    "How strongly to modify the CLIP model. This value can be negative.")),
            },
            ["MODEL", "CLIP"],
            description="LoRAs are used to modify diffusion and CLIP models, altering the way "
            "in which latents are denoised such as applying styles. Multiple LoRA nodes can be "
            "linked together.",
        ),
        _node("LoraLoaderModelOnly", "Load LoRA", "model/loaders",
              {"model": ["MODEL"], "lora_name": [loras],
               "strength_model": _float(1.0, -100.0, 100.0, 0.01)}, ["MODEL"]),
        _node("VAELoader", "Load VAE", "model/loaders", {"vae_name": [vaes]}, ["VAE"]),
        _node(
            "UNETLoader", "Load Diffusion Model", "advanced/loaders",
            {"unet_name": [unets],
             "weight_dtype": [["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]]},
            ["MODEL"],
        ),
        _node(
            "CLIPLoader", "Load CLIP", "advanced/loaders",
            {"clip_name": [encoders],
             "type": [["stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi",
                       "ltxv", "pixart", "cosmos", "lumina2", "wan", "hidream", "chroma",
                       "ace", "omnigen2", "qwen_image", "hunyuan_image"]]},
            ["CLIP"], optional={"device": [["default", "cpu"], {"advanced": True}]},
        ),
        _node(
            "DualCLIPLoader", "DualCLIPLoader", "advanced/loaders",
            {"clip_name1": [encoders], "clip_name2": [encoders],
             "type": [["sdxl", "sd3", "flux", "hunyuan_video", "hidream", "hunyuan_image"]]},
            ["CLIP"], optional={"device": [["default", "cpu"], {"advanced": True}]},
        ),
        _node(
            "SaveAnimatedWEBP", "SaveAnimatedWEBP", "image/animation",
            {"images": ["IMAGE", {}],
             "filename_prefix": ["STRING", {"default": "ComfyUI"}],
             "fps": _float(6.0, 0.01, 1000.0, 0.01),
             "lossless": ["BOOLEAN", {"default": True}],
             "quality": _int(80, 0, 100),
             "method": _combo_v3(["default", "fastest", "slowest"])},
            [], hidden=_HIDDEN_V3, output_node=True, module="comfy_extras.nodes_images",
        ),
        _node(
            "SaveAnimatedPNG", "SaveAnimatedPNG", "image/animation",
            {"images": ["IMAGE", {}],
             "filename_prefix": ["STRING", {"default": "ComfyUI"}],
             "fps": _float(6.0, 0.01, 1000.0, 0.01),
             "compress_level": _int(4, 0, 9)},
            [], hidden=_HIDDEN_V3, output_node=True, module="comfy_extras.nodes_images",
        ),
        _node(
            "EmptyHunyuanLatentVideo", "EmptyHunyuanLatentVideo", "latent/video",
            {"width": _int(848, 16, res, 16), "height": _int(480, 16, res, 16),
             "length": _int(25, 1, res, 4), "batch_size": _int(1, 1, 4096)},
            ["LATENT"], module="comfy_extras.nodes_hunyuan",
        ),
    ]  # fmt: skip
    return {d["name"]: d for d in defs} | comfyui_legacy.recorded_nodes(FROM_RECORDING, models)
