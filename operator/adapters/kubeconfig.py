"""Where the Kubernetes API server is and how to authenticate: one loaded configuration
shared by :class:`~warmpool.operator.adapters.kube.KubeClient` and Kopf's login handler.

Built on lightkube's kubeconfig models and httpx auth flows (``lightkube.config``: the
token-file auth that re-reads a rotated service-account token on 401, the TLS context
with the CA and client certificate). Added here, what lightkube lacks:

- ``$KUBECONFIG`` with several files, merged as kubectl does: missing files are skipped,
  the first file that sets ``current-context`` or names a cluster, user or context wins,
  and relative paths resolve against the file that holds them;
- ``exec`` credential plugins (``client.authentication.k8s.io`` v1, v1beta1) refreshed
  before ``status.expirationTimestamp`` and on a 401 (:class:`ExecCredentialAuth`);
- ``tls-server-name`` and ``proxy-url`` of the cluster;
- client certificate files reloaded when they change (:class:`ClientTLS`).

Precedence, the same for the client and Kopf's login (both use :func:`load_config`):
an explicit path; the in-cluster service account; ``$KUBECONFIG``; ``~/.kube/config``.
Kopf's own login handlers try the service account first too. ``auth-provider`` users
are refused. Secrets are kept out of ``repr``, logs and error messages.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import httpx
import yaml
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import KubeConfig as LightKubeConfig
from lightkube.config.kubeconfig import SingleConfig
from lightkube.config.models import Cluster, User
from lightkube.core.exceptions import ConfigError

from warmpool.operator import errors
from warmpool.operator.adapters.kube_exec import EXPIRY_SKEW, ExecCredentialAuth

__all__ = [
    "SERVICE_ACCOUNT_DIR",
    "ClientTLS",
    "ExecCredentialAuth",
    "KubeConfig",
    "LoginInfo",
    "load_config",
    "load_incluster",
    "load_kubeconfig",
    "merge_kubeconfigs",
]

logger = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
CERT_CHECK_SECONDS: Final = 10.0

# Keys holding file paths, resolved against the kubeconfig file that holds them.
_PATH_KEYS: Final = {
    "clusters": ("certificate-authority",),
    "users": ("client-certificate", "client-key", "tokenFile"),
    "contexts": (),
}


# ---------------------------------------------------------------- TLS


class ClientTLS:
    """The SSL context of a cluster, with the client certificate reloaded when its files
    change (checked at most every :data:`CERT_CHECK_SECONDS`)."""

    def __init__(self, config: KubeConfig) -> None:
        self._config = config
        failure = ""
        try:
            self.context = client_adapter.verify_cluster(
                config.cluster, config.user or User(), _absolute_only, trust_env=True
            )
        except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
            failure = type(e).__name__  # raised below: no traceback keeps lightkube's temp files
        if failure:
            what = f"{config.source}: the CA or client certificate is unusable"
            raise errors.ConfigurationError(f"{what} ({failure})")
        if config.insecure:
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE
        files = [p for p in (config.cert_file, config.key_file) if p is not None]
        self._files = files if len(files) == 2 else []
        self._stamp = self._stamps()
        self._checked = time.monotonic()

    def _stamps(self) -> tuple[float, ...]:
        try:
            return tuple(p.stat().st_mtime for p in self._files)
        except OSError:
            return ()

    def reload_if_changed(self) -> bool:
        """Load the client certificate again when its files changed; True when it did.
        Connections opened from now on present the new certificate."""
        now = time.monotonic()
        if not self._files or now - self._checked < CERT_CHECK_SECONDS:
            return False
        self._checked = now
        stamp = self._stamps()
        if not stamp or stamp == self._stamp:
            return False
        cert, key = self._files
        self.context.load_cert_chain(cert, key)
        self._stamp = stamp
        return True


def _absolute_only(path: Any) -> Any:
    if not Path(path).is_absolute():  # paths were made absolute when the files were merged
        raise errors.ConfigurationError("kubeconfig: a relative path was left unresolved")
    return path


# ---------------------------------------------------------------- the loaded configuration


@dataclass(frozen=True)
class LoginInfo:
    """What Kopf's login needs (mapped to ``kopf.ConnectionInfo`` by the login handler)."""

    server: str
    namespace: str
    insecure: bool = False
    ca_path: str | None = None
    ca_data: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    certificate_path: str | None = None
    certificate_data: str | None = field(default=None, repr=False)
    private_key_path: str | None = None
    private_key_data: str | None = field(default=None, repr=False)
    proxy_url: str | None = None
    expiration: datetime | None = None


