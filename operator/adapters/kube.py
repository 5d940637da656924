"""A small typed async client of the Kubernetes API, on httpx.

Kopf does the watching for handlers; this client serves everything else: the
handlers' own reads and writes, the studio, the tests. Objects are plain dicts
(the custom resources are parsed by their pydantic models in ``warmpool.crds``).

Every call goes through :meth:`KubeClient._request`, the one chokepoint that maps
HTTP statuses and transport failures to the ``Kube*Error`` classes of
``warmpool.operator.errors`` (table :data:`STATUS_ERRORS`) and retries reads a
few times on transient failures. The bearer token travels in the
``Authorization`` header only and never appears in a log or an error message.

Configuration (:func:`load_config`): an explicit kubeconfig path, else
``$KUBECONFIG``, else the in-cluster service account, else ``~/.kube/config``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote

import httpx
import yaml
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from warmpool.crds.common import GROUP, VERSION
from warmpool.crds.schema import KINDS
from warmpool.operator import errors

__all__ = [
    "CRDS",
    "EVENTS",
    "GENERATIONJOBS",
    "GPUINSTANCES",
    "GPUPOOLS",
    "LEASES",
    "MUSES",
    "NAMESPACES",
    "SECRETS",
    "STATUS_ERRORS",
    "KubeClient",
    "KubeConfig",
    "Resource",
    "WatchEvent",
    "error_for",
    "load_config",
]

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
Objs = list[Obj]  # `list` is also a method name of KubeClient

SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
READ_ATTEMPTS: Final = 3


# ---------------------------------------------------------------- resources


@dataclass(frozen=True)
class Resource:
    """One kind as the API server serves it. ``group`` is ``""`` for the core group."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The URL path: ``/apis/g/v[/namespaces/ns]/plural[/name[/sub]]``."""
        parts = ["/api/v1" if not self.group else f"/apis/{self.group}/{self.version}"]
        if self.namespaced and namespace is not None:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
            if subresource is not None:
                parts.append(subresource)
        elif subresource is not None:
            raise ValueError("a subresource needs an object name")
        return "/".join(parts)


def _custom(kind: str) -> Resource:
    (spec,) = [k for k in KINDS if k.kind == kind]
    return Resource(GROUP, VERSION, spec.plural, spec.kind, namespaced=True)


GPUPOOLS: Final = _custom("GpuPool")
GPUINSTANCES: Final = _custom("GpuInstance")
GENERATIONJOBS: Final = _custom("GenerationJob")
MUSES: Final = _custom("Muse")
SECRETS: Final = Resource("", "v1", "secrets", "Secret")
EVENTS: Final = Resource("", "v1", "events", "Event")
NAMESPACES: Final = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
LEASES: Final = Resource("coordination.k8s.io", "v1", "leases", "Lease")
CRDS: Final = Resource(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False
)


@dataclass(frozen=True)
class WatchEvent:
    """One line of a watch stream: ``ADDED``, ``MODIFIED``, ``DELETED`` or ``BOOKMARK``."""

    type: str
    object: Obj


# ---------------------------------------------------------------- errors

STATUS_ERRORS: Final[Mapping[int, type[errors.KubeError]]] = {
    401: errors.KubeForbiddenError,
    403: errors.KubeForbiddenError,
    404: errors.KubeNotFoundError,
    409: errors.KubeConflictError,
    410: errors.KubeGoneError,
    422: errors.KubeInvalidError,
    429: errors.KubeUnavailableError,
}


def error_for(status: int, body: Any, *, what: str) -> errors.KubeError:
    """The error for an HTTP status (or a watch ``ERROR``) with its Status body."""
    st: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    reason = str(st.get("reason") or "")
    detail = str(st.get("message") or reason or f"HTTP {status}")
    message = f"{what}: {status} {detail}"
    cls = STATUS_ERRORS.get(status) or (
        errors.KubeUnavailableError if status >= 500 else errors.KubeError
    )
    if cls is errors.KubeInvalidError:
        details = st.get("details")
        causes = details.get("causes") if isinstance(details, Mapping) else None
        return errors.KubeInvalidError(
            message,
            status=status,
            reason=reason or "Invalid",
            causes=[
                {str(k): str(v) for k, v in c.items()}
                for c in (causes if isinstance(causes, list) else [])
                if isinstance(c, Mapping)
            ],
        )
    return cls(message, status=status, reason=reason)


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class KubeConfig:
    """Where the API server is and how to authenticate. Secrets are kept out of ``repr``."""

    server: str
    namespace: str = "default"
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    ca_file: Path | None = None
    ca_data: str | None = field(default=None, repr=False)
    cert_file: Path | None = None
    key_file: Path | None = None
    cert_data: bytes | None = field(default=None, repr=False)
    key_data: bytes | None = field(default=None, repr=False)
    insecure: bool = False

    def verify(self) -> ssl.SSLContext | bool:
        """The TLS settings for httpx: a context with the CA and client certificate."""
        if not self.server.startswith("https"):
            return True
        if self.insecure:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file else None, cadata=self.ca_data
            )
        if self.cert_file and self.key_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        elif self.cert_data and self.key_data:
            with _temp_pair(self.cert_data, self.key_data) as (cert, key):
                ctx.load_cert_chain(cert, key)
        return ctx

    def bearer(self) -> str | None:
        """The current token (a service-account token file is re-read: it rotates)."""
        if self.token_file is not None:
            return self.token_file.read_text().strip() or None
        return self.token


