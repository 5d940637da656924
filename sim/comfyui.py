"""ComfyUI simulator: the HTTP and websocket API of one ComfyUI server, in simulated time.

Follows ``contracts/comfyui-api.md``: every route the clients use, bare and under
``/api``; graph validation with ComfyUI's error JSON (:mod:`.comfyui_validation`);
one worker executing queued prompts with the real websocket events
(:mod:`.comfyui_exec`); real PNG / animated WEBP / MP4 (H.264) / WEBM (VP9) files served
from ``/view``. It speaks ComfyUI 0.38 by default, or 0.3.64 (``comfyui_version="0.3.64"``,
``warmpool-sim comfyui --comfy-version 0.3.64``) with that version's recorded catalogue
and answers (:mod:`.comfyui_legacy`).

Like the proxy in front of ComfyUI on a rented machine, it requires the instance
token when one is set: ``Authorization: Bearer <token>`` (or HTTP Basic with the
token as password), or ``?token=<token>`` once — as the Vast.ai "Open" button link
does — which also sets a cookie so a browser running the ComfyUI frontend keeps
access. The control API under ``/_sim/`` needs no token.

Faults (``POST /_sim/faults`` or methods of :class:`ComfyServer`): slow start,
missing model (at validation or at run time), crash mid-job, node failure and
out-of-memory, stalled progress, a flat-colour output, websocket drop, HTTP errors
on a route, and a hostile machine's answer on a route: a body of N bytes, or one that
never ends (``huge_answer``; for the operator's byte caps).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import heapq
import hmac
import itertools
import logging
import shutil
import ssl
import tempfile
import uuid
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image

from warmpool.sim import comfyui_legacy as legacy
from warmpool.sim import comfyui_nodes as nodes
from warmpool.sim import comfyui_routes as routes
from warmpool.sim.clock import Clock, ScaledClock
from warmpool.sim.comfyui_exec import OOM_TIPS, Crashed, NodeFailure, PromptRun
from warmpool.sim.comfyui_host import DEFAULT_MODELS as DEFAULT_MODELS  # re-exported
from warmpool.sim.comfyui_host import ComfyOptions, Faults

logger = logging.getLogger(__name__)

BROADCAST_WITHOUT_CLIENT = {"status", "progress", "progress_state", "execution_interrupted"}
HISTORY_CAP = 10_000
COOKIE = "warmpool_sim_token"
#: An "endless" answer stops here anyway, should its client never hang up (16 GiB).
HUGE_SAFETY = 16 * 1024**3


class ComfyServer:
    """One running simulated ComfyUI server."""

    def __init__(self, *, token: str | None, clock: Clock, host: str, options: ComfyOptions):
        self.token = token
        self.clock = clock
        self.host = host
        self.port = 0
        self.options = options
        self._own_root = options.root is None
        self.root = Path(options.root or tempfile.mkdtemp(prefix="comfy-sim-"))
        for sub in ("input", "output", "temp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.faults = Faults()
        self._image_models = {k: list(v) for k, v in options.models.items()}
        self._runner: web.AppRunner | None = None
        self._worker: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.crashed = False
        self._background: set[asyncio.Task[None]] = set()
        self._reset_state()

    def _reset_state(self) -> None:
        self.counter = itertools.count()
        self.queue: list[tuple[float, int, list[Any]]] = []
        self.running: list[Any] | None = None
        self.history: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.cache: dict[str, tuple[list[Any], dict[str, Any] | None]] = {}
        self.loaded: set[tuple[str, str]] = set()
        self.last_node: dict[str, str] = {}
        self._interrupt: str | None = None  # "*" or a prompt id
        self.requests: Counter[str] = Counter()
        self.prompts_seen: list[str] = []
        self.interrupts_seen = 0
        self.files: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        scheme = "https" if self.options.tls_cert else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def _tls(self) -> ssl.SSLContext | None:
        if not self.options.tls_cert:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.options.tls_cert, self.options.tls_key)
        return context

    # ------------------------------------------------------------- lifecycle
    async def _start(self, port: int) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=100 * 1024 * 1024)
        routes.register(app, self)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, port, reuse_address=True,
                           ssl_context=self._tls())  # fmt: skip
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.crashed = False
        self._worker = asyncio.create_task(self._work(), name=f"comfy-sim-{self.port}")

    async def _halt(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        await self.drop_websockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def stop(self) -> None:
        """Close every connection and the port; remove the temp folder."""
        await self._halt()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    async def restart(self) -> None:
        """Come back after a crash on the same port: queue, history and cache are lost."""
        await self._halt()
        self._reset_state()
        await self._start(self.port)

    # ------------------------------------------------------------- faults
    def slow_start(self, seconds: float) -> None:
        """Port open, but every ComfyUI route answers 502 for ``seconds`` (simulated)."""
        self.faults.ready_at = self.clock.now() + seconds

    def remove_model(self, folder: str, name: str, *, at_runtime: bool = False) -> None:
        """Drop a model file: listings lose it, or (``at_runtime``) loading it fails."""
        if at_runtime:
            self.faults.runtime_missing.add((folder, name))
        else:
            files = self.options.models.get(folder, [])
            self.options.models[folder] = [f for f in files if f != name]

    def add_model(self, folder: str, name: str) -> None:
        """A model file appears on disk (e.g. a download finished)."""
        self.options.models.setdefault(folder, [])
        if name not in self.options.models[folder]:
            self.options.models[folder].append(name)
        self.faults.runtime_missing.discard((folder, name))

    def crash_mid_job(self, after_steps: int = 1) -> None:
        """The process dies at that sampler step: sockets drop, the port closes."""
        self.faults.crash_after_steps = after_steps

    def stall_progress(self, after_steps: int = 1) -> None:
        """Progress stops at that step until interrupted or the fault is cleared."""
        self.faults.stall_after_steps = after_steps

    def flat_output(self) -> None:
        """The next saved image (or video) is a single flat colour (once)."""
        self.faults.flat_output = True

    def take_flat_output(self) -> bool:
        """Whether this save is the flat one (clears the fault)."""
        flat, self.faults.flat_output = self.faults.flat_output, False
        return flat

    def fail_node(
        self,
        node_type: str = "KSampler",
        *,
        exception_type: str = "RuntimeError",
        message: str = "simulated failure",
        after_steps: int = 0,
    ) -> None:
        """The next run of ``node_type`` raises (once)."""
        self.faults.fail = {"node_type": node_type, "exception_type": exception_type,
                            "message": message, "after_steps": after_steps}  # fmt: skip

    def out_of_memory(self, node_type: str = "KSampler", *, after_steps: int = 1) -> None:
        """The next run of ``node_type`` fails with ``torch.OutOfMemoryError`` (once)."""
        message = (
            "CUDA out of memory. Tried to allocate 2.50 GiB. GPU 0 has a total capacity of "
            "23.65 GiB of which 1.12 GiB is free.\n" + OOM_TIPS
        )
        self.fail_node(node_type, exception_type="torch.OutOfMemoryError", message=message,
                       after_steps=after_steps)  # fmt: skip

    def fail_route(self, path: str, status: int = 500, count: int = 1) -> None:
        """The next ``count`` requests to ``path`` answer ``status``."""
        self.faults.route_errors[path] = [status, count]

    def huge_answer(self, path: str, size: int = 0, count: int = 1) -> None:
        """The next ``count`` answers on ``path`` are ``size`` junk bytes (0: never ending),
        streamed without a Content-Length, as a hostile machine would."""
        self.faults.huge_answers[path] = [size, count]

    def slow_answer(self, path: str, seconds: float, count: int = 1) -> None:
        """The next ``count`` requests to ``path`` wait ``seconds`` (simulated) before they
        are handled: a slow or far machine, whose answer comes late while what the request
        asked for happens at the end of the wait (a client gone meanwhile changes nothing)."""
        self.faults.slow_answers[path] = [seconds, count]

    async def _huge(self, request: web.Request, size: int) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        chunk = b"\x89" + b"a" * 65535
        sent = 0
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await response.write(b'{"junk": "')
            while (size == 0 and sent < HUGE_SAFETY) or sent < size:
                part = chunk if size == 0 else chunk[: size - sent]
                await response.write(part)
                sent += len(part)
                # A write into a lost TLS connection returns at once without an error until
                # the loss reaches aiohttp, which needs the loop to run: without this the
                # loop ran to HUGE_SAFETY here, starving everything else in the process.
                await asyncio.sleep(0)
        return response

    def clear_faults(self) -> None:
        self.faults = Faults()

    async def drop_websockets(self) -> None:
        """Close every websocket (the process stays up)."""
        for ws in list(self.sockets.values()):
            await ws.close()
        self.sockets.clear()

    async def crash(self) -> None:
        """Die now: sockets and port go away; :meth:`restart` brings the server back."""
        self.crashed = True
        await self.drop_websockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def crash_soon(self) -> None:
        """:meth:`crash` from a task, so a request handler or the worker can trigger it."""
        task = asyncio.get_running_loop().create_task(self.crash())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def reset(self) -> None:
        """Forget counts, history, queue, cache and faults (``POST /_sim/reset``)."""
        self._reset_state()
        self.clear_faults()

    # ------------------------------------------------------------- hooks used by the executor
    def check_fault(self, node_type: str, *, step: int) -> None:
        fail = self.faults.fail
        if fail and fail["node_type"] == node_type and fail["after_steps"] == step:
            self.faults.fail = None
            if fail["exception_type"].endswith("OutOfMemoryError"):
                self.loaded.clear()
                self.cache.clear()
            message = fail["message"] if "\n" in fail["message"] else fail["message"] + "\n"
            raise NodeFailure(fail["exception_type"], message)

    async def step_hook(self, prompt_id: str, step: int) -> None:
        if self.faults.crash_after_steps is not None and step >= self.faults.crash_after_steps:
            self.crash_soon()
            raise Crashed
        stall = self.faults.stall_after_steps
        while stall is not None and step >= stall and self._interrupt is None:
            await self.clock.sleep(self.options.step_seconds or 0.01)
            stall = self.faults.stall_after_steps

    def model_gone_at_runtime(self, folder: str, name: str) -> bool:
        return (folder, name) in self.faults.runtime_missing

    def take_interrupt(self, prompt_id: str) -> bool:
        if self._interrupt in ("*", prompt_id):
            self._interrupt = None
            return True
        return False

    def request_interrupt(self, prompt_id: str | None) -> None:
        self.interrupts_seen += 1
        if self.running is None:
            return
        if prompt_id is None or prompt_id == self.running[1]:
            self._interrupt = prompt_id or "*"

    def write_file(self, path: Path, data: bytes, kind: str) -> None:
        path.write_bytes(data)
        relative = path.parent.relative_to((self.root / kind).resolve()).as_posix()
        self.files.append({
            "name": path.name, "subfolder": "" if relative == "." else relative, "type": kind,
            "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        })  # fmt: skip

    def input_files(self) -> list[str]:
        return sorted(p.name for p in (self.root / "input").iterdir() if p.is_file())

    def input_exists(self, name: str) -> bool:
        name = name.removesuffix(" [input]")
        path = (self.root / "input" / name).resolve()
        return path.is_relative_to((self.root / "input").resolve()) and path.is_file()

    def input_image_info(self, name: str) -> tuple[int, int, str]:
        path = self.root / "input" / name.removesuffix(" [input]")
        data = path.read_bytes()
        with Image.open(path) as img:
            return img.width, img.height, hashlib.sha256(data).hexdigest()

    @property
    def legacy(self) -> bool:
        """Speaking ComfyUI 0.3.x (:mod:`.comfyui_legacy`) rather than 0.38."""
        return legacy.is_legacy(self.options.comfyui_version)

    def node_definitions(self) -> dict[str, dict[str, Any]]:
        if self.legacy:
            return legacy.node_definitions(self.options.models, self.input_files())
        return nodes.node_definitions(self.options.models, self.input_files())

    # ------------------------------------------------------------- events and queue
    async def send(
        self, kind: str, data: dict[str, Any], *, sid: str | None, broadcast: bool = False
    ) -> None:
        message = {"type": kind, "data": data}
        if sid is None and (broadcast or kind in BROADCAST_WITHOUT_CLIENT):
            targets = list(self.sockets.values())
        else:
            ws = self.sockets.get(sid) if sid is not None else None
            targets = [ws] if ws is not None else []
        for ws in targets:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(message)

    def queue_remaining(self) -> int:
        return len(self.queue) + (1 if self.running is not None else 0)

    async def broadcast_status(self) -> None:
        data = {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}}
        await self.send("status", data, sid=None)

    async def enqueue(self, number: float, item: list[Any]) -> None:
        heapq.heappush(self.queue, (number, next(self.counter), item))
        self.prompts_seen.append(item[1])
        self._wake.set()
        await self.broadcast_status()

    async def _work(self) -> None:
        while True:
            while not self.queue:
                self._wake.clear()
                await self._wake.wait()
            _, _, item = heapq.heappop(self.queue)
            self.running = item
            self._interrupt = None
            await self.broadcast_status()
            run = PromptRun(self, item)
            try:
                outcome = await run.run()
            except Crashed:
                return
            status = {"status_str": "success" if outcome == "success" else "error",
                      "completed": outcome == "success", "messages": run.messages}  # fmt: skip
            self.history[item[1]] = {
                "prompt": item, "outputs": run.ui, "status": status,
                "meta": {n: {"node_id": n, "display_node": n, "parent_node": None,
                             "real_node_id": n} for n in run.ui},
            }  # fmt: skip
            while len(self.history) > HISTORY_CAP:
                self.history.popitem(last=False)
            self.running = None
            self.last_node.pop(item[1], None)
            await self.broadcast_status()
            await self.send("executing", {"node": None, "prompt_id": item[1]}, sid=run.sid)

    # ------------------------------------------------------------- middleware
    def _authorised(self, request: web.Request) -> tuple[bool, bool]:
        """(allowed, set_cookie)."""
        if self.token is None:
            return True, False
        want = self.token.encode()
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), want):
            return True, False
        if scheme.lower() == "basic":
            with contextlib.suppress(ValueError):
                _, _, password = base64.b64decode(value.strip()).decode().partition(":")
                if hmac.compare_digest(password.encode(), want):
                    return True, False
        if hmac.compare_digest(request.cookies.get(COOKIE, "").encode(), want):
            return True, False
        if hmac.compare_digest(request.query.get("token", "").encode(), want):
            return True, True
        return False, False

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_sim/"):
            return await handler(request)
        bare = path[4:] if path.startswith("/api/") else path
        resource = request.match_info.route.resource
        canonical = resource.canonical if resource is not None else bare
        canonical = canonical[4:] if canonical.startswith("/api/") else canonical
        self.requests[f"{request.method} {canonical}"] += 1
        if self.options.models_dir is not None:
            self.options.models = nodes.merge_models(
                self._image_models, nodes.scan_models(Path(self.options.models_dir))
            )
        allowed, set_cookie = self._authorised(request)
        if not allowed:
            return web.Response(status=401, text="401 Unauthorized",
                                headers={"WWW-Authenticate": 'Bearer realm="comfyui"'})  # fmt: skip
        if self.clock.now() < self.faults.ready_at:
            return web.Response(status=502, text="502 Bad Gateway")
        err = self.faults.route_errors.get(bare)
        if err and err[1] > 0:
            err[1] -= 1
            return web.Response(status=err[0], text=f"{err[0]} simulated error")
        huge = self.faults.huge_answers.get(bare)
        if huge and huge[1] > 0:
            huge[1] -= 1
            return await self._huge(request, huge[0])
        slow = self.faults.slow_answers.get(bare)
        if slow and slow[1] > 0:
            slow[1] -= 1
            await self.clock.sleep(slow[0])
        response = await handler(request)
        if set_cookie and self.token is not None:
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
        return response

    # ------------------------------------------------------------- websocket
    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        old = self.sockets.pop(sid, None)
        if old is not None:
            await old.close()
        self.sockets[sid] = ws
        try:
            status = {"exec_info": {"queue_remaining": self.queue_remaining()}}
            await ws.send_json({"type": "status", "data": {"status": status, "sid": sid}})
            running = self.running
            if running is not None and running[3].get("client_id") == sid:
                last = self.last_node.get(running[1])
                if last is not None:
                    await ws.send_json({"type": "executing", "data": {"node": last}})
            first = True
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and first:
                    with contextlib.suppress(ValueError):
                        if msg.json().get("type") == "feature_flags":
                            await ws.send_json({"type": "feature_flags",
                                                "data": routes.FEATURES})  # fmt: skip
                first = False
        finally:
            if self.sockets.get(sid) is ws:
                del self.sockets[sid]
        return ws

    def state(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "prompts_seen": len(self.prompts_seen),
            "prompts": list(self.prompts_seen),
            "interrupts_seen": self.interrupts_seen,
            "files": list(self.files),
            "queue_pending": len(self.queue),
            "running": self.running[1] if self.running else None,
            "history": list(self.history),
            "connected": sorted(self.sockets),
            "loaded_models": sorted(f"{f}/{n}" for f, n in self.loaded),
            "models": self.options.models,
            "faults": self.faults.describe(self.clock.now()),
            "crashed": self.crashed,
        }


async def start_comfyui(
    *,
    token: str | None,
    clock: Clock,
    host: str = "127.0.0.1",
    port: int = 0,
    **options: Any,
) -> ComfyServer:
    """Start one simulated ComfyUI on ``host:port`` (0: a free port); see :class:`ComfyOptions`."""
    server = ComfyServer(token=token, clock=clock, host=host, options=ComfyOptions(**options))
    await server._start(port)
    return server


async def serve(
    host: str,
    port: int,
    *,
    token: str | None,
    time_scale: float,
    comfy_version: str = ComfyOptions.comfyui_version,
) -> None:
    """``warmpool-sim comfyui``: run one simulator until cancelled."""
    server = await start_comfyui(token=token, clock=ScaledClock(time_scale), host=host, port=port,
                                 comfyui_version=comfy_version)  # fmt: skip
    logger.info("ComfyUI %s simulator on %s (token %s)", comfy_version, server.url,
                "required" if token else "off")  # fmt: skip
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
