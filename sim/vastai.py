"""Vast.ai simulator: the REST API of ``contracts/vastai-api.md`` on a local port.

Same paths (with and without trailing slash), methods, query formats and JSON
shapes as the real service, so that both the operator's client and the official
``vastai`` CLI (``--url http://127.0.0.1:PORT``) work against it unchanged. The
world behind it (market, rentals, lifecycle, faults, billing) is
:mod:`warmpool.sim.vastai_state`; the query language is
:mod:`warmpool.sim.vastai_query`; the default market is
:mod:`warmpool.sim.vastai_catalogue`.

Control API (no key): ``GET /_sim/state``, ``POST /_sim/faults`` (one object or a
list; ``GET`` lists, ``DELETE`` clears), ``POST /_sim/reset``, ``POST /_sim/config``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from warmpool.sim.clock import Clock, ScaledClock
from warmpool.sim.vastai_catalogue import GPU_MODELS, Machine
from warmpool.sim.vastai_query import QueryError, matches, ordered, parse_filters, parse_search
from warmpool.sim.vastai_state import ComfyHandle, ComfyStarter, Fault, Rental, Timing, World

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NO_AUTH = ("/_sim/", "/api/v0/gpu_names/unique", "/api/v0/gpu_types")
#: short endpoint names accepted by faults, by route template
ENDPOINT_NAMES = {
    "POST /api/v0/bundles/": "search",
    "PUT /api/v0/search/asks/": "search",
    "PUT /api/v0/asks/{id}/": "create",
    "GET /api/v0/instances/{id}/": "show",
    "GET /api/v0/instances/": "list",
    "GET /api/v1/instances/": "list_v1",
    "PUT /api/v0/instances/{id}/": "label",
    "DELETE /api/v0/instances/{id}/": "destroy",
    "PUT /api/v0/instances/request_logs/{id}/": "logs",
    "GET /api/v0/users/current/": "user",
}
COMPUTED_INSTANCE_COLS = frozenset({"dph_total", "num_gpus", "duration", "uptime_mins"})
PAGE_MAX = 25


def reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with ``Content-Type: application/json`` exactly (the CLI compares it)."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def fail(status: int, error: str, msg: str, **extra: Any) -> web.Response:
    return reply({"success": False, "error": error, "msg": msg, **extra}, status)


class BadInput(Exception):
    def __init__(self, status: int, error: str, msg: str, **extra: Any) -> None:
        super().__init__(msg)
        self.response = fail(status, error, msg, **extra)


def comfy_starter(options: dict[str, Any] | None = None) -> ComfyStarter:
    """How a rental that reaches running gets its ComfyUI: the ComfyUI simulator."""

    async def start(
        token: str | None,
        clock: Clock,
        workspace: Path | None,
        /,
        *,
        host: str = "127.0.0.1",
        tls: tuple[Path, Path] | None = None,
    ) -> ComfyHandle:
        from warmpool.sim.comfyui import start_comfyui

        chosen = {"host": host, **(options or {})}
        if workspace is not None:  # Vast.ai's ComfyUI image: /workspace/ComfyUI
            chosen["root"] = str(workspace / "ComfyUI")
            chosen["models_dir"] = str(workspace / "ComfyUI" / "models")
        if tls is not None:  # ENABLE_HTTPS: the portal serves <dir>/instance.{crt,key}
            chosen["tls_cert"], chosen["tls_key"] = str(tls[0]), str(tls[1])
        return await start_comfyui(token=token, clock=clock, **chosen)

    return start


def _template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else request.path
    canonical = canonical.replace("{id:\\d+}", "{id}").rstrip("/") + "/"
    return f"{request.method} {canonical}"


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json(loads=json.loads)
    except (ValueError, UnicodeDecodeError):
        raise BadInput(400, "invalid_request", "request body is not valid JSON") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(400, "invalid_request", "request body must be a JSON object")
    return data


class VastaiSim:
    """The HTTP layer: routes, auth, request faults, translation to :class:`World`."""

    def __init__(self, world: World, *, api_key: str | None) -> None:
        self.world = world
        self.api_key = api_key

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        v0 = "/api/v0"
        for method, path, handler in (
            ("GET", f"{v0}/gpu_names/unique", self.gpu_names),
            ("GET", f"{v0}/gpu_types", self.gpu_types),
            ("GET", f"{v0}/users/current", self.user),
            ("POST", f"{v0}/bundles", self.search),
            ("PUT", f"{v0}/search/asks", self.search_new),
            ("PUT", f"{v0}/asks/{{id}}", self.create),
            ("GET", f"{v0}/instances", self.list_legacy),
            ("PUT", f"{v0}/instances", self.bulk_state),
            ("DELETE", f"{v0}/instances", self.bulk_destroy),
            ("GET", f"{v0}/instances/filters", self.filters),
            ("GET", f"{v0}/instances/{{id:\\d+}}", self.show),
            ("PUT", f"{v0}/instances/{{id:\\d+}}", self.update),
            ("DELETE", f"{v0}/instances/{{id:\\d+}}", self.destroy),
            ("PUT", f"{v0}/instances/reboot/{{id:\\d+}}", self.reboot),
            ("PUT", f"{v0}/instances/recycle/{{id:\\d+}}", self.recycle),
            ("PUT", f"{v0}/instances/request_logs/{{id:\\d+}}", self.request_logs),
            ("GET", "/api/v1/instances", self.list_v1),
            ("GET", "/_sim/state", self.sim_state),
            ("GET", "/_sim/faults", self.sim_faults_list),
            ("POST", "/_sim/faults", self.sim_faults),
            ("DELETE", "/_sim/faults", self.sim_faults_clear),
            ("POST", "/_sim/reset", self.sim_reset),
            ("POST", "/_sim/config", self.sim_config),
            ("GET", "/_sim/logs/{token}.log", self.log_file),
        ):
            app.router.add_route(method, path, handler)
            if not path.endswith(".log"):
                app.router.add_route(method, path + "/", handler)
        return app

    # ------------------------------------------------------------ middleware

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        template = _template(request)
        if not request.path.startswith("/_sim/"):
            self.world.requests[template] += 1
        if not request.path.startswith(NO_AUTH) and not self._authorised(request):
            return fail(401, "auth_error", "Invalid user key")
        if not request.path.startswith("/_sim/"):
            # The balance updates every few seconds on Vast.ai; here at each API call.
            await self.world.enforce_credit()
            early = await self._request_faults(template)
            if early is not None:
                return early
        try:
            return await handler(request)
        except BadInput as exc:
            return exc.response
        except QueryError as exc:
            return fail(400, "invalid_request", str(exc))
        except web.HTTPNotFound:
            return fail(404, "not_found", f"no route for {request.method} {request.path}")
        except web.HTTPMethodNotAllowed:
            return fail(405, "invalid_request", f"{request.method} not allowed here")
        except (ValueError, TypeError, KeyError) as exc:  # bad input must never be a 500
            logger.warning("bad input on %s: %r", template, exc)
            return fail(400, "invalid_args", f"invalid input: {exc}")

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        key = header[7:].strip() if header.lower().startswith("bearer ") else ""
        key = key or request.query.get("api_key", "").strip()
        if not key:
            return False
        return self.api_key is None or secrets.compare_digest(key, self.api_key)

    async def _request_faults(self, template: str) -> web.Response | None:
        facts = {"endpoint": (ENDPOINT_NAMES.get(template, template), template)}
        slow = self.world.take_fault("slow", **facts)
        if slow is not None:
            await asyncio.sleep(float(slow.params.get("seconds", 30.0)))  # wall-clock seconds
        limited = self.world.take_fault("rate_limit", **facts)
        if limited is not None:
            wait = float(limited.params.get("retry_after", 2.0))
            headers = {"Retry-After": f"{wait:g}"} if limited.params.get("header", True) else {}
            body = {"detail": f"API requests too frequent endpoint threshold={wait:g}"}
            return reply(body, 429, headers)
        broken = self.world.take_fault("server_error", **facts)
        if broken is not None:
            status = int(broken.params.get("status", 502))
            return fail(status, "server_error", "upstream error, try again")
        return None

    # ------------------------------------------------------------ account & CLI support

    async def gpu_names(self, request: web.Request) -> web.Response:
        return reply({"gpu_names": sorted({m.gpu_name for m in self.world.machines})})

    async def gpu_types(self, request: web.Request) -> web.Response:
        types = [{"name": name, "gpu_ram": ram} for name, ram, *_ in GPU_MODELS]
        return reply({"gpu_types": types})

    async def user(self, request: web.Request) -> web.Response:
        balance = self.world.balance - self.world.spent()
        return reply(
            {
                "id": 4242,
                "username": "simulated",
                "email": "sim@example.invalid",
                "fullname": "Simulated User",
                "balance": round(balance, 4),
                "credit": round(balance, 4),
                "ssh_key": None,
                "key_id": 1,
                "has_billing": True,
                "host_agreement_accepted": False,
            }
        )

    # ------------------------------------------------------------ offers

    async def search(self, request: web.Request) -> web.Response:
        return self._search(await _body(request))

    async def search_new(self, request: web.Request) -> web.Response:
        query = (await _body(request)).get("q")
        return self._search(query if isinstance(query, dict) else {})

    def _search(self, body: dict[str, Any]) -> web.Response:
        query = parse_search(body)
        now = self.world.clock.now()
        bid = query.type == "bid"
        rows = [
            o.row(allocated_storage=query.allocated_storage, now=now, bid=bid)
            for o in self.world.available_offers()
        ]
        rows = [r for r in rows if matches(r, query.filters)]
        return reply({"offers": ordered(rows, query.order)[: query.limit]})

    async def create(self, request: web.Request) -> web.Response:
        try:
            offer_id = int(request.match_info["id"])
        except ValueError:
            raise BadInput(404, "no_such_ask", "invalid offer id") from None
        body = await _body(request)
        gone = fail(
            404,
            "invalid_args",
            f"error 404/3603: no_such_ask Instance type by id {offer_id} is not available.",
            ask_id=offer_id,
        )
        offer = self.world.offer_available(offer_id)
        if offer is None:
            return gone
        facts = {"endpoint": ("create", "PUT /api/v0/asks/{id}/"), "offer_id": offer_id}
        if self.world.take_fault("offer_taken", **facts) is not None:
            self.world.taken.add(offer_id)  # someone else rented it a moment ago
            return gone
        _validate_create(body, offer.machine.disk_space, offer_id)
        if self.world.balance - self.world.spent() <= 0:
            return reply({"success": False, "msg": "insufficient credit", "ask_id": offer_id})
        rental = self.world.create(offer, body)
        lost = self.world.take_fault("create_lost", **facts)
        if lost is not None:  # the rental exists, but the answer is lost
            return fail(int(lost.params.get("status", 504)), "server_error", "gateway timeout")
        return reply(
            {"success": True, "new_contract": rental.id, "instance_api_key": rental.api_key}
        )

    # ------------------------------------------------------------ instances

    def _rental(self, request: web.Request, error: str = "no_such_instance") -> Rental:
        instance_id = int(request.match_info["id"])
        rental = self.world.rentals.get(instance_id)
        if rental is None:
            raise BadInput(404, error, f"Instance {instance_id} not found")
        return rental

    def _rows(self) -> list[dict[str, Any]]:
        now = self.world.clock.now()
        return [r.row(now) for r in sorted(self.world.rentals.values(), key=lambda r: r.id)]

    async def show(self, request: web.Request) -> web.Response:
        rental = self.world.rentals.get(int(request.match_info["id"]))
        if rental is None:
            return reply({"instances": None})
        row = rental.row(self.world.clock.now(), with_ports=self.world.ports_in_show)
        return reply({"instances": row})

    async def list_legacy(self, request: web.Request) -> web.Response:
        rows = self._rows()
        return reply({"instances_found": len(rows), "instances": rows})

    async def list_v1(self, request: web.Request) -> web.Response:
        def param(name: str, default: Any) -> Any:
            raw = request.query.get(name)
            if raw is None or raw == "":
                return default
            try:
                return json.loads(raw)
            except ValueError:
                raise BadInput(400, "invalid_request", f"{name} is not valid JSON") from None

        filters = param("select_filters", {})
        if not isinstance(filters, dict):
            raise BadInput(400, "invalid_request", "select_filters must be an object")
        filters = parse_filters(filters)
        for col in filters:
            if col in COMPUTED_INSTANCE_COLS:
                raise BadInput(400, "invalid_request", f"cannot filter on computed column {col}")
        order_by = param("order_by", [{"col": "id", "dir": "asc"}])
        rows = [r for r in self._rows() if matches(r, filters)]
        known = set(rows[0]) if rows else set(_any_row_keys())
        order: list[tuple[str, bool]] = []
        if not isinstance(order_by, list):
            raise BadInput(400, "invalid_request", "order_by must be a list")
        for item in order_by:
            if not isinstance(item, dict) or not isinstance(item.get("col"), str):
                raise BadInput(400, "invalid_request", "order_by items are {col, dir}")
            if item["col"] not in known:
                raise BadInput(400, "invalid_request", f"unknown column {item['col']}")
            order.append((item["col"], str(item.get("dir", "asc")).lower() == "desc"))
        if not any(col == "id" for col, _ in order):
            order.append(("id", False))
        rows = ordered(rows, order)
        limit = param("limit", PAGE_MAX)
        if not isinstance(limit, int | float) or isinstance(limit, bool):
            raise BadInput(400, "invalid_request", "limit must be a number")
        limit = 5 if limit <= 0 else min(int(limit), PAGE_MAX)
        offset = _decode_token(request.query.get("after_token"))
        page = rows[offset : offset + limit]
        more = offset + limit < len(rows)
        cols = param("select_cols", ["*"])
        if isinstance(cols, list) and cols and "*" not in cols:
            page = [{c: row.get(c) for c in cols if isinstance(c, str)} for row in page]
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.get("label") or ""] = counts.get(row.get("label") or "", 0) + 1
        return reply(
            {
                "success": True,
                "instances_found": len(page),
                "total_instances": len(rows),
                "label_counts": counts,
                "next_token": _encode_token(offset + limit) if more else None,
                "instances": page,
            }
        )

    async def filters(self, request: web.Request) -> web.Response:
        combos = {
            (r.actual_status, r.machine.gpu_name, r.machine.verification)
            for r in self.world.rentals.values()
        }
        keys = ("actual_status", "gpu_name", "verification")
        return reply(
            {"filters": [dict(zip(keys, c, strict=True)) for c in sorted(combos, key=str)]}
        )

    async def update(self, request: web.Request) -> web.Response:
        rental = self._rental(request)
        body = await _body(request)
        msg = ""
        if "label" in body:
            label = body["label"]
            if label is not None and not isinstance(label, str):
                raise BadInput(400, "invalid_args", "label must be a string")
            if label is not None and len(label) > 1024:
                raise BadInput(400, "label_too_long", "label must be shorter than 1024 chars")
            rental.label = label
            msg = f"label for {rental.id} set to '{label}'"
        if "state" in body:
            if body["state"] not in ("running", "stopped"):
                raise BadInput(400, "invalid_args", "state must be running or stopped")
            if body["state"] == "running" and self.world.balance - self.world.spent() <= 0:
                return reply({"success": False, "msg": "insufficient credit"})
            await self.world.set_state(rental, body["state"])
        return reply({"success": True, "msg": msg} if msg else {"success": True})

    async def bulk_state(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if body.get("state") not in ("running", "stopped") or not isinstance(body.get("ids"), list):
            raise BadInput(400, "invalid_args", "need state and ids")
        for instance_id in body["ids"]:
            rental = self.world.rentals.get(int(instance_id))
            if rental is not None:
                await self.world.set_state(rental, body["state"])
        return reply({"success": True})

    async def destroy(self, request: web.Request) -> web.Response:
        rental = self._rental(request, error="not_found")
        retry = rental.flags.get("destroy_retry")
        if retry is not None and int(retry.get("failures", 1)) > 0:
            retry["failures"] = int(retry.get("failures", 1)) - 1
            return fail(int(retry.get("status", 500)), "server_error", "destroy failed, retry")
        await self.world.destroy(rental)
        return reply({"success": True, "msg": f"Instance {rental.id} destroyed."})

    async def bulk_destroy(self, request: web.Request) -> web.Response:
        body = await _body(request)
        ids = body.get("instance_ids")
        if not isinstance(ids, list):
            raise BadInput(400, "invalid_args", "need instance_ids")
        for instance_id in ids:
            rental = self.world.rentals.get(int(instance_id))
            if rental is not None:
                await self.world.destroy(rental)
        return reply({"success": True})

    async def reboot(self, request: web.Request) -> web.Response:
        await self.world.reboot(self._rental(request))
        return reply({"success": True})

    async def recycle(self, request: web.Request) -> web.Response:
        await self.world.reboot(self._rental(request), recycle=True)
        return reply({"success": True})

    async def request_logs(self, request: web.Request) -> web.Response:
        rental = self._rental(request, error="invalid_id")
        body = await _body(request)
        tail = int(str(body.get("tail") or 1000))
        lines = [f"[{rental.image}] {line}" for line in rental.log if line]
        if rental.onstart:
            lines.append(f"onstart: {rental.onstart.strip()[:200]}")
        text = "\n".join(lines[-tail:]) + "\n"
        token = secrets.token_hex(12)
        # It appears a moment later, as on S3.
        delay = self.world.timing.logs_after / self.world.clock.time_scale
        ready_at = asyncio.get_running_loop().time() + delay
        self.world.logs[token] = (ready_at, text)
        url = f"{request.url.origin()}/_sim/logs/{token}.log"
        return reply({"success": True, "result_url": url, "msg": "logs requested"})

    async def log_file(self, request: web.Request) -> web.Response:
        entry = self.world.logs.get(request.match_info["token"])
        if entry is None or asyncio.get_running_loop().time() < entry[0]:
            return web.Response(status=404, text="NoSuchKey")
        return web.Response(text=entry[1], content_type="text/plain")

    # ------------------------------------------------------------ control API

    async def sim_state(self, request: web.Request) -> web.Response:
        return reply(self.world.snapshot())

    async def sim_faults_list(self, request: web.Request) -> web.Response:
        return reply({"faults": [dataclasses.asdict(f) for f in self.world.faults]})

    async def sim_faults(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            raise BadInput(400, "invalid_request", "faults must be JSON") from None
        items = data if isinstance(data, list) else [data]
        applied: list[int] = []
        names = {f.name for f in dataclasses.fields(Fault)}
        for item in items:
            if not isinstance(item, dict) or not set(item) <= names or "kind" not in item:
                raise BadInput(400, "invalid_args", f"a fault has the fields {sorted(names)}")
            try:
                applied += self.world.add_fault(Fault(**item))
            except (TypeError, ValueError) as exc:
                raise BadInput(400, "invalid_args", str(exc)) from None
        return reply({"success": True, "applied_to": applied, "faults": len(self.world.faults)})

    async def sim_faults_clear(self, request: web.Request) -> web.Response:
        self.world.faults.clear()
        return reply({"success": True})

    async def sim_reset(self, request: web.Request) -> web.Response:
        await self.world.reset()
        return reply({"success": True})

    async def sim_config(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if isinstance(body.get("timing"), dict):
            self.world.timing.update(body["timing"])
        if "ports_in_show" in body:
            self.world.ports_in_show = bool(body["ports_in_show"])
        if "balance" in body:
            self.world.balance = float(body["balance"])
        return reply(
            {
                "timing": dataclasses.asdict(self.world.timing),
                "ports_in_show": self.world.ports_in_show,
                "balance": self.world.balance,
                "time_scale": self.world.clock.time_scale,
            }
        )


def _any_row_keys() -> list[str]:
    return ["id", "label", "actual_status", "start_date", "gpu_name", "machine_id", "dph_base"]


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["offset"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise BadInput(400, "invalid_token", "Invalid pagination token") from None
    if offset < 0:
        raise BadInput(400, "invalid_token", "Invalid pagination token")
    return offset


def _validate_create(body: dict[str, Any], disk_space: float, offer_id: int) -> None:
    """The limits of contract §5.2, answered with the real API's 400s."""

    def bad(msg: str, error: str = "invalid_args") -> BadInput:
        return BadInput(400, error, msg, ask_id=offer_id)

    image = body.get("image")
    if not body.get("template_hash_id") and (not isinstance(image, str) or not image.strip()):
        raise bad("image is required (or a template_hash_id)")
    if isinstance(image, str) and len(image) > 1024:
        raise bad("image must be at most 1024 characters")
    label = body.get("label")
    if label is not None and (not isinstance(label, str) or len(label) > 256):
        raise bad("label must be a string of at most 256 characters")
    disk = body.get("disk", 10)
    if isinstance(disk, bool) or not isinstance(disk, int | float) or disk < 8:
        raise bad("disk must be a number of GB, at least 8")
    if disk > disk_space:
        raise bad(f"disk {disk} GB exceeds the {disk_space} GB available on this machine")
    env = body.get("env") or {}
    if not isinstance(env, dict):
        raise bad("env must be an object")
    if any(len(str(v)) > 256 for v in env.values()) or len(json.dumps(env)) > 32768:
        raise bad("env values must be at most 256 characters, 32768 in all")
    price = body.get("price")
    if price is not None and (
        isinstance(price, bool) or not isinstance(price, int | float) or not 0.001 <= price <= 128
    ):
        raise bad("price must be between 0.001 and 128", "invalid_price")
    onstart = body.get("onstart") or ""
    args = body.get("args") or []
    if not isinstance(onstart, str) or not isinstance(args, list):
        raise bad("onstart must be a string and args a list")
    if len(onstart) + len(" ".join(map(str, args))) + len(str(body.get("args_str") or "")) > 4096:
        raise bad("onstart and args must be at most 4096 characters in all")
    if body.get("target_state") not in (None, "running", "stopped"):
        raise bad("target_state must be running or stopped")