@dataclass(frozen=True)
class KubeConfig:
    """One resolved context: the cluster, the user, the namespace. Secrets stay out of
    ``repr``; the exec plugin's cache is shared by everyone holding this object."""

    server: str
    namespace: str
    source: str
    cluster: Cluster = field(repr=False)
    user: User | None = field(default=None, repr=False)
    tls_server_name: str | None = None
    proxy_url: str | None = None
    exec_auth: ExecCredentialAuth | None = field(default=None, repr=False, compare=False)

    @property
    def insecure(self) -> bool:
        return bool(self.cluster.insecure)

    @property
    def token_file(self) -> Path | None:
        return Path(self.user.token_file) if self.user and self.user.token_file else None

    @property
    def cert_file(self) -> Path | None:
        return Path(self.user.client_cert) if self.user and self.user.client_cert else None

    @property
    def key_file(self) -> Path | None:
        return Path(self.user.client_key) if self.user and self.user.client_key else None

    def tls(self) -> ClientTLS | None:
        """The TLS settings, or None for plain HTTP (an emulator on loopback)."""
        return ClientTLS(self) if self.server.startswith("https://") else None

    def auth(self) -> httpx.Auth | None:
        """The httpx auth flow: exec plugin, token file (re-read on 401), token, or basic."""
        if self.exec_auth is not None:
            return self.exec_auth
        if self.user is None:
            return None
        try:
            return client_adapter.user_auth(self.user)
        except ConfigError as e:
            raise errors.ConfigurationError(f"kubeconfig: {e}") from None

    async def login_info(self) -> LoginInfo:
        """The current credentials for Kopf (an exec plugin runs if its token is stale)."""
        if self.tls_server_name:
            logger.warning(
                "Kopf's connection cannot use tls-server-name %r: it checks the certificate"
                " against the server URL's host",
                self.tls_server_name,
            )
        user = self.user or User()
        token = user.token
        expiration = None
        if self.exec_auth is not None:
            token = await self.exec_auth.login_token()
            expiry = self.exec_auth.expiry
            expiration = expiry - EXPIRY_SKEW if expiry is not None else None
        elif self.token_file is not None:
            token = self.token_file.read_text().strip() or None
        c = self.cluster
        return LoginInfo(
            server=self.server,
            namespace=self.namespace,
            insecure=self.insecure,
            ca_path=c.certificate_auth,
            ca_data=c.certificate_auth_data,
            token=token,
            username=user.username,
            password=user.password,
            certificate_path=user.client_cert,
            certificate_data=user.client_cert_data,
            private_key_path=user.client_key,
            private_key_data=user.client_key_data,
            proxy_url=self.proxy_url,
            expiration=expiration,
        )


# ---------------------------------------------------------------- loading


