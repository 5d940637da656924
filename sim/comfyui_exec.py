"""Execution of one queued prompt in simulated time, with ComfyUI's websocket events.

Every node "runs" for a duration read from the simulator options (model load on
first use, seconds per sampler step scaled by megapixels × batch, a small time for
every other node) and produces a symbolic value: latents and images carry their
size, batch and a fingerprint of everything that shaped them (seed, prompt, model,
LoRA), so the files written at the end depend on the inputs. Outputs are cached per
node signature like ComfyUI's classic cache: a repeated loader is not re-run and an
identical prompt writes no new file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warmpool.sim import comfyui_images as images
from warmpool.sim.comfyui_host import Host

LOADERS = {
    "CheckpointLoaderSimple": ("checkpoints", "ckpt_name"),
    "LoraLoader": ("loras", "lora_name"),
    "LoraLoaderModelOnly": ("loras", "lora_name"),
    "VAELoader": ("vae", "vae_name"),
    "UNETLoader": ("diffusion_models", "unet_name"),
    "CLIPLoader": ("text_encoders", "clip_name"),
    "DualCLIPLoader": ("text_encoders", "clip_name1"),
    "CLIPVisionLoader": ("clip_vision", "clip_name"),
    "StyleModelLoader": ("style_models", "style_model_name"),
}
#: Empty video latents → how many frames a latent of ``length`` decodes to (temporal
#: compression 4 for Hunyuan/Wan, 8 for LTX-Video: 4k+1 and 8k+1 frames).
VIDEO_LATENTS = {
    "EmptyHunyuanLatentVideo": 4, "WanImageToVideo": 4, "Wan22ImageToVideoLatent": 4,
    "EmptyLTXVLatentVideo": 8, "LTXVImgToVideo": 8,
}  # fmt: skip
SAVERS = ("SaveImage", "PreviewImage", "SaveAnimatedWEBP", "SaveAnimatedPNG", "SaveVideo",
          "SaveWEBM")  # fmt: skip
SAMPLERS = {"KSampler", "KSamplerAdvanced"}
OOM_TIPS = (
    "This error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked "
    "before you might have accidentally set the batch_size to a large number."
)


class NodeFailure(Exception):
    """A node raised: becomes ``execution_error``."""

    def __init__(self, exception_type: str, message: str) -> None:
        super().__init__(message)
        self.exception_type = exception_type
        self.message = message


class Interrupted(Exception):
    """The interrupt flag was seen: becomes ``execution_interrupted``."""


class Crashed(Exception):
    """The simulated process died: nothing more is sent or written."""


@dataclass
class Pixels:
    """A latent or an image batch, symbolically."""

    width: int
    height: int
    batch: int
    fp: str


@dataclass
class Clip:
    """A VIDEO value (CreateVideo): frames and a frame rate."""

    images: Pixels
    fps: float


def video_frames(length: int, compression: int) -> int:
    """Frames a video latent of ``length`` decodes to."""
    return ((max(1, length) - 1) // compression) * compression + 1


def _h(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def execution_order(graph: dict[str, Any], outputs: list[str]) -> list[str]:
    """Depth-first post-order from the outputs: every node after its inputs."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(node_id: str) -> None:
        if node_id in seen:
            return
        seen.add(node_id)
        for value in graph[node_id]["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) in graph:
                visit(str(value[0]))
        order.append(node_id)

    for out in outputs:
        visit(out)
    return order


def signatures(graph: dict[str, Any], order: list[str]) -> dict[str, str]:
    """Cache key per node: class, literal inputs and the keys of linked nodes."""
    sig: dict[str, str] = {}
    for node_id in order:
        node = graph[node_id]
        parts = {
            k: (sig[str(v[0])], v[1]) if isinstance(v, list) and len(v) == 2 else v
            for k, v in sorted(node["inputs"].items())
        }
        sig[node_id] = _h(node["class_type"], parts)
    return sig


class PromptRun:
    """One prompt going through the executor."""

    def __init__(self, server: Host, item: list[Any]) -> None:
        self.server = server
        self.number, self.prompt_id, self.graph, self.extra, self.outputs = item
        self.sid: str | None = self.extra.get("client_id")
        self.messages: list[list[Any]] = []
        self.ui: dict[str, Any] = {}
        self.executed: list[str] = []
        self.states: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------- events
    def _ts(self) -> int:
        return int(self.server.clock.now() * 1000)

    async def _event(self, kind: str, data: dict[str, Any], *, history: bool = False) -> None:
        if history:
            self.messages.append([kind, data])
        await self.server.send(kind, data, sid=self.sid)

    async def _state(self, node_id: str, state: str, value: float = 0, maximum: float = 1) -> None:
        self.states[node_id] = {
            "value": value, "max": maximum, "state": state, "node_id": node_id,
            "prompt_id": self.prompt_id, "display_node_id": node_id,
            "parent_node_id": None, "real_node_id": node_id,
        }  # fmt: skip
        await self.server.send(
            "progress_state", {"prompt_id": self.prompt_id, "nodes": dict(self.states)},
            sid=self.sid,
        )  # fmt: skip

    # ------------------------------------------------------------- run
    async def run(self) -> str:
        """Execute; returns ``success``, ``error`` or ``interrupted`` (raises Crashed)."""
        pid = self.prompt_id
        await self._event("execution_start", {"prompt_id": pid, "timestamp": self._ts()},
                          history=True)  # fmt: skip
        order = execution_order(self.graph, self.outputs)
        sigs = signatures(self.graph, order)
        cache = self.server.cache
        cached = [n for n in order if sigs[n] in cache]
        await self._event("execution_cached",
                          {"nodes": cached, "prompt_id": pid, "timestamp": self._ts()},
                          history=True)  # fmt: skip
        values: dict[str, list[Any]] = {}
        current_outputs = list(cached)
        for node_id in order:
            node = self.graph[node_id]
            if node_id in cached:
                values[node_id], ui = cache[sigs[node_id]]
                if ui is not None:
                    self.ui[node_id] = ui
                    await self._event("executed", {"node": node_id, "display_node": node_id,
                                                   "output": ui, "prompt_id": pid})  # fmt: skip
                continue
            if self.server.take_interrupt(pid):
                return await self._interrupted(node_id, node)
            await self._state(node_id, "running")
            self.server.last_node[pid] = node_id
            await self._event("executing", {"node": node_id, "display_node": node_id,
                                            "prompt_id": pid})  # fmt: skip
            inputs = {
                k: values[str(v[0])][v[1]] if isinstance(v, list) and len(v) == 2 else v
                for k, v in node["inputs"].items()
            }
            try:
                values[node_id], ui = await self._run_node(node_id, node["class_type"], inputs)
            except Interrupted:
                return await self._interrupted(node_id, node)
            except NodeFailure as exc:
                await self._state(node_id, "error")
                await self._error(node_id, node, inputs, exc, current_outputs)
                return "error"
            cache[sigs[node_id]] = (values[node_id], ui)
            self.executed.append(node_id)
            if ui is not None:
                self.ui[node_id] = ui
                await self._event("executed", {"node": node_id, "display_node": node_id,
                                               "output": ui, "prompt_id": pid})  # fmt: skip
            await self._state(node_id, "finished", 1, 1)
        await self._event("execution_success", {"prompt_id": pid, "timestamp": self._ts()},
                          history=True)  # fmt: skip
        return "success"

    async def _interrupted(self, node_id: str, node: dict[str, Any]) -> str:
        data = {"prompt_id": self.prompt_id, "node_id": node_id,
                "node_type": node["class_type"], "executed": list(self.executed),
                "timestamp": self._ts()}  # fmt: skip
        self.messages.append(["execution_interrupted", data])
        await self.server.send("execution_interrupted", data, sid=self.sid, broadcast=True)
        return "interrupted"

    async def _error(
        self,
        node_id: str,
        node: dict[str, Any],
        inputs: dict[str, Any],
        exc: NodeFailure,
        current_outputs: list[str],
    ) -> None:
        current = {
            k: [v if isinstance(v, (int, float, str, bool)) else f"<{type(v).__name__} object>"]
            for k, v in inputs.items()
        }
        await self._event(
            "execution_error",
            {
                "prompt_id": self.prompt_id, "node_id": node_id,
                "node_type": node["class_type"], "executed": list(self.executed),
                "exception_message": exc.message, "exception_type": exc.exception_type,
                "traceback": ['  File "/app/ComfyUI/execution.py", line 297, in execute\n'],
                "current_inputs": current, "current_outputs": current_outputs,
                "timestamp": self._ts(),
            },
            history=True,
        )  # fmt: skip

    # ------------------------------------------------------------- nodes
    async def _run_node(
        self, node_id: str, cls: str, inp: dict[str, Any]
    ) -> tuple[list[Any], dict[str, Any] | None]:
        opts = self.server.options
        self.server.check_fault(cls, step=0)
        if cls in LOADERS:
            folder, key = LOADERS[cls]
            name = str(inp[key])
            if self.server.model_gone_at_runtime(folder, name):
                raise NodeFailure(
                    "FileNotFoundError",
                    f"Model in folder '{folder}' with filename '{name}' not found.\n",
                )
            if (folder, name) not in self.server.loaded:
                await self._sleep(opts.load_seconds)
                self.server.loaded.add((folder, name))
            base = inp.get("model") or inp.get("clip") or ""
            lora = (name, inp.get("strength_model"), base) if folder == "loras" else name
            return [_h(cls, lora), _h(cls, lora, "clip"), _h(cls, name, "vae")], None
        if cls in SAMPLERS:
            latent: Pixels = inp["latent_image"]
            steps = int(inp["steps"])
            if cls == "KSamplerAdvanced":
                steps = max(0, min(steps, int(inp["end_at_step"])) - int(inp["start_at_step"]))
            megapixels = latent.width * latent.height * latent.batch / (1024 * 1024)
            per_step = opts.step_seconds * max(1.0, megapixels)
            for step in range(1, steps + 1):
                await self._sleep(per_step)
                await self.server.step_hook(self.prompt_id, step)
                self.server.check_fault(cls, step=step)
                if self.server.take_interrupt(self.prompt_id):
                    raise Interrupted
                await self._state(node_id, "running", step, steps)
                await self.server.send("progress", {"value": step, "max": steps,
                                                    "prompt_id": self.prompt_id,
                                                    "node": node_id}, sid=self.sid)  # fmt: skip
            fp = _h(inp["model"], inp.get("seed", inp.get("noise_seed")), inp["positive"],
                    inp["negative"], steps, inp["cfg"], inp["sampler_name"], inp["scheduler"],
                    inp.get("denoise"), latent.fp)  # fmt: skip
            return [Pixels(latent.width, latent.height, latent.batch, fp)], None
        await self._sleep(opts.node_seconds)
        if cls == "CLIPTextEncode":
            return [_h(inp["clip"], inp["text"])], None
        if cls in ("EmptyLatentImage", "EmptySD3LatentImage", "EmptyImage"):
            batch = int(inp["batch_size"])
            w, h = int(inp["width"]), int(inp["height"])
            return [Pixels(w, h, batch, _h(cls, w, h, batch, inp.get("color")))], None
        if cls in VIDEO_LATENTS:
            frames = video_frames(int(inp["length"]), VIDEO_LATENTS[cls])
            batch = int(inp["batch_size"]) * frames
            w, h = int(inp["width"]), int(inp["height"])
            start = inp.get("start_image") or inp.get("image")
            fp = _h(cls, w, h, batch, start.fp if isinstance(start, Pixels) else None)
            latent = Pixels(w, h, batch, fp)
            if "positive" not in inp:
                return [latent], None
            return [_h(inp["positive"], fp), _h(inp["negative"], fp), latent], None
        if cls in ("ModelSamplingSD3", "ModelSamplingLTXV"):
            return [_h(cls, inp["model"], inp.get("shift"), inp.get("max_shift"))], None
        if cls == "LTXVConditioning":
            rate = inp["frame_rate"]
            return [_h(inp["positive"], rate), _h(inp["negative"], rate)], None
        if cls == "CLIPVisionEncode":
            return [_h(cls, inp["clip_vision"], inp["image"].fp)], None
        if cls == "FluxGuidance":  # the guidance shapes the image
            return [_h(cls, inp["conditioning"], inp["guidance"])], None
        if cls == "ConditioningZeroOut":
            return [_h(cls, inp["conditioning"])], None
        if cls == "StyleModelApply":  # the reference shapes the conditioning, so the image
            return [_h(cls, inp["conditioning"], inp["style_model"], inp["clip_vision_output"],
                       inp["strength"], inp["strength_type"])], None  # fmt: skip
        if cls == "ImageFromBatch":
            whole: Pixels = inp["image"]
            index = min(int(inp["batch_index"]), whole.batch - 1)
            count = min(int(inp["length"]), whole.batch - index)
            fp = whole.fp if index == 0 else _h(cls, whole.fp, index)  # frame 0: the same
            return [Pixels(whole.width, whole.height, count, fp)], None
        if cls == "CreateVideo":
            return [Clip(inp["images"], float(inp["fps"]))], None
        if cls in ("VAEDecode", "VAEEncode"):
            src: Pixels = inp["samples"] if cls == "VAEDecode" else inp["pixels"]
            return [Pixels(src.width, src.height, src.batch, _h(cls, src.fp, inp["vae"]))], None
        if cls in ("ImageScale", "LatentUpscale", "ImageScaleBy", "LatentUpscaleBy"):
            src = inp["image"] if "image" in inp else inp["samples"]
            if "scale_by" in inp:
                w, h = round(src.width * inp["scale_by"]), round(src.height * inp["scale_by"])
            else:
                w, h = int(inp["width"]), int(inp["height"])
                w = w or round(src.width * h / src.height)
                h = h or round(src.height * w / src.width)
            return [Pixels(max(1, w), max(1, h), src.batch, _h(cls, src.fp, w, h))], None
        if cls == "LoadImage":
            w, h, digest = self.server.input_image_info(str(inp["image"]))
            return [Pixels(w, h, 1, digest), _h("mask", digest)], None
        if cls in SAVERS:
            return self._save(cls, inp)
        return [None], None

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            await self.server.clock.sleep(seconds)

    def _save(self, cls: str, inp: dict[str, Any]) -> tuple[list[Any], dict[str, Any] | None]:
        clip: Clip | None = inp["video"] if cls == "SaveVideo" else None
        pics: Pixels = clip.images if clip is not None else inp["images"]
        temp = cls == "PreviewImage"
        prefix = str(inp.get("filename_prefix", "ComfyUI"))
        if temp:
            prefix = "ComfyUI_temp_" + _h(self.prompt_id)[:5]
        prefix = prefix.replace("%width%", str(pics.width)).replace("%height%", str(pics.height))
        base_dir = self.server.root / ("temp" if temp else "output")
        folder = (base_dir / prefix).parent.resolve()
        if not folder.is_relative_to(base_dir.resolve()):
            raise NodeFailure("Exception", "Saving image outside the output folder is not allowed.")
        folder.mkdir(parents=True, exist_ok=True)
        base = Path(prefix).name
        subfolder = os.path.relpath(folder, base_dir.resolve())
        subfolder = "" if subfolder == "." else subfolder
        counter = _next_counter(folder, base)
        kind = "temp" if temp else "output"
        meta: dict[str, Any] = {"prompt": self.graph}
        meta.update(self.extra.get("extra_pnginfo") or {})
        frames = [
            images.render(pics.fp, pics.width, pics.height, frame=i) for i in range(pics.batch)
        ]
        if not temp and self.server.take_flat_output():
            frames = [images.flat(pics.width, pics.height) for _ in frames]
        entries: list[dict[str, str]] = []
        if cls in ("SaveImage", "PreviewImage"):
            for i, frame in enumerate(frames):
                name = f"{base.replace('%batch_num%', str(i))}_{counter + i:05}_.png"
                self.server.write_file(folder / name, images.png_bytes(frame, meta), kind)
                entries.append({"filename": name, "subfolder": subfolder, "type": kind})
            return [pics] if not self.server.legacy else [], {"images": entries}
        ext = {"SaveAnimatedWEBP": ".webp", "SaveVideo": ".mp4", "SaveWEBM": ".webm"}
        name = f"{base}_{counter:05}_" + ext.get(cls, ".png")
        if clip is not None:
            data = images.mp4_bytes(frames, fps=clip.fps)
        elif cls == "SaveWEBM":
            data = images.webm_bytes(frames, fps=float(inp["fps"]))
        elif cls == "SaveAnimatedWEBP":
            data = images.webp_bytes(
                frames,
                fps=float(inp["fps"]),
                lossless=bool(inp["lossless"]),
                quality=int(inp["quality"]),
            )
        else:
            data = images.apng_bytes(frames, fps=float(inp["fps"]))
        self.server.write_file(folder / name, data, kind)
        entry = {"filename": name, "subfolder": subfolder, "type": kind}
        if cls in ("SaveVideo", "SaveWEBM"):
            return [], {"images": [entry], "animated": [True]}
        return [], {"images": [entry], "animated": [len(frames) != 1]}


_COUNTER = re.compile(r"_(\d{5})")


def _next_counter(folder: Path, base: str) -> int:
    best = 0
    for path in folder.iterdir():
        if path.name.startswith(base + "_"):
            match = _COUNTER.match(path.name[len(base) :])
            if match:
                best = max(best, int(match.group(1)))
    return best + 1
