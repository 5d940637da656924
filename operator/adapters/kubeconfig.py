"""Where the Kubernetes API server is and how to authenticate to it.

:func:`load_config` looks, in order, at an explicit kubeconfig path, ``$KUBECONFIG``
(its first existing entry), the in-cluster service account
(``/var/run/secrets/kubernetes.io/serviceaccount`` and ``KUBERNETES_SERVICE_HOST``/
``_PORT``), and ``~/.kube/config``. Supported users: bearer token (inline or
``tokenFile``) and client certificate and key (data or files); ``exec`` and
``auth-provider`` users are refused with a ConfigurationError.
Secrets are kept out of ``repr`` and never logged.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import yaml

from warmpool.operator import errors

__all__ = [
    "SERVICE_ACCOUNT_DIR",
    "BearerAuth",
    "KubeConfig",
    "load_config",
    "load_incluster",
    "load_kubeconfig",
]

SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")


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
        if not self.server.startswith("https://"):
            return False  # plain HTTP (an emulator on loopback): skip loading CA certificates
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


class BearerAuth(httpx.Auth):
    """Sends the config's current bearer token on every request."""

    def __init__(self, config: KubeConfig) -> None:
        self._config = config

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._config.bearer()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request