def _read(path: Path) -> Mapping[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        reason = type(e).__name__  # not the YAML error's text: it quotes the file
        raise errors.ConfigurationError(f"kubeconfig {path} is unreadable: {reason}") from None
    if not isinstance(doc, Mapping):
        raise errors.ConfigurationError(f"kubeconfig {path} is not a mapping")
    return doc


def _resolved(kind: str, given: Any, base: Path) -> dict[str, Any]:
    body: dict[str, Any] = dict(given) if isinstance(given, Mapping) else {}
    for key in _PATH_KEYS[kind]:
        if body.get(key) and not Path(str(body[key])).expanduser().is_absolute():
            body[key] = str((base / str(body[key])).resolve())
    spec = body.get("exec")
    if kind == "users" and isinstance(spec, Mapping):
        command = str(spec.get("command") or "")
        if os.sep in command and not Path(command).is_absolute():  # as kubectl: a relative path
            body["exec"] = {**spec, "command": str((base / command).resolve())}
    return body


def merge_kubeconfigs(paths: list[Path]) -> dict[str, Any]:
    """One kubeconfig document from several, by kubectl's rules: files that do not exist are
    skipped, the first ``current-context`` and the first entry of each name win."""
    merged: dict[str, Any] = {"clusters": [], "contexts": [], "users": []}
    inner = {"clusters": "cluster", "contexts": "context", "users": "user"}
    for path in paths:
        if not path.is_file():
            continue
        doc = _read(path)
        if not merged.get("current-context") and doc.get("current-context"):
            merged["current-context"] = str(doc["current-context"])
        for kind, key in inner.items():
            names = {item["name"] for item in merged[kind]}
            for item in doc.get(kind) or []:
                if isinstance(item, Mapping) and item.get("name") not in names:
                    names.add(item.get("name"))
                    body = _resolved(kind, item.get(key), path.parent)
                    merged[kind].append({"name": item.get("name"), key: body})
    return merged


def _from_document(doc: Mapping[str, Any], source: str, context: str | None) -> KubeConfig:
    name = context or doc.get("current-context")
    if not name:
        raise errors.ConfigurationError(f"{source} has no current-context")
    raw_clusters = {c.get("name"): c.get("cluster") or {} for c in doc.get("clusters") or []}
    try:
        single: SingleConfig | None = LightKubeConfig.from_dict(dict(doc)).get(str(name))
    except (ConfigError, KeyError, TypeError, ValueError) as e:
        detail = f"no cluster or user named {e}" if isinstance(e, KeyError) else str(e)
        raise errors.ConfigurationError(f"{source}: {detail}") from None
    assert single is not None
    user = single.user
    if user is not None and user.auth_provider:
        raise errors.ConfigurationError(f"{source}: auth-provider users are unsupported")
    if not single.cluster.server:
        raise errors.ConfigurationError(f"{source}: cluster without a server")
    extra = raw_clusters.get(single.context.cluster) or {}
    return KubeConfig(
        server=single.cluster.server.rstrip("/"),
        namespace=single.namespace,
        source=source,
        cluster=single.cluster,
        user=user,
        tls_server_name=str(extra["tls-server-name"]) if extra.get("tls-server-name") else None,
        proxy_url=str(extra["proxy-url"]) if extra.get("proxy-url") else None,
        exec_auth=ExecCredentialAuth(user.exec) if user and user.exec else None,
    )


def load_kubeconfig(*paths: Path, context: str | None = None) -> KubeConfig:
    """Read one or several kubeconfig files (merged) and resolve the current or given context."""
    existing = [p for p in paths if p.is_file()]
    if not existing:
        raise errors.ConfigurationError(f"no kubeconfig at {os.pathsep.join(map(str, paths))}")
    source = "kubeconfig " + os.pathsep.join(str(p) for p in existing)
    return _from_document(merge_kubeconfigs(existing), source, context)


def in_cluster(directory: Path | None = None) -> bool:
    directory = directory or SERVICE_ACCOUNT_DIR
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (directory / "token").is_file()


def load_incluster(directory: Path | None = None) -> KubeConfig:
    """The pod's service account: token (re-read when refused), CA and namespace files."""
    directory = directory or SERVICE_ACCOUNT_DIR
    if not in_cluster(directory):
        raise errors.ConfigurationError("not running in a cluster (no service account)")
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    host = f"[{host}]" if ":" in host else host
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    ns_file, ca_file = directory / "namespace", directory / "ca.crt"
    return KubeConfig(
        server=f"https://{host}:{port}",
        namespace=ns_file.read_text().strip() if ns_file.is_file() else "default",
        source="in-cluster service account",
        cluster=Cluster(
            server=f"https://{host}:{port}",
            certificate_auth=str(ca_file) if ca_file.is_file() else None,
        ),
        user=User(token_file=str(directory / "token")),
    )


def load_config(path: str | os.PathLike[str] | None = None) -> KubeConfig:
    """An explicit path; else the in-cluster service account; else ``$KUBECONFIG`` (its files
    merged); else ``~/.kube/config``. The order of Kopf's own login handlers."""
    if path is not None:
        return load_kubeconfig(Path(path).expanduser())
    if in_cluster():
        return load_incluster()
    env = [Path(p).expanduser() for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if any(p.is_file() for p in env):
        return load_kubeconfig(*env)
    home = Path("~/.kube/config").expanduser()
    if home.is_file():
        return load_kubeconfig(home)
    raise errors.ConfigurationError("no kubeconfig found and not running in a cluster")
