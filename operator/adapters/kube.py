"""The typed async facade of the Kubernetes API used across the code base, on httpx.

Kopf does the watching for handlers; this client serves everything else: the
handlers' own reads and writes, the studio, the tests. Objects are plain dicts
(the custom resources are parsed by their pydantic models in ``warmpool.crds``).

Connection, credentials and TLS come from lightkube (``lightkube.config``, through
:mod:`warmpool.operator.adapters.kubeconfig`, re-exported here: :class:`KubeConfig`,
:func:`load_config`): exec plugins, merged ``$KUBECONFIG``, rotating tokens, in-cluster,
``proxy-url``, ``tls-server-name``. The same loaded configuration feeds Kopf's login.

Every call goes through :meth:`KubeClient._request`, the one chokepoint that names
warmpool (``User-Agent: warmpool/<version>``, ``fieldManager=warmpool`` on writes),
honours 429 ``Retry-After`` (bounded), maps HTTP statuses and transport failures to
the ``Kube*Error`` classes of ``warmpool.operator.errors`` (table
:data:`STATUS_ERRORS`) and retries reads a few times on transient failures. The
bearer token travels in the ``Authorization`` header only and never appears in a
log or an error message. The kinds, the watch event and the error table live in
:mod:`warmpool.operator.adapters.kube_resources` (re-exported). About 430 lines: one
method per verb of the facade the code base uses, and their one chokepoint.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from importlib import metadata
from types import TracebackType
from typing import Any, Final, Self

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from warmpool.operator import errors
from warmpool.operator.adapters import http
from warmpool.operator.adapters.kube_resources import (
    CLUSTER_KOPF_PEERINGS,
    CRDS,
    EVENTS,
    GENERATIONJOBS,
    GPUINSTANCES,
    GPUPOOLS,
    KOPF_PEERINGS,
    LEASES,
    MUSES,
    NAMESPACES,
    SECRETS,
    STATUS_ERRORS,
    Obj,
    Resource,
    WatchEvent,
    error_for,
)
from warmpool.operator.adapters.kubeconfig import KubeConfig, LoginInfo, load_config

__all__ = [
    "CLUSTER_KOPF_PEERINGS",
    "CRDS",
    "EVENTS",
    "GENERATIONJOBS",
    "GPUINSTANCES",
    "GPUPOOLS",
    "KOPF_PEERINGS",
    "LEASES",
    "MUSES",
    "NAMESPACES",
    "SECRETS",
    "STATUS_ERRORS",
    "KubeClient",
    "KubeConfig",
    "LoginInfo",
    "Resource",
    "WatchEvent",
    "error_for",
    "load_config",
]

logger = logging.getLogger(__name__)

Objs = list[Obj]  # `list` is also a method name of KubeClient

MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
READ_ATTEMPTS: Final = 3
FIELD_MANAGER: Final = "warmpool"
USER_AGENT: Final = f"warmpool/{metadata.version('warmpool')}"
THROTTLE_ATTEMPTS: Final = 4  # sends of one request answered 429 before giving up
MAX_RETRY_AFTER: Final = 10.0  # seconds: a longer Retry-After is cut to this
WRITES: Final = frozenset({"POST", "PUT", "PATCH"})


# ---------------------------------------------------------------- client


class KubeClient:
    """Typed calls on one ``httpx.AsyncClient``. Use as ``async with`` or call :meth:`close`.

    ``KubeClient(url)`` talks to an unauthenticated server (the emulator in tests);
    :meth:`from_config` (or ``config=``) brings credentials, TLS and proxy. ``client=``
    injects an httpx client (respx tests); its auth and TLS are then the caller's."""

    def __init__(
        self,
        server: str,
        *,
        client: httpx.AsyncClient | None = None,
        config: KubeConfig | None = None,
        timeout: float = 30.0,
        read_attempts: int = READ_ATTEMPTS,
        max_retry_after: float = MAX_RETRY_AFTER,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.server = server.rstrip("/")
        self.user_agent = user_agent
        self.config = config
        self.read_attempts = read_attempts
        self.max_retry_after = max_retry_after
        self.namespace = config.namespace if config else "default"
        self._tls = config.tls() if config else None
        self._extensions = (
            {"sni_hostname": config.tls_server_name} if config and config.tls_server_name else {}
        )
        self._owned = client is None
        self._http = client or self._client(config, httpx.Timeout(timeout, connect=10.0))

    def _client(self, config: KubeConfig | None, timeout: httpx.Timeout) -> httpx.AsyncClient:
        """The aiohttp-engined client (:mod:`.http`); httpx's own through a proxy."""
        auth = config.auth() if config else None
        verify = self._tls.context if self._tls else False
        if config and config.proxy_url:
            return httpx.AsyncClient(auth=auth, verify=verify, proxy=config.proxy_url,
                                     timeout=timeout)  # fmt: skip
        return http.client(verify=verify, timeout=timeout, auth=auth)

    @classmethod
    def from_config(
        cls, path: str | os.PathLike[str] | None = None, *, user_agent: str = USER_AGENT
    ) -> KubeClient:
        """The client of :func:`load_config` (explicit path, in-cluster, $KUBECONFIG, ~);
        ``user_agent`` names the replica in the API server's audit log."""
        config = load_config(path)
        return cls(config.server, config=config, user_agent=user_agent)

    async def login_info(self) -> LoginInfo:
        """The credentials this client uses, for Kopf's login (one source for both)."""
        if self.config is None:
            return LoginInfo(server=self.server, namespace=self.namespace)
        return await self.config.login_info()

    async def close(self) -> None:
        if self._owned:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _headers(self, method: str, content: bytes | None, content_type: str) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if content is not None:
            headers["Content-Type"] = content_type
        return headers

    def _params(self, method: str, params: Mapping[str, str] | None) -> dict[str, str]:
        out = dict(params or {})
        if method in WRITES:
            out.setdefault("fieldManager", FIELD_MANAGER)
        return out

    def _retry_after(self, response: httpx.Response) -> float:
        """Seconds to wait before sending again, from ``Retry-After`` (bounded)."""
        try:
            delay = float(response.headers.get("Retry-After", "1"))
        except ValueError:
            delay = 1.0  # an HTTP date: the API server sends seconds
        return min(max(delay, 0.0), self.max_retry_after)

    async def _send(
        self, method: str, url: str, params: dict[str, str], content: bytes | None, ct: str
    ) -> httpx.Response:
        """One request, sent again while the server answers 429 (it did not process it)."""
        if self._tls is not None:
            self._tls.reload_if_changed()
        for attempt in range(THROTTLE_ATTEMPTS):
            response = await self._http.request(
                method,
                url,
                params=params,
                content=content,
                headers=self._headers(method, content, ct),
                extensions=self._extensions,
            )
            if response.status_code != 429 or attempt == THROTTLE_ATTEMPTS - 1:
                return response
            delay = self._retry_after(response)
            logger.debug("%s %s throttled: again in %.1f s", method, url, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # The chokepoint: every request, its error mapping and its retries.
    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> httpx.Response:
        what = f"{method} {path}"
        attempts = self.read_attempts if method == "GET" else 1
        query = self._params(method, params)
        content = None if body is None else json.dumps(body).encode()

        async def once() -> httpx.Response:
            try:
                response = await self._send(method, self.server + path, query, content,
                                            content_type)  # fmt: skip
            except httpx.TransportError as e:
                raise errors.KubeUnavailableError(f"{what}: {type(e).__name__}: {e}") from e
            logger.debug("%s -> %d", what, response.status_code)
            if response.status_code >= 400:
                raise error_for(response.status_code, _json_or_none(response), what=what)
            return response

        if attempts == 1:  # a write: sent once (no retry machinery to set up)
            return await once()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_random_exponential(multiplier=0.2, max=2.0),
            retry=retry_if_exception_type(errors.KubeUnavailableError),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await once()
        raise AssertionError("unreachable")  # pragma: no cover

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Obj | None:
        """The object, or None when it does not exist."""
        try:
            response = await self._request("GET", res.path(namespace, name))
        except errors.KubeNotFoundError:
            return None
        return _obj(response)

    async def list_with_version(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> tuple[Objs, str]:
        """All items (pages followed) with ``kind`` and ``apiVersion`` filled in, and the
        list's resourceVersion to start a watch from."""
        params: dict[str, str] = {"limit": str(page_size)}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        items: Objs = []
        while True:
            doc = _obj(await self._request("GET", res.path(namespace), params=params))
            for item in doc.get("items") or []:
                item.setdefault("apiVersion", res.api_version)
                item.setdefault("kind", res.kind)
                items.append(item)
            meta = doc.get("metadata") or {}
            if not meta.get("continue"):
                return items, str(meta.get("resourceVersion") or "")
            params["continue"] = str(meta["continue"])

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Objs:
        """All items of the kind in the namespace (or every namespace when None)."""
        items, _ = await self.list_with_version(
            res, namespace, label_selector=label_selector, field_selector=field_selector
        )
        return items

    async def create(self, res: Resource, body: Obj, namespace: str | None = None) -> Obj:
        """Create; ``apiVersion`` and ``kind`` are filled in when missing."""
        body = {"apiVersion": res.api_version, "kind": res.kind, **body}
        return _obj(await self._request("POST", res.path(namespace), body=body))

    async def patch(
        self,
        res: Resource,
        name: str,
        namespace: str | None,
        patch: Obj | Objs,
        *,
        subresource: str | None = None,
    ) -> Obj:
        """A merge patch (a dict) or a JSON patch (a list of operations)."""
        kind = JSON_PATCH if isinstance(patch, list) else MERGE_PATCH
        path = res.path(namespace, name, subresource)
        return _obj(await self._request("PATCH", path, body=patch, content_type=kind))

    async def replace(
        self,
        res: Resource,
        name: str,
        namespace: str | None,
        body: Obj,
        *,
        subresource: str | None = None,
    ) -> Obj:
        """PUT the whole object; 409 (:class:`KubeConflictError`) on a stale resourceVersion."""
        body = {"apiVersion": res.api_version, "kind": res.kind, **body}
        path = res.path(namespace, name, subresource)
        return _obj(await self._request("PUT", path, body=body))

    async def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
    ) -> bool:
        """Delete; False when the object was already gone."""
        options = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            await self._request("DELETE", res.path(namespace, name), body=options)
        except errors.KubeNotFoundError:
            return False
        return True

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Stream changes until the server ends the watch. An expired resourceVersion
        raises :class:`KubeGoneError` (re-list and watch again)."""
        params: dict[str, str] = {"watch": "true", "allowWatchBookmarks": "true"}
        if label_selector:
            params["labelSelector"] = label_selector
        if resource_version:
            params["resourceVersion"] = resource_version
        if timeout_seconds is not None:
            params["timeoutSeconds"] = str(timeout_seconds)
        path = res.path(namespace)
        what = f"WATCH {path}"
        timeout = httpx.Timeout(10.0, read=None)
        try:
            async with self._http.stream(
                "GET",
                self.server + path,
                params=params,
                timeout=timeout,
                headers=self._headers("GET", None, ""),
                extensions=self._extensions,
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_for(response.status_code, _json_or_none(response), what=what)
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        raise error_for(int(obj.get("code") or 500), obj, what=what)
                    yield WatchEvent(type=str(event.get("type")), object=obj)
        except httpx.TransportError as e:
            raise errors.KubeUnavailableError(f"{what}: {type(e).__name__}: {e}") from e

    async def post_event(
        self,
        involved: Mapping[str, Any],
        *,
        reason: str,
        message: str,
        type: str = "Normal",
        component: str = "warmpool",
    ) -> Obj | None:
        """Post a core/v1 Event about an object. Best effort, like Kopf's: a failure is
        logged and None returned."""
        meta = involved.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        body: Obj = {
            "metadata": {
                "generateName": f"{meta.get('name', 'warmpool')}.",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "eventTime": now,
            "action": reason,
            "count": 1,
        }
        try:
            return await self.create(EVENTS, body, namespace)
        except errors.KubeError as e:
            logger.warning("could not post event %s on %s: %s", reason, meta.get("name"), e)
            return None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _obj(response: httpx.Response) -> Obj:
    doc = _json_or_none(response)
    if not isinstance(doc, dict):
        raise errors.KubeError(
            f"{response.request.method} {response.request.url.path}: not a JSON object",
            status=response.status_code,
        )
    return doc
