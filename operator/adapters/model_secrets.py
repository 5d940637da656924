"""Bearer tokens for model downloads, read from the Secrets a pool's models name.

The values go into the create request's environment and nowhere else: never logged,
never in an event, a status or an error message (errors name the Secret and key only).
"""

from __future__ import annotations

import base64
import binascii

from warmpool.crds.gpupool import SecretKeyRef
from warmpool.operator.adapters import kube


class ModelTokenMissingError(LookupError):
    """A Secret (or its key) named by ``models[].tokenSecret`` does not exist or is empty."""


async def read_tokens(
    client: kube.KubeClient, namespace: str, refs: dict[str, SecretKeyRef]
) -> dict[str, str]:
    """Environment variable → token, for each ``tokenSecret`` reference."""
    tokens: dict[str, str] = {}
    for variable, ref in refs.items():
        secret = await client.get(kube.SECRETS, ref.name, namespace)
        if secret is None:
            raise ModelTokenMissingError(f"Secret {namespace}/{ref.name} not found")
        raw = (secret.get("data") or {}).get(ref.key)
        if not raw:
            raise ModelTokenMissingError(f"Secret {namespace}/{ref.name} has no key {ref.key!r}")
        try:
            value = base64.b64decode(raw, validate=True).decode().strip()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ModelTokenMissingError(
                f"Secret {namespace}/{ref.name} key {ref.key!r} is not base64 text"
            ) from exc
        if not value:
            raise ModelTokenMissingError(f"Secret {namespace}/{ref.name} key {ref.key!r} is empty")
        tokens[variable] = value
    return tokens
