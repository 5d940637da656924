"""HTTP routes of the ComfyUI simulator (contract §2-§11), bare and under ``/api``."""

from __future__ import annotations

import hashlib
import heapq
import json
import mimetypes
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField

from warmpool.sim import comfyui_legacy as legacy
from warmpool.sim import comfyui_nodes as nodes
from warmpool.sim.comfyui_host import Host
from warmpool.sim.comfyui_validation import validate_prompt

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

FEATURES: dict[str, Any] = {
    "supports_preview_metadata": True,
    "supports_model_type_tags": True,
    "max_upload_size": 104857600,
    "extension": {"manager": {"supports_v4": True}},
    "node_replacements": True,
    "assets": False,
}


def _error(kind: str, message: str, details: str = "", **extra: Any) -> web.Response:
    body = {
        "error": {"type": kind, "message": message, "details": details, "extra_info": extra},
        "node_errors": {},
    }
    return web.json_response(body, status=400)


def register(app: web.Application, s: Host) -> None:
    """Add every route to ``app`` for server ``s``."""

    async def system_stats(_: web.Request) -> web.Response:
        o = s.options
        busy = s.running is not None
        if s.legacy:
            return web.json_response(legacy.system_stats(
                gpu_name=o.gpu_name, vram_total=o.vram_total,
                vram_free=int(o.vram_total * (0.35 if busy else 0.95)),
                pytorch_version=o.pytorch_version,
            ))  # fmt: skip
        return web.json_response({
            "system": {
                "os": "linux", "ram_total": 135081005056, "ram_free": 118734123008,
                "comfyui_version": o.comfyui_version, "required_frontend_version": "1.28.6",
                "python_version": "3.12.9 (main, Feb 12 2025, 14:50:50) [GCC 11.4.0]",
                "pytorch_version": o.pytorch_version, "embedded_python": False,
                "deploy_environment": "local-git", "argv": ["main.py", "--listen", "0.0.0.0"],
            },
            "devices": [{
                "name": f"cuda:0 {o.gpu_name} : cudaMallocAsync", "type": "cuda", "index": 0,
                "vram_total": o.vram_total,
                "vram_free": int(o.vram_total * (0.35 if busy else 0.95)),
                "torch_vram_total": 0, "torch_vram_free": 0,
            }],
        })  # fmt: skip

    async def features(_: web.Request) -> web.Response:
        if not s.options.features:
            raise web.HTTPNotFound()
        return web.json_response(FEATURES)

    async def object_info(_: web.Request) -> web.Response:
        return web.json_response(s.node_definitions())

    async def object_info_one(request: web.Request) -> web.Response:
        name = request.match_info["node_class"]
        defs = s.node_definitions()
        return web.json_response({name: defs[name]} if name in defs else {})

    async def get_prompt(_: web.Request) -> web.Response:
        return web.json_response({"exec_info": {"queue_remaining": s.queue_remaining()}})

    async def post_prompt(request: web.Request) -> web.Response:
        body = json.loads(await request.text())
        number = next(s.counter)
        if "prompt" not in body:
            return _error("no_prompt", "No prompt provided", "No prompt provided")
        prompt_id = body.get("prompt_id")
        if prompt_id is not None and s.legacy:
            prompt_id = str(prompt_id)  # 0.3.64 takes any string as the history key
        elif prompt_id is not None:
            try:
                valid = str(uuid.UUID(str(prompt_id))) == prompt_id
            except ValueError:
                valid = False
            if not valid:
                return _error("invalid_prompt_id", "prompt_id must be a valid UUID",
                              f"Received prompt_id: {prompt_id!r}")  # fmt: skip
        if "number" in body:
            number = body["number"]
        if body.get("front"):
            number = -number
        result = validate_prompt(
            body["prompt"], s.node_definitions(), input_exists=s.input_exists,
            partial_targets=body.get("partial_execution_targets"), legacy=s.legacy,
        )  # fmt: skip
        if not result.ok:
            return web.json_response(
                {"error": result.error, "node_errors": result.node_errors}, status=400
            )
        prompt_id = prompt_id or str(uuid.uuid4())
        extra = dict(body.get("extra_data") or {})
        extra.pop("api_key_comfy_org", None)
        extra.pop("auth_token_comfy_org", None)
        if body.get("client_id") is not None:
            extra["client_id"] = body["client_id"]
        extra["create_time"] = int(s.clock.now() * 1000)
        item = [number, prompt_id, result.graph, extra, result.outputs]
        await s.enqueue(number, item)
        return web.json_response(
            {"prompt_id": prompt_id, "number": number, "node_errors": result.node_errors}
        )

    async def get_queue(_: web.Request) -> web.Response:
        return web.json_response({
            "queue_running": [s.running] if s.running is not None else [],
            "queue_pending": [entry[2] for entry in s.queue],
        })  # fmt: skip

    async def post_queue(request: web.Request) -> web.Response:
        body = await _json_or_empty(request)
        if body.get("clear"):
            s.queue.clear()
        if "delete" in body:
            gone = set(body["delete"])
            s.queue[:] = [e for e in s.queue if e[2][1] not in gone]
            heapq.heapify(s.queue)
        await s.broadcast_status()
        return web.Response()

    async def interrupt(request: web.Request) -> web.Response:
        body = await _json_or_empty(request)
        s.request_interrupt(body.get("prompt_id"))
        return web.Response()

    async def free(_: web.Request) -> web.Response:
        if s.running is None:
            s.loaded.clear()
        return web.Response()

    async def get_history(request: web.Request) -> web.Response:
        items = list(s.history.items())
        offset = int(request.query.get("offset", -1))
        if "max_items" in request.query:
            limit = int(request.query["max_items"])
            items = items[offset : offset + limit] if offset >= 0 else items[-limit:]
        return web.json_response(dict(items))

    async def get_history_one(request: web.Request) -> web.Response:
        pid = request.match_info["prompt_id"]
        return web.json_response({pid: s.history[pid]} if pid in s.history else {})

    async def post_history(request: web.Request) -> web.Response:
        body = await _json_or_empty(request)
        if body.get("clear"):
            s.history.clear()
        for pid in body.get("delete", []):
            s.history.pop(pid, None)
        return web.Response()

    async def view(request: web.Request) -> web.StreamResponse:
        q = request.query
        filename = q.get("filename")
        if not filename:
            raise web.HTTPNotFound()
        kind = q.get("type", "output")
        for tag in ("output", "input", "temp"):
            if filename.endswith(f" [{tag}]"):
                filename, kind = filename[: -len(tag) - 3], tag
        if kind not in ("output", "input", "temp") or filename.startswith("/") or ".." in filename:
            raise web.HTTPBadRequest()
        base = (s.root / kind).resolve()
        folder = (base / q.get("subfolder", "")).resolve()
        if not folder.is_relative_to(base):
            raise web.HTTPForbidden()
        path = folder / filename
        if not path.is_file():
            raise web.HTTPNotFound()
        ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        headers = {"Content-Disposition": f'filename="{filename}"',
                   "X-Content-Type-Options": "nosniff", "Content-Type": ctype}  # fmt: skip
        return web.FileResponse(path, headers=headers)

    async def upload_image(request: web.Request) -> web.Response:
        form = await request.post()
        image = form.get("image")
        if not isinstance(image, FileField) or not image.filename:
            raise web.HTTPBadRequest()
        kind = str(form.get("type") or "input")
        if kind not in ("input", "temp", "output"):
            raise web.HTTPInternalServerError()
        subfolder = str(form.get("subfolder") or "")
        base = (s.root / kind).resolve()
        folder = (base / subfolder).resolve()
        name = Path(image.filename).name
        if not folder.is_relative_to(base) or not name:
            raise web.HTTPBadRequest()
        folder.mkdir(parents=True, exist_ok=True)
        data = image.file.read()
        overwrite = str(form.get("overwrite", "")).lower() in ("true", "1")
        path = folder / name
        if path.exists() and not overwrite:
            digest = hashlib.sha256(data).hexdigest()
            stem, suffix, i = path.stem, path.suffix, 1
            while path.exists():
                if hashlib.sha256(path.read_bytes()).hexdigest() == digest:
                    break
                path = folder / f"{stem} ({i}){suffix}"
                i += 1
        if not path.exists() or overwrite:
            path.write_bytes(data)
        return web.json_response({"name": path.name, "subfolder": subfolder, "type": kind})

    def folders() -> list[str]:
        return legacy.model_folders() if s.legacy else list(nodes.MODEL_FOLDERS)

    async def models(_: web.Request) -> web.Response:
        return web.json_response(folders())

    async def models_folder(request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        if folder not in folders():
            raise web.HTTPNotFound()
        return web.json_response(nodes.model_files(s.options.models.get(folder, [])))

    async def embeddings(_: web.Request) -> web.Response:
        files = nodes.model_files(s.options.models.get("embeddings", []))
        return web.json_response([Path(f).stem for f in files])

    async def extensions(_: web.Request) -> web.Response:
        return web.json_response([])

    async def index(_: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>ComfyUI</title>", content_type="text/html")

    table: list[tuple[str, str, Handler]] = [
        ("GET", "/ws", s.websocket),
        ("GET", "/system_stats", system_stats),
        ("GET", "/features", features),
        ("GET", "/object_info", object_info),
        ("GET", "/object_info/{node_class}", object_info_one),
        ("GET", "/prompt", get_prompt),
        ("POST", "/prompt", post_prompt),
        ("GET", "/queue", get_queue),
        ("POST", "/queue", post_queue),
        ("POST", "/interrupt", interrupt),
        ("POST", "/free", free),
        ("GET", "/history", get_history),
        ("GET", "/history/{prompt_id}", get_history_one),
        ("POST", "/history", post_history),
        ("GET", "/view", view),
        ("POST", "/upload/image", upload_image),
        ("GET", "/models", models),
        ("GET", "/models/{folder}", models_folder),
        ("GET", "/embeddings", embeddings),
        ("GET", "/extensions", extensions),
    ]
    for method, path, handler in table:
        app.router.add_route(method, path, handler)
        app.router.add_route(method, "/api" + path, handler)
    app.router.add_get("/", index)
    _register_control(app, s)


async def _json_or_empty(request: web.Request) -> dict[str, Any]:
    text = await request.text()
    if not text.strip():
        return {}
    data = json.loads(text)
    return data if isinstance(data, dict) else {}


def _register_control(app: web.Application, s: Host) -> None:
    async def state(_: web.Request) -> web.Response:
        return web.json_response(s.state())

    async def faults(request: web.Request) -> web.Response:
        """Body keys: slow_start (seconds), missing_model {folder, name, at_runtime},
        crash_after_steps, stall_after_steps, flat_output, oom {node_type, after_steps},
        fail {node_type, exception_type, message, after_steps}, drop_websockets,
        route_error {path, status, count}, huge_answer {path, bytes (0: endless), count},
        slow_answer {path, seconds, count}, crash, clear."""
        body = await _json_or_empty(request)
        if body.get("clear"):
            s.clear_faults()
        if "slow_start" in body:
            s.slow_start(float(body["slow_start"]))
        if "missing_model" in body:
            m = body["missing_model"]
            s.remove_model(m["folder"], m["name"], at_runtime=bool(m.get("at_runtime")))
        if "add_model" in body:
            s.add_model(body["add_model"]["folder"], body["add_model"]["name"])
        if "crash_after_steps" in body:
            s.faults.crash_after_steps = body["crash_after_steps"]
        if "stall_after_steps" in body:
            s.faults.stall_after_steps = body["stall_after_steps"]
        if body.get("flat_output"):
            s.flat_output()
        if "oom" in body:
            s.out_of_memory(**(body["oom"] if isinstance(body["oom"], dict) else {}))
        if "fail" in body:
            s.fail_node(**body["fail"])
        if "route_error" in body:
            r = body["route_error"]
            s.fail_route(r["path"], int(r.get("status", 500)), int(r.get("count", 1)))
        if "huge_answer" in body:
            h = body["huge_answer"]
            s.huge_answer(h["path"], int(h.get("bytes", 0)), int(h.get("count", 1)))
        if "slow_answer" in body:
            w = body["slow_answer"]
            s.slow_answer(w["path"], float(w["seconds"]), int(w.get("count", 1)))
        if body.get("drop_websockets"):
            await s.drop_websockets()
        if body.get("crash"):
            s.crash_soon()
            return web.json_response({"crashed": True})
        return web.json_response(s.faults.describe(s.clock.now()))

    async def reset(_: web.Request) -> web.Response:
        s.reset()
        return web.json_response({"reset": True})

    app.router.add_get("/_sim/state", state)
    app.router.add_post("/_sim/faults", faults)
    app.router.add_post("/_sim/reset", reset)