# ---------------------------------------------------------------- running it


class VastaiServer:
    """A running simulator: ``url``, ``state`` (the :class:`World`), ``stop()``."""

    def __init__(self, world: World, runner: web.AppRunner, host: str, port: int) -> None:
        self.state = world
        self._runner = runner
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        await self.state.close()
        await self._runner.cleanup()


async def start_vastai(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    time_scale: float = 1.0,
    seed: int = 0,
    comfy: bool = True,
    comfy_options: dict[str, Any] | None = None,
    timing: Timing | None = None,
    clock: Clock | None = None,
    machines: list[Machine] | None = None,
    balance: float = 1000.0,
    workspaces: Path | None = None,
    provision_timeout: float = 300.0,
) -> VastaiServer:
    """Start the simulator on ``host:port`` (0: a free port)."""
    world = World(
        clock=clock or ScaledClock(time_scale),
        seed=seed,
        timing=timing,
        comfy=comfy_starter(comfy_options) if comfy else None,
        machines=machines,
        balance=balance,
        workspaces=workspaces,
        provision_timeout=provision_timeout,
    )
    runner = web.AppRunner(VastaiSim(world, api_key=api_key).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1]
    return VastaiServer(world, runner, host, int(bound))


async def serve(host: str, port: int, *, api_key: str | None, time_scale: float) -> None:
    """``warmpool-sim vastai``: run the simulator until cancelled."""
    server = await start_vastai(host=host, port=port, api_key=api_key, time_scale=time_scale)
    logger.info(
        "Vast.ai simulator on %s (key %s, time scale %g)",
        server.url,
        "fixed" if api_key else "any",
        time_scale,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
