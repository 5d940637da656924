"""Fixtures of the studio tests (T5): the app over ASGI against the emulated API."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from PIL import Image

from warmpool.api.app import create_app
from warmpool.api.settings import StudioSettings
from warmpool.operator.adapters import artifacts, kube
from warmpool.sim.cluster import RunningCluster, start_cluster

T = TypeVar("T")

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


@pytest.fixture
async def kube_client(cluster: RunningCluster) -> AsyncIterator[kube.KubeClient]:
    async with kube.KubeClient(cluster.url) as client:
        await client.create(kube.GPUPOOLS, POOL, NS)
        yield client


@pytest.fixture
def store(tmp_path: Any) -> artifacts.ArtifactStore:
    return artifacts.open_store(f"file://{tmp_path}/artifacts")


Studio = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def studio(
    kube_client: kube.KubeClient, store: artifacts.ArtifactStore, tmp_path: Any
) -> AsyncIterator[Callable[..., Awaitable[httpx.AsyncClient]]]:
    """``await studio(**settings)`` → an httpx client on a running app (lifespan entered)."""
    stack: list[Any] = []

    async def make(
        client_addr: tuple[str, int] = ("127.0.0.1", 50000), **overrides: Any
    ) -> httpx.AsyncClient:
        # Each app its own records database unless the test names one.
        overrides.setdefault(
            "studio_records_url", f"sqlite+aiosqlite:///{tmp_path}/r{len(stack)}.db"
        )
        overrides.setdefault("studio_auth", "none")  # the code default is token
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


class Driver:
    """What the operator would do, done by hand: status patches and stored outputs."""

    def __init__(self, client: kube.KubeClient, store: artifacts.ArtifactStore) -> None:
        self.kube = client
        self.store = store

    async def set_status(self, name: str, status: dict[str, Any]) -> None:
        patch = {"status": status}
        await self.kube.patch(kube.GENERATIONJOBS, name, NS, patch, subresource="status")

    async def succeed(
        self,
        name: str,
        *images: bytes,
        content_type: str = "image/png",
        created: datetime | None = None,
        references: dict[str, Any] | None = None,
    ) -> None:
        """Store the images as the job's outputs with their metadata records (as the
        operator does) and mark it Succeeded (``references``: its ``status.references``)."""
        obj = await self.kube.get(kube.GENERATIONJOBS, name, NS)
        assert obj is not None, name
        spec = obj["spec"]
        outputs = []
        for i, data in enumerate(images):
            key = f"outputs/{NS}/{name}/{i}.png"
            await self.store.put_bytes(key, data, content_type=content_type)
            output = {
                "key": key,
                "contentType": content_type,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "width": 64,
                "height": 48,
            }
            outputs.append(output)
            record = {
                **output,
                "namespace": NS,
                "job": name,
                "index": i,
                "kind": spec.get("kind", "image"),
                "owner": spec.get("owner"),
                "muse": spec.get("museRef"),
                "prompt": spec.get("prompt", ""),
                "tags": spec.get("tags", []),
                "created": created or datetime.now(UTC),
                "references": references,
            }
            await self.store.put_record(artifacts.OutputRecord.model_validate(record))
        status = {"phase": "Succeeded", "finishedAt": "2030-01-01T00:00:00Z", "outputs": outputs}
        if references is not None:
            status["references"] = references
        await self.set_status(name, status)

    @staticmethod
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()


@pytest.fixture
def drive(kube_client: kube.KubeClient, store: artifacts.ArtifactStore) -> Driver:
    return Driver(kube_client, store)


@pytest.fixture
def png() -> Callable[..., bytes]:
    return png_bytes


class Served:
    """The studio under uvicorn on a loopback port, with its own emulated API, in a thread.

    For synchronous clients (schemathesis, Playwright's sync API): the stack's event loop
    runs in the thread; :meth:`run` executes a coroutine there (e.g. a :class:`Driver` step).
    """

    def __init__(self, **overrides: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="studio-stack")
        self.thread.start()
        self.url = ""
        self.run(self._start(overrides))

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self, overrides: dict[str, Any]) -> None:
        self.cluster = await start_cluster()
        self.kube = kube.KubeClient(self.cluster.url)
        await self.kube.create(kube.GPUPOOLS, POOL, NS)
        self.tmp = tempfile.TemporaryDirectory(prefix="warmpool-studio-")
        self.store = artifacts.open_store(f"file://{self.tmp.name}/artifacts")
        self.drive = Driver(self.kube, self.store)
        overrides.setdefault(
            "studio_records_url", f"sqlite+aiosqlite:///{self.tmp.name}/records.db"
        )
        overrides.setdefault("studio_auth", "none")  # the code default is token
        settings = StudioSettings(_env_file=None, **overrides)  # type: ignore[call-arg]
        app = create_app(settings, kube=self.kube, store=self.store)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve())
        deadline = self.loop.time() + 20
        while not self.server.started:
            if self.task.done() or self.loop.time() > deadline:
                raise RuntimeError("the studio did not start")
            await asyncio.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, timeout=15)
        await self.kube.close()
        await self.cluster.stop()

    def close(self) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()
            self.tmp.cleanup()


@pytest.fixture
def served() -> Iterator[Callable[..., Served]]:
    """``served(**settings)`` → a running :class:`Served` stack (stopped after the test)."""
    stacks: list[Served] = []

    def make(**overrides: Any) -> Served:
        stacks.append(Served(**overrides))
        return stacks[-1]

    yield make
    for stack in stacks:
        stack.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Debian Chromium for the browser tests (each skips without it)."""
    from browser import ARGS, CHROMIUM
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
