"""The HTTP face of the emulated Kubernetes API: KMock's emulator with a real store behind it.

:class:`ClusterEmulator` is a :class:`kmock.KubernetesEmulator`: KMock's aiohttp server, request
parsing, request log and reaction DSL stay (a test can still inject a fault with
``emulator['patch', kmock.resource(...)] << 500``, and user reactions win over the emulation);
the stock in-memory handling is replaced by :class:`~warmpool.sim.cluster_store.Store`. Every
state change is mirrored into KMock's ``emulator.objects`` with its history, so KMock-style
assertions such as ``emulator.objects[res, "ns", "name"] >= {"spec": ...}`` work.
"""

from __future__ import annotations

import asyncio
import collections
import json
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import parsing
from kmock._internal.apps import RawHandler

from warmpool.sim import cluster_protobuf
from warmpool.sim import cluster_resources as resources
from warmpool.sim.cluster_admission import (
    WARNINGS,
    AdmittedWrites,
    WebhookDispatcher,
    warning_header,
)
from warmpool.sim.cluster_ops import (
    PatchError,
    SelectorError,
    apply_patch,
    get_path,
    parse_field_selector,
    parse_label_selector,
    set_path,
)
from warmpool.sim.cluster_resources import ResourceType
from warmpool.sim.cluster_store import ApiError, Event, Store, Watcher, conflict

__all__ = ["ClusterEmulator"]

JSON = "application/json"


_kmock_parse_path = parsing.parse_path


def _parse_path(path: str) -> parsing.ParsedPath:
    """KMock's path parser, with the core ``namespaces`` collection understood.

    KMock 0.8 reads ``/api/v1/namespaces[/<name>]`` as a namespace prefix and fails (a
    500) on the collection itself, which Kopf lists and watches in its namespaced mode
    (``kopf.operator(namespaces=[...])``) to follow the namespaces it serves. The paths
    are read as this emulator's dispatcher reads them (:meth:`ClusterEmulator._dispatch`).
    """
    parts = path.strip("/").split("/")
    core = len(parts) >= 3 and parts[0] == "api" and parts[2] == "namespaces"
    if core and (len(parts) in (3, 4) or (len(parts) == 5 and parts[4] in ("status", "finalize"))):
        name = parts[3] if len(parts) > 3 else None
        sub = parts[4] if len(parts) > 4 else None
        return parsing.ParsedPath("", parts[1], "namespaces", None, name, sub)
    return _kmock_parse_path(path)


# Installed for every KMock request parse in this process (KMock calls it through its
# ``parsing`` module; there is no hook for it).
parsing.parse_path = _parse_path


