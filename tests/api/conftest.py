"""Fixtures of the studio tests (T5): the app over ASGI against the emulated API."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from PIL import Image

from warmpool.api.app import create_app
from warmpool.api.settings import StudioSettings
from warmpool.api.uploads import ArtifactStore
from warmpool.operator.adapters import kube
from warmpool.sim.cluster import RunningCluster

NS = "default"

POOL = {
    "apiVersion": "warmpool.dev/v1alpha1",
    "kind": "GpuPool",
    "metadata": {"name": "sdxl", "namespace": NS},
    "spec": {
        "replicas": 1,
        "offer": {"maxPricePerHour": 0.6},
        "template": {
            "models": [
                {"folder": "checkpoints", "file": "sd_xl_base_1.0.safetensors"},
                {"folder": "checkpoints", "file": "juggernaut.safetensors"},
            ]
        },
    },
}


def png_bytes(size: tuple[int, int] = (64, 48), color: str = "purple") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def open_test_store(url: str) -> ArtifactStore:
    from warmpool.operator.adapters import artifacts  # type: ignore[attr-defined,unused-ignore]

    store: ArtifactStore = artifacts.open_store(url)
    return store


@pytest.fixture
async def kube_client(cluster: RunningCluster) -> AsyncIterator[kube.KubeClient]:
    async with kube.KubeClient(cluster.url) as client:
        await client.create(kube.GPUPOOLS, POOL, NS)
        yield client


class MemoryStore:
    """Stand-in until the artifacts adapter lands."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[bytes, str]] = {}

    async def put_bytes(self, key: str, data: bytes, *, content_type: str) -> object:
        self.data[key] = (data, content_type)
        return None

    async def get_bytes(self, key: str) -> bytes:
        from warmpool.operator import errors

        if key not in self.data:
            raise errors.ArtifactNotFoundError(key)
        return self.data[key][0]

    async def get_stream(self, key: str) -> AsyncIterator[bytes]:
        data = await self.get_bytes(key)
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]


@pytest.fixture
def store(tmp_path: Any) -> ArtifactStore:
    try:
        return open_test_store(f"file://{tmp_path}/artifacts")
    except ImportError:
        return MemoryStore()


Studio = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def studio(
    kube_client: kube.KubeClient, store: ArtifactStore
) -> AsyncIterator[Callable[..., Awaitable[httpx.AsyncClient]]]:
    """``await studio(**settings)`` → an httpx client on a running app (lifespan entered)."""
    stack: list[Any] = []

    async def make(
        client_addr: tuple[str, int] = ("127.0.0.1", 50000), **overrides: Any
    ) -> httpx.AsyncClient:
        settings = StudioSettings(_env_file=None, **overrides)  # type: ignore[call-arg]
        app = create_app(settings, kube=kube_client, store=store)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stack.append(lifespan)
        transport = httpx.ASGITransport(app=app, client=client_addr)
        http = httpx.AsyncClient(transport=transport, base_url="http://studio.test")
        stack.append(http)
        http.app = app  # type: ignore[attr-defined]
        return http

    yield make
    for item in reversed(stack):
        if isinstance(item, httpx.AsyncClient):
            await item.aclose()
        else:
            await item.__aexit__(None, None, None)


async def set_status(client: kube.KubeClient, name: str, status: dict[str, Any]) -> None:
    await client.patch(kube.GENERATIONJOBS, name, NS, {"status": status}, subresource="status")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