class _temp_pair:
    """Certificate and key data in a private temporary directory, removed on exit."""

    def __init__(self, cert: bytes, key: bytes) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="warmpool-kube-")
        self._data = (cert, key)

    def __enter__(self) -> tuple[Path, Path]:
        base = Path(self._dir.name)
        paths = (base / "client.crt", base / "client.key")
        for path, data in zip(paths, self._data, strict=True):
            path.touch(mode=0o600)
            path.write_bytes(data)
        return paths

    def __exit__(self, *exc: object) -> None:
        self._dir.cleanup()


def _b64(value: Any) -> bytes:
    return base64.b64decode(str(value))


def _file(value: Any, base: Path) -> Path | None:
    return None if not value else (base / str(value)).resolve()


def _named(items: Any, name: str, what: str) -> Mapping[str, Any]:
    for item in items or []:
        if isinstance(item, Mapping) and item.get("name") == name:
            found = item.get(what) or {}
            return found if isinstance(found, Mapping) else {}
    raise errors.ConfigurationError(f"kubeconfig: no {what} named {name!r}")


def load_kubeconfig(path: Path, *, context: str | None = None) -> KubeConfig:
    """Read one kubeconfig file and resolve its current (or the given) context."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise errors.ConfigurationError(f"kubeconfig {path} is unreadable: {e}") from e
    name = context or doc.get("current-context")
    if not name:
        raise errors.ConfigurationError(f"kubeconfig {path} has no current-context")
    ctx = _named(doc.get("contexts"), name, "context")
    cluster = _named(doc.get("clusters"), str(ctx.get("cluster")), "cluster")
    user = _named(doc.get("users"), str(ctx.get("user")), "user") if ctx.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise errors.ConfigurationError("kubeconfig: exec and auth-provider users are unsupported")
    base = path.parent
    server = cluster.get("server")
    if not server:
        raise errors.ConfigurationError(f"kubeconfig {path}: cluster without a server")
    ca = cluster.get("certificate-authority-data")
    return KubeConfig(
        server=str(server).rstrip("/"),
        namespace=str(ctx.get("namespace") or "default"),
        token=str(user["token"]) if user.get("token") else None,
        token_file=_file(user.get("tokenFile"), base),
        ca_file=_file(cluster.get("certificate-authority"), base),
        ca_data=_b64(ca).decode() if ca else None,
        cert_file=_file(user.get("client-certificate"), base),
        key_file=_file(user.get("client-key"), base),
        cert_data=_b64(user["client-certificate-data"])
        if user.get("client-certificate-data")
        else None,
        key_data=_b64(user["client-key-data"]) if user.get("client-key-data") else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
    )


def load_incluster(directory: Path | None = None) -> KubeConfig:
    """The pod's service account: token, CA and namespace files, service host and port."""
    directory = directory or SERVICE_ACCOUNT_DIR
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host or not (directory / "token").is_file():
        raise errors.ConfigurationError("not running in a cluster (no service account)")
    host = f"[{host}]" if ":" in host else host
    ns_file = directory / "namespace"
    ca_file = directory / "ca.crt"
    return KubeConfig(
        server=f"https://{host}:{port}",
        namespace=ns_file.read_text().strip() if ns_file.is_file() else "default",
        token_file=directory / "token",
        ca_file=ca_file if ca_file.is_file() else None,
    )


def load_config(path: str | os.PathLike[str] | None = None) -> KubeConfig:
    """Explicit path, else ``$KUBECONFIG`` (first existing entry), else in-cluster,
    else ``~/.kube/config``."""
    if path is not None:
        return load_kubeconfig(Path(path))
    for entry in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        if entry and Path(entry).expanduser().is_file():
            return load_kubeconfig(Path(entry).expanduser())
    if os.environ.get("KUBERNETES_SERVICE_HOST") and (SERVICE_ACCOUNT_DIR / "token").is_file():
        return load_incluster()
    home = Path("~/.kube/config").expanduser()
    if home.is_file():
        return load_kubeconfig(home)
    raise errors.ConfigurationError("no kubeconfig found and not running in a cluster")


class _Bearer(httpx.Auth):
    def __init__(self, config: KubeConfig) -> None:
        self._config = config

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._config.bearer()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


# ---------------------------------------------------------------- client


class KubeClient:
    """Typed calls on one ``httpx.AsyncClient``. Use as ``async with`` or call :meth:`close`."""

    def __init__(
        self,
        server: str,
        *,
        client: httpx.AsyncClient | None = None,
        config: KubeConfig | None = None,
        timeout: float = 30.0,
        read_attempts: int = READ_ATTEMPTS,
    ) -> None:
        self.server = server.rstrip("/")
        self.read_attempts = read_attempts
        self.namespace = config.namespace if config else "default"
        self._owned = client is None
        self._http = client or httpx.AsyncClient(
            auth=_Bearer(config) if config else None,
            verify=config.verify() if config else True,
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None) -> KubeClient:
        config = load_config(path)
        return cls(config.server, config=config)

    async def close(self) -> None:
        if self._owned:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

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
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_random_exponential(multiplier=0.2, max=2.0),
            retry=retry_if_exception_type(errors.KubeUnavailableError),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                content = None if body is None else json.dumps(body).encode()
                headers = {"Accept": "application/json"}
                if content is not None:
                    headers["Content-Type"] = content_type
                try:
                    response = await self._http.request(
                        method, self.server + path, params=params, content=content, headers=headers
                    )
                except httpx.TransportError as e:
                    raise errors.KubeUnavailableError(f"{what}: {type(e).__name__}: {e}") from e
                logger.debug("%s -> %d", what, response.status_code)
                if response.status_code >= 400:
                    raise error_for(response.status_code, _json_or_none(response), what=what)
                return response
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
                "GET", self.server + path, params=params, timeout=timeout
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
