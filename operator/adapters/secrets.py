"""Tokens kept in Secrets: the per-instance ComfyUI token (a Secret owned by its
GpuInstance) and the bearer tokens of model downloads (Secrets the pool's
``models[].tokenSecret`` name).

The only place that names, creates and decodes these Secrets. The values go into
requests and the create request's environment only: never logged, never in an event,
a status or an error message (errors name the Secret and key).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from warmpool.crds.common import API_VERSION, owner_reference
from warmpool.crds.gpupool import SecretKeyRef
from warmpool.operator import errors
from warmpool.operator.adapters import kube, machine_tls

#: Keys of the instance Secret holding its TLS pair (the ``kubernetes.io/tls`` names).
CERT_KEY = "tls.crt"
KEY_KEY = "tls.key"


def token_secret_name(instance: str) -> str:
    """The name of an instance's token Secret."""
    return f"{instance}-comfy-token"


def _value(secret: dict[str, Any], key: str = "token") -> str | None:
    """The text under ``key`` of a Secret's data; None when absent or not base64 text."""
    raw = (secret.get("data") or {}).get(key)
    if not raw:
        return None
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _decode(secret: dict[str, Any]) -> str:
    value = _value(secret)
    if value is None:
        raise errors.ConfigurationError(
            f"Secret {secret.get('metadata', {}).get('name', '?')} has no readable token"
        )
    return value


async def read_token(
    client: kube.KubeClient, namespace: str, instance: str, *, secret: str = ""
) -> str | None:
    """The instance's token; None when its Secret does not exist."""
    found = await client.get(kube.SECRETS, secret or token_secret_name(instance), namespace)
    return None if found is None else _decode(found)


async def read_identity(
    client: kube.KubeClient, namespace: str, instance: str, *, secret: str = ""
) -> machine_tls.Identity | None:
    """The instance's TLS pair; None when its Secret (or the pair) does not exist."""
    found = await client.get(kube.SECRETS, secret or token_secret_name(instance), namespace)
    if found is None:
        return None
    cert, key = _value(found, CERT_KEY), _value(found, KEY_KEY)
    return machine_tls.Identity(cert, key) if cert and key else None


async def ensure_token(client: kube.KubeClient, namespace: str, instance: str, uid: str) -> str:
    """The instance's token, created (with a Secret owned by the GpuInstance) if missing;
    a new Secret also holds the instance's TLS pair (:func:`machine_tls.new_identity`)."""
    name = token_secret_name(instance)
    existing = await client.get(kube.SECRETS, name, namespace)
    if existing is not None:
        return _decode(existing)
    token = secrets.token_urlsafe(32)
    identity = machine_tls.new_identity(instance)
    owner = {"apiVersion": API_VERSION, "kind": "GpuInstance",
             "metadata": {"name": instance, "uid": uid}}  # fmt: skip
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "warmpool"},
            "ownerReferences": [owner_reference(owner)],
        },
        "type": "Opaque",
        "data": {
            "token": base64.b64encode(token.encode()).decode(),
            CERT_KEY: base64.b64encode(identity.cert_pem.encode()).decode(),
            KEY_KEY: base64.b64encode(identity.key_pem.encode()).decode(),
        },
    }
    try:
        await client.create(kube.SECRETS, secret, namespace)
    except errors.KubeConflictError:
        again = await client.get(kube.SECRETS, name, namespace)
        if again is None:
            raise errors.KubeUnavailableError(
                "token Secret vanished while creating it", retry_after=2
            ) from None
        return _decode(again)
    return token


class TokenCache:
    """Instance tokens read once per process (a token never changes for an instance)."""

    def __init__(self, client: kube.KubeClient) -> None:
        self._client = client
        self._tokens: dict[tuple[str, str], str] = {}
        self._pins: dict[tuple[str, str], str] = {}

    async def get(self, namespace: str, instance: str, *, secret: str = "") -> str | None:
        """The instance's token (cached once found); None while its Secret is missing."""
        key = (namespace, instance)
        if key not in self._tokens:
            token = await read_token(self._client, namespace, instance, secret=secret)
            if token is None:
                return None
            self._tokens[key] = token
        return self._tokens[key]

    async def pin(self, namespace: str, instance: str, *, secret: str = "") -> str | None:
        """The instance's pinned certificate (cached once found); None without one."""
        key = (namespace, instance)
        if key not in self._pins:
            identity = await read_identity(self._client, namespace, instance, secret=secret)
            if identity is None:
                return None
            self._pins[key] = identity.cert_pem
        return self._pins[key]


async def read_model_tokens(
    client: kube.KubeClient, namespace: str, refs: dict[str, SecretKeyRef]
) -> dict[str, str]:
    """Environment variable → token, for each ``models[].tokenSecret`` reference."""
    tokens: dict[str, str] = {}
    for variable, ref in refs.items():
        secret = await client.get(kube.SECRETS, ref.name, namespace)
        if secret is None:
            raise errors.ModelTokenMissingError(f"Secret {namespace}/{ref.name} not found")
        value = (_value(secret, ref.key) or "").strip()
        if not value:
            raise errors.ModelTokenMissingError(
                f"Secret {namespace}/{ref.name} key {ref.key!r} is missing, empty or not text"
            )
        tokens[variable] = value
    return tokens
