"""What the ComfyUI simulator's executor and routes see of their server.

The bottom of the simulator's ComfyUI stack, beside the recorded catalogues: the
options and faults of one server, and :class:`Host`, the part of
:class:`~warmpool.sim.comfyui.ComfyServer` that :mod:`.comfyui_exec` (a prompt run) and
:mod:`.comfyui_routes` (the HTTP handlers) use. The server module imports both of them
and satisfies the protocol, so no module of the stack imports the server back:

    comfyui                                   (the server: lifecycle, queue, websocket)
    comfyui_routes | comfyui_exec             (handlers; one prompt run)
    comfyui_validation | comfyui_nodes | comfyui_images | comfyui_host
    comfyui_legacy                            (0.3.64's recorded catalogue and answers)

An import-linter layers contract (``.importlinter``, ``sim-comfyui-layers``) keeps it so.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from warmpool.sim.clock import Clock

DEFAULT_MODELS: dict[str, list[str]] = {
    "checkpoints": [
        "dreamshaper_8.safetensors",
        "juggernautXL_v9.safetensors",
        "sd_xl_base_1.0.safetensors",
    ],
    "loras": ["add_detail.safetensors", "pixel_art_xl.safetensors"],
    "vae": ["sdxl_vae.safetensors"],
    "embeddings": ["EasyNegative.safetensors"],
}


@dataclasses.dataclass
class ComfyOptions:
    """Tunables of one simulated server (keyword options of :func:`start_comfyui`)."""

    models: dict[str, list[str]] = dataclasses.field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_MODELS.items()}
    )
    step_seconds: float = 0.15  # one sampler step at ≤ 1 megapixel × batch
    load_seconds: float = 4.0  # loading one model file the first time
    node_seconds: float = 0.05  # any other node
    gpu_name: str = "NVIDIA GeForce RTX 4090"
    vram_total: int = 25_393_692_672
    comfyui_version: str = "0.38.1"  # "0.3.64": that version's catalogue and answers
    pytorch_version: str = "2.8.0+cu128"
    features: bool = True  # False: /features answers 404, like older servers
    root: str | None = None  # folder for input/, output/, temp/ (default: a temp dir)
    # A real models folder (``<folder>/<file>``): when set, the listed models are ``models``
    # (the image's own) plus the files in it, rescanned on every request (the Vast.ai
    # simulator's machines download there).
    models_dir: str | None = None
    # TLS: serve HTTPS with this certificate and key (PEM files), as the Instance Portal's
    # Caddy does with ENABLE_HTTPS; plain HTTP when unset.
    tls_cert: str | None = None
    tls_key: str | None = None


@dataclasses.dataclass
class Faults:
    """Currently injected faults; all off by default."""

    ready_at: float = 0.0  # simulated time before which every route answers 502
    runtime_missing: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    crash_after_steps: int | None = None
    stall_after_steps: int | None = None
    flat_output: bool = False  # the next saved image is a single flat colour
    fail: dict[str, Any] | None = None  # node_type, after_steps, exception_type, message
    route_errors: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # path→[st, n]
    #: path → [bytes (0: endless), count]: the next answers are that many junk bytes.
    huge_answers: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    #: path → [seconds, count]: the next requests wait that long before they are handled.
    slow_answers: dict[str, list[float]] = dataclasses.field(default_factory=dict)

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "slow_start_remaining": max(0.0, self.ready_at - now),
            "runtime_missing": sorted(f"{f}/{n}" for f, n in self.runtime_missing),
            "crash_after_steps": self.crash_after_steps,
            "stall_after_steps": self.stall_after_steps,
            "flat_output": self.flat_output,
            "fail": self.fail,
            "route_errors": self.route_errors,
            "slow_answers": self.slow_answers,
            "huge_answers": self.huge_answers,
        }


class Host(Protocol):
    """The server as a prompt run and the route handlers use it."""

    clock: Clock
    options: ComfyOptions
    root: Path
    faults: Faults
    counter: itertools.count[int]
    queue: list[tuple[float, int, list[Any]]]
    running: list[Any] | None
    history: OrderedDict[str, dict[str, Any]]
    cache: dict[str, tuple[list[Any], dict[str, Any] | None]]
    loaded: set[tuple[str, str]]
    last_node: dict[str, str]

    @property
    def legacy(self) -> bool: ...

    # the executor's side
    def check_fault(self, node_type: str, *, step: int) -> None: ...
    async def step_hook(self, prompt_id: str, step: int) -> None: ...
    def model_gone_at_runtime(self, folder: str, name: str) -> bool: ...
    def take_interrupt(self, prompt_id: str) -> bool: ...
    def take_flat_output(self) -> bool: ...
    def write_file(self, path: Path, data: bytes, kind: str) -> None: ...
    def input_image_info(self, name: str) -> tuple[int, int, str]: ...
    async def send(
        self, kind: str, data: dict[str, Any], *, sid: str | None, broadcast: bool = False
    ) -> None: ...

    # the routes' side
    def input_exists(self, name: str) -> bool: ...
    def node_definitions(self) -> dict[str, dict[str, Any]]: ...
    def queue_remaining(self) -> int: ...
    async def broadcast_status(self) -> None: ...
    async def enqueue(self, number: float, item: list[Any]) -> None: ...
    def request_interrupt(self, prompt_id: str | None) -> None: ...
    async def websocket(self, request: web.Request) -> web.WebSocketResponse: ...
    def state(self) -> dict[str, Any]: ...
    # faults injected through /_sim/
    def slow_start(self, seconds: float) -> None: ...
    def remove_model(self, folder: str, name: str, *, at_runtime: bool = False) -> None: ...
    def add_model(self, folder: str, name: str) -> None: ...
    def flat_output(self) -> None: ...
    def slow_answer(self, path: str, seconds: float, count: int = 1) -> None: ...
    def fail_node(
        self,
        node_type: str = "KSampler",
        *,
        exception_type: str = "RuntimeError",
        message: str = "simulated failure",
        after_steps: int = 0,
    ) -> None: ...
    def out_of_memory(self, node_type: str = "KSampler", *, after_steps: int = 1) -> None: ...
    def fail_route(self, path: str, status: int = 500, count: int = 1) -> None: ...
    def huge_answer(self, path: str, size: int = 0, count: int = 1) -> None: ...
    def clear_faults(self) -> None: ...
    async def drop_websockets(self) -> None: ...
    def crash_soon(self) -> None: ...
    def reset(self) -> None: ...