def _respond(payload: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.Response(body=json.dumps(payload).encode(), status=status, content_type=JSON)


@attrs.define(kw_only=True)
class ClusterEmulator(kmock.KubernetesEmulator):
    """The emulated API server (an aiohttp handler; serve it with :class:`kmock.Server`)."""

    request_log_limit: int | None = None  # keep at most this many requests in KMock's log
    # Requests served, by HTTP method (counted whatever the log keeps: long benchmarks).
    methods: collections.Counter[str] = attrs.field(factory=collections.Counter)
    history_limit: int | None = 16  # versions kept per object in ``emulator.objects``
    store: Store = attrs.field(factory=Store)
    # When set, only ``Authorization: Bearer <one of these>`` is let in (else 401), as an
    # API server with a token authenticator; tests change the set to revoke a token.
    bearer_tokens: set[str] | None = None
    # Validating admission webhooks (sim/cluster_admission.py); ``webhooks.services`` maps
    # a webhook's Service reference to where it listens.
    webhooks: WebhookDispatcher = attrs.field(init=False)
    _writes: AdmittedWrites = attrs.field(init=False)
    _watch_tasks: set[asyncio.Event] = attrs.field(factory=set, init=False)
    _stopping: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        # Neither the scaffold's nor the stock emulator's fallbacks: this class serves them all.
        self.store.on_change.append(self._mirror)
        self.webhooks = WebhookDispatcher(self.store)
        self._writes = AdmittedWrites(self.store, self.webhooks)

    # --- plumbing -------------------------------------------------------------------------

    def _mirror(self, rt: ResourceType, event: Event) -> None:
        meta = event.obj["metadata"]
        key = (kmock.resource(rt.group, rt.version, rt.plural), meta.get("namespace"), meta["name"])
        if event.type == "ADDED" and key not in self._objects:
            self._objects[key] = event.obj
            return
        obj = self._objects[key]
        if event.type == "DELETED":
            obj.delete()
        else:
            obj.history.append(event.obj)
        if self.history_limit is not None and len(obj.history) > self.history_limit:
            del obj.history[: len(obj.history) - self.history_limit]

    def stop_watches(self) -> None:
        """End every open watch stream (the server is shutting down)."""
        self._stopping = True
        for wake in self._watch_tasks:
            wake.set()

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # KMock reads every body as text in the request's charset (UTF-8 by default), which
        # fails on binary protobuf; latin-1 decodes any byte, and ``body`` keeps the bytes.
        content_type = raw_request.headers.get("Content-Type", "")
        if cluster_protobuf.is_protobuf(content_type):
            headers = raw_request.headers.copy()
            headers["Content-Type"] = f"{cluster_protobuf.PROTOBUF}; charset=latin-1"
            raw_request = raw_request.clone(headers=headers)
        return await super().__call__(raw_request)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        self.methods[request.method.value.upper()] += 1
        if self.request_log_limit is not None and len(self._requests) > self.request_log_limit:
            del self._requests[: len(self._requests) - self.request_log_limit // 2]
        if self.bearer_tokens is not None:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme != "Bearer" or token not in self.bearer_tokens:
                return _respond(ApiError(401, "Unauthorized", "Unauthorized").status(), 401)
        if self._payloads:  # user-defined reactions first, as in KMock
            try:
                return await RawHandler._handle(self, request)
            except NotImplementedError:
                pass
        warnings: list[str] = []
        reset = WARNINGS.set(warnings)
        try:
            response = await self._dispatch(request)
        except ApiError as e:
            response = _respond(e.status(), e.code)
        finally:
            WARNINGS.reset(reset)
        for text in warnings:  # from admission webhooks
            response.headers.add("Warning", warning_header(text))
        return response

    async def _dispatch(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        path = request.url.path.rstrip("/") or "/"
        parts = path.strip("/").split("/") if path != "/" else []
        if not parts or parts[0] not in ("api", "apis"):
            return self._misc(path)
        if parts[0] == "api":
            if len(parts) == 1:
                return _respond(resources.api_versions())
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) == 1:
                return _respond(resources.group_list(self.store.types.values()))
            if len(parts) == 2:
                doc = resources.group_doc(parts[1], self.store.types.values())
                if doc is None:
                    raise ApiError(
                        404, "NotFound", "the server could not find the requested resource"
                    )
                return _respond(doc)
            group, version, rest = parts[1], parts[2], parts[3:]
        if not rest:
            types = [
                t for t in self.store.types.values() if (t.group, t.version) == (group, version)
            ]
            if not types:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _respond(resources.resource_list(types[0].group_version, types))
        namespace: str | None = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
        ):
            namespace, rest = rest[1], rest[2:]
        plural, name = rest[0], rest[1] if len(rest) > 1 else None
        subresource = "/".join(rest[2:]) or None
        rt = self.store.lookup(group, version, plural)
        if rt is None or (namespace is not None and not rt.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return await self._serve_resource(request, rt, namespace, name, subresource)

    def _misc(self, path: str) -> aiohttp.web.StreamResponse:
        if path in ("/healthz", "/readyz", "/livez"):
            return aiohttp.web.Response(text="ok")
        if path == "/version":
            return _respond(
                {
                    "major": "1",
                    "minor": "33",
                    "gitVersion": "v1.33.0-warmpool-sim",
                    "platform": "linux/amd64",
                }
            )
        if path == "/openapi/v3":
            return _respond(resources.openapi_index(self.store.types.values()))
        if path.startswith("/openapi/v3/"):
            gv = path.removeprefix("/openapi/v3/").removeprefix("api/").removeprefix("apis/")
            types = [t for t in self.store.types.values() if t.group_version == gv]
            if types:
                return _respond(resources.openapi_document(types))
        if path == "/":
            return _respond({"paths": ["/api", "/api/v1", "/apis", "/version", "/healthz"]})
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    # --- resources ------------------------------------------------------------------------

    def _body(self, request: kmock.Request) -> Any:
        content_type = request.headers.get("Content-Type", "")
        if request.body and cluster_protobuf.is_protobuf(content_type):
            try:
                return cluster_protobuf.decode(request.body)
            except cluster_protobuf.ProtobufError as e:
                raise ApiError(415, "UnsupportedMediaType", str(e)) from e
        try:
            return json.loads(request.body) if request.body else None
        except ValueError as e:
            raise ApiError(400, "BadRequest", f"the body is not valid JSON: {e}") from e

    async def _serve_resource(
        self,
        request: kmock.Request,
        rt: ResourceType,
        namespace: str | None,
        name: str | None,
        subresource: str | None,
    ) -> aiohttp.web.StreamResponse:
        method = request.method.value.upper()
        params = request.params
        if subresource is not None and not (
            (subresource == "status" and rt.status_subresource)
            or (subresource == "scale" and rt.scale is not None)
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if name is None:
            if method == "GET" and params.get("watch") in ("true", "1"):
                return await self._watch(request, rt, namespace, None)
            if method == "GET":
                return self._list(request, rt, namespace)
            if method == "POST":
                created = await self._writes.create(
                    rt,
                    self._body(request),
                    namespace,
                    field_validation=params.get("fieldValidation"),
                    dry_run=params.get("dryRun") == "All",
                )
                return _respond(created, 201)
            if method == "DELETE":
                return self._delete_collection(request, rt, namespace)
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on a collection")
        if method == "GET" and params.get("watch") in ("true", "1"):
            return await self._watch(request, rt, namespace, name)
        obj = self.store.get(rt, namespace, name)
        if subresource == "scale":
            return self._scale(request, rt, obj, method)
        if method == "GET":
            if "as=Table" in request.headers.get("Accept", ""):
                return _respond(resources.table(rt, [obj], {}))
            return _respond(obj)
        if method == "PUT":
            body = self._body(request)
            return _respond(
                await self._writes.update(
                    rt,
                    obj,
                    body,
                    subresource=subresource,
                    require_rv=True,
                    field_validation=params.get("fieldValidation"),
                    dry_run=params.get("dryRun") == "All",
                )
            )
        if method == "PATCH":
            return _respond(await self._patch(request, rt, obj, subresource))
        if method == "DELETE":
            await self._writes.check_delete(rt, obj, dry_run=params.get("dryRun") == "All")
            options = self._body(request) or {}
            propagation = params.get("propagationPolicy") or options.get("propagationPolicy")
            result = self.store.delete(
                rt,
                obj,
                propagation=propagation or "Background",
                preconditions=options.get("preconditions"),
            )
            return _respond(result)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on an object")

    async def _patch(
        self, request: kmock.Request, rt: ResourceType, obj: dict[str, Any], sub: str | None
    ) -> dict[str, Any]:
        body = self._body(request)
        content_type = request.headers.get("Content-Type", "")
        try:
            new = apply_patch(content_type, obj, body)
        except PatchError as e:
            code = 415 if "unsupported" in str(e) else 422
            raise ApiError(
                code, "UnsupportedMediaType" if code == 415 else "Invalid", str(e)
            ) from e
        if isinstance(body, dict):
            given = (body.get("metadata") or {}).get("resourceVersion")
            if given and str(given) != obj["metadata"]["resourceVersion"]:
                raise conflict(rt, obj["metadata"]["name"])
        new.setdefault("metadata", {})["resourceVersion"] = obj["metadata"]["resourceVersion"]
        return await self._writes.update(
            rt,
            obj,
            new,
            subresource=sub,
            field_validation=request.params.get("fieldValidation"),
            dry_run=request.params.get("dryRun") == "All",
        )

    def _matchers(self, params: Any, name: str | None) -> tuple[Any, ...]:
        try:
            matchers = [
                parse_label_selector(params.get("labelSelector")),
                parse_field_selector(params.get("fieldSelector")),
                parse_field_selector(f"metadata.name={name}") if name else None,
            ]
        except SelectorError as e:
            raise ApiError(400, "BadRequest", str(e)) from e
        return tuple(m for m in matchers if m is not None)

    def _list(
        self, request: kmock.Request, rt: ResourceType, namespace: str | None
    ) -> aiohttp.web.StreamResponse:
        items = self.store.list(rt, namespace, self._matchers(request.params, None))
        meta = {"resourceVersion": str(self.store.rv)}
        if "as=Table" in request.headers.get("Accept", ""):
            return _respond(resources.table(rt, items, meta))
        return _respond(
            {
                "apiVersion": rt.api_version,
                "kind": f"{rt.kind}List",
                "metadata": meta,
                "items": items,
            }
        )

    def _delete_collection(
        self, request: kmock.Request, rt: ResourceType, namespace: str | None
    ) -> aiohttp.web.StreamResponse:
        deleted = [
            self.store.delete(rt, obj)
            for obj in self.store.list(rt, namespace, self._matchers(request.params, None))
        ]
        meta = {"resourceVersion": str(self.store.rv)}
        return _respond(
            {
                "apiVersion": rt.api_version,
                "kind": f"{rt.kind}List",
                "metadata": meta,
                "items": deleted,
            }
        )

    def _scale(
        self, request: kmock.Request, rt: ResourceType, obj: dict[str, Any], method: str
    ) -> aiohttp.web.StreamResponse:
        assert rt.scale is not None
        current = _scale_of(rt, obj)
        if method == "GET":
            return _respond(current)
        body = self._body(request)
        if method == "PUT":
            new_scale = body
        elif method == "PATCH":
            try:
                new_scale = apply_patch(request.headers.get("Content-Type", ""), current, body)
            except PatchError as e:
                raise ApiError(422, "Invalid", str(e)) from e
        else:
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on scale")
        if not isinstance(new_scale, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
        given = (new_scale.get("metadata") or {}).get("resourceVersion")
        if given and str(given) != obj["metadata"]["resourceVersion"]:
            raise conflict(rt, obj["metadata"]["name"])
        new = json.loads(json.dumps(obj))
        set_path(new, rt.scale.spec_replicas_path, (new_scale.get("spec") or {}).get("replicas"))
        updated = self.store.update(rt, obj, new)
        return _respond(_scale_of(rt, updated))

    # --- watching -------------------------------------------------------------------------

    async def _watch(
        self, request: kmock.Request, rt: ResourceType, namespace: str | None, name: str | None
    ) -> aiohttp.web.StreamResponse:
        params = request.params
        watcher = Watcher(namespace, self._matchers(params, name))
        since = params.get("resourceVersion") or "0"
        if since == "0":
            initial = [
                json.dumps({"type": "ADDED", "object": obj}).encode() + b"\n"
                for obj in self.store.list(rt, namespace, watcher.matchers)
            ]
        else:
            try:
                events = self.store.events_since(rt, int(since))
            except ValueError as e:
                raise ApiError(400, "BadRequest", f"invalid resourceVersion: {since}") from e
            if events is None:
                gone = ApiError(410, "Expired", f"too old resource version: {since}")
                error = json.dumps({"type": "ERROR", "object": gone.status()}).encode() + b"\n"
                watcher.queue.append(None)  # ends the stream right after the initial lines
                initial = [error]
            else:
                initial = [line for e in events if (line := watcher.translate(e)) is not None]
        wake = asyncio.Event()
        watcher.wakeup = wake.set
        timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        self.store.watchers[rt.key].add(watcher)
        self._watch_tasks.add(wake)
        response = aiohttp.web.StreamResponse(headers={"Content-Type": JSON})
        try:
            assert request._raw_request is not None
            await response.prepare(request._raw_request)
            if initial:
                await response.write(b"".join(initial))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout if timeout is not None else None
            while not self._stopping:
                while watcher.queue:
                    event = watcher.queue.popleft()
                    if event is None:
                        return response
                    translated = watcher.translate(event)
                    if translated is not None:
                        await response.write(translated)
                wake.clear()
                if watcher.queue:
                    continue
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(wake.wait(), remaining)
                except TimeoutError:
                    break
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away
        finally:
            self.store.watchers[rt.key].discard(watcher)
            self._watch_tasks.discard(wake)
        return response


def _scale_of(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    assert rt.scale is not None
    meta = obj["metadata"]
    status: dict[str, Any] = {"replicas": get_path(obj, rt.scale.status_replicas_path) or 0}
    if rt.scale.label_selector_path:
        selector = get_path(obj, rt.scale.label_selector_path)
        if selector is not None:
            status["selector"] = selector
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": get_path(obj, rt.scale.spec_replicas_path) or 0},
        "status": status,
    }
