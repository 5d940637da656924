"""The emulated Kubernetes API (``warmpool.sim.cluster``): in-process for tests, standalone for dev.

Built on KMock's ``KubernetesEmulator`` (see :mod:`warmpool.sim.cluster_api`) with the object
store of :mod:`warmpool.sim.cluster_store`, the CRDs of ``crds/*.warmpool.dev.yaml`` installed.

In tests::

    async with await start_cluster() as cluster:
        cluster.write_kubeconfig(tmp_path / "kubeconfig")
        ...  # talk HTTP to cluster.url, or use cluster.create()/get()/list()

Standalone: ``warmpool-sim cluster --port 8443`` (runs :func:`serve`).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Callable
from importlib import resources as importlib_resources
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp.web
import yaml

from warmpool.sim.cluster_api import ClusterEmulator
from warmpool.sim.cluster_resources import ResourceType, load_crd_dir
from warmpool.sim.cluster_store import CRD_KEY, NS_KEY, ApiError, Event, Store

__all__ = [
    "ApiError",
    "ClusterEmulator",
    "RunningCluster",
    "default_crd_dir",
    "kubeconfig_text",
    "serve",
    "start_cluster",
]

logger = logging.getLogger(__name__)


def default_crd_dir() -> Path:
    """The ``crds/`` folder of the package (``warmpool.crds``)."""
    return Path(str(importlib_resources.files("warmpool.crds")))


def kubeconfig_text(url: str, *, name: str = "warmpool-sim", namespace: str = "default") -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": name, "user": {"token": "warmpool-sim"}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


class RunningCluster:
    """A started emulator on a loopback port; an async context manager (exit stops it)."""

    def __init__(
        self, emulator: ClusterEmulator, runner: aiohttp.web.BaseRunner, host: str, port: int
    ) -> None:
        self.emulator = emulator
        self._runner = runner
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def store(self) -> Store:
        return self.emulator.store

    def write_kubeconfig(self, path: str | Path, *, namespace: str = "default") -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(kubeconfig_text(self.url, namespace=namespace))
        return path

    # --- direct access for tests (same semantics as the HTTP API, without HTTP) -------------

    def resource(self, api_version: str, kind_or_plural: str) -> ResourceType:
        """Find a served kind by ``apiVersion`` and kind (``GpuPool``) or plural (``gpupools``)."""
        group, _, version = api_version.rpartition("/")
        for rt in self.store.types.values():
            if (rt.group, rt.version) == (group, version) and kind_or_plural in (
                rt.kind,
                rt.plural,
            ):
                return rt
        raise KeyError(f"{api_version} {kind_or_plural} is not served")

    def create(self, obj: dict[str, Any], *, keep_status: bool = False) -> dict[str, Any]:
        """Create an object as POST would (422/409 raise :class:`ApiError`).

        ``keep_status=True`` stores the given ``status`` too (a real server drops it on create
        when the status subresource is on; tests sometimes want to start from a status).
        """
        rt = self.resource(obj["apiVersion"], obj["kind"])
        namespace = (obj.get("metadata") or {}).get("namespace")
        return self.store.create(rt, obj, namespace, keep_status=keep_status)

    def create_namespace(self, name: str) -> dict[str, Any]:
        return self.store.create(self.store.types[NS_KEY], {"metadata": {"name": name}})

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The stored object, or ``None`` when it does not exist."""
        try:
            return self.store.get(self.resource(api_version, kind), namespace, name)
        except ApiError:
            return None

    def list(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        return self.store.list(self.resource(api_version, kind), namespace)

    async def wait_for(self, predicate: Callable[[], bool], *, timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds, re-checking on every change of the store.

        Raises :class:`TimeoutError` after ``timeout`` seconds.
        """
        changed = asyncio.Event()

        def on_change(_rt: ResourceType, _event: Event) -> None:
            changed.set()

        self.store.on_change.append(on_change)
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    changed.clear()
                    await changed.wait()
        finally:
            self.store.on_change.remove(on_change)

    def install_crds(self, crd_dir: Path) -> builtins.list[str]:
        """Create the CRDs of a directory (registering their kinds); return their names."""
        crd_type = self.store.types[CRD_KEY]
        names = []
        for crd in load_crd_dir(crd_dir):
            names.append(self.store.create(crd_type, crd)["metadata"]["name"])
        return names

    async def stop(self) -> None:
        self.emulator.stop_watches()
        await self._runner.cleanup()
        await self.emulator.webhooks.aclose()
        await self.emulator.__aexit__(None, None, None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


async def start_cluster(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    crd_dir: Path | None = None,
    request_log_limit: int | None = None,
    history_limit: int | None = 16,
    bearer_tokens: set[str] | None = None,
) -> RunningCluster:
    """Start the emulated API with the CRDs of ``crd_dir`` (default: the package's ``crds/``).

    ``request_log_limit`` bounds KMock's request log (``emulator.requests``) for long runs.
    ``history_limit`` bounds the versions KMock keeps per object (``emulator.objects``).
    ``bearer_tokens``: the tokens let in (401 for others); None lets every request in.
    """
    emulator = ClusterEmulator(request_log_limit=request_log_limit, history_limit=history_limit,
                               bearer_tokens=bearer_tokens)  # fmt: skip
    await emulator.__aenter__()
    server = aiohttp.web.Server(emulator)
    runner = aiohttp.web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        await emulator.__aexit__(None, None, None)
        raise
    actual_port = int(runner.addresses[0][1])
    cluster = RunningCluster(emulator, runner, host, actual_port)
    cluster.install_crds(crd_dir if crd_dir is not None else default_crd_dir())
    return cluster


async def serve(host: str, port: int, *, kubeconfig: str = ".warmpool/kubeconfig") -> None:
    """Run the emulated API until cancelled; write a kubeconfig for it and say how to use it."""
    cluster = await start_cluster(host=host, port=port, request_log_limit=10_000)
    try:
        path = cluster.write_kubeconfig(kubeconfig)
        kinds = sorted({rt.kind for rt in cluster.store.types.values() if rt.custom})
        print(f"emulated Kubernetes API at {cluster.url} (kinds: {', '.join(kinds)})", flush=True)
        print(
            f"kubeconfig written to {path}; try: KUBECONFIG={path} kubectl get warmpool", flush=True
        )
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
    finally:
        await cluster.stop()
