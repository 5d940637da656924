"""Gallery test data: outputs and records written as the operator writes them, and
token-mode users."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

from warmpool.operator.adapters import artifacts, kube

NS = "default"
T0 = datetime(2030, 1, 1, tzinfo=UTC)
TOKENS = {
    "ada": "tok-ada-0123456789abcdef0123456789abcdef",
    "bob": "tok-bob-fedcba9876543210fedcba9876543210",
}


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


async def make_tokens(client: kube.KubeClient) -> None:
    data = {u: base64.b64encode(t.encode()).decode() for u, t in TOKENS.items()}
    secret = {"metadata": {"name": "warmpool-studio-tokens"}, "type": "Opaque", "data": data}
    await client.create(kube.SECRETS, secret, NS)


async def put_output(
    store: artifacts.ArtifactStore,
    job: str,
    index: int,
    data: bytes,
    *,
    owner: str = "local",
    created: datetime = T0,
    **fields: Any,
) -> str:
    """An output and its record as the operator writes them."""
    key = artifacts.output_key(NS, job, index, "png")
    await store.put_bytes(key, data, content_type="image/png")
    record = artifacts.OutputRecord(
        key=key, namespace=NS, job=job, index=index, owner=owner, created=created,
        content_type="image/png", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        width=64, height=48, **fields,
    )  # fmt: skip
    await store.put_record(record)
    return key
