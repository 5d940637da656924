"""The per-instance ComfyUI token, kept in a Secret owned by its GpuInstance.

The only place that names, creates and decodes the token Secret.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from warmpool.crds.common import API_VERSION, owner_reference
from warmpool.operator import errors
from warmpool.operator.adapters import kube


def token_secret_name(instance: str) -> str:
    """The name of an instance's token Secret."""
    return f"{instance}-comfy-token"


def _decode(secret: dict[str, Any]) -> str:
    return base64.b64decode(secret["data"]["token"]).decode()


async def read_token(
    client: kube.KubeClient, namespace: str, instance: str, *, secret: str = ""
) -> str | None:
    """The instance's token; None when its Secret does not exist."""
    found = await client.get(kube.SECRETS, secret or token_secret_name(instance), namespace)
    return None if found is None else _decode(found)


async def ensure_token(client: kube.KubeClient, namespace: str, instance: str, uid: str) -> str:
    """The instance's token, created (with a Secret owned by the GpuInstance) if missing."""
    name = token_secret_name(instance)
    existing = await client.get(kube.SECRETS, name, namespace)
    if existing is not None:
        return _decode(existing)
    token = secrets.token_urlsafe(32)
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
        "data": {"token": base64.b64encode(token.encode()).decode()},
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

    async def get(self, namespace: str, instance: str, *, secret: str = "") -> str | None:
        """The instance's token (cached once found); None while its Secret is missing."""
        key = (namespace, instance)
        if key not in self._tokens:
            token = await read_token(self._client, namespace, instance, secret=secret)
            if token is None:
                return None
            self._tokens[key] = token
        return self._tokens[key]
