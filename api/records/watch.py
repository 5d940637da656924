"""One shared list+watch per kind, kept alive forever, feeding a cache and callbacks.

The admin console's fleet view (GpuPools, GpuInstances) and the ingestion of the
operator's Events use it the way the studio's :class:`~warmpool.api.hub.Hub` watches
GenerationJobs: list for a ``resourceVersion``, watch from there, re-list on 410 Gone,
back off on other failures. Every SSE listener shares the one watch per kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from warmpool.operator import errors
from warmpool.operator.adapters import kube

logger = logging.getLogger(__name__)

Callback = Callable[[str, dict[str, Any]], Awaitable[None]]
Lister = Callable[[], Awaitable[tuple[list[dict[str, Any]], str]]]
Watcher = Callable[[str, int], AsyncIterator[kube.WatchEvent]]


def source(
    client: kube.KubeClient, res: kube.Resource, namespace: str
) -> tuple[str, Lister, Watcher]:
    """List and watch calls of one kind in one namespace (for :class:`SharedWatch`)."""

    async def list_all() -> tuple[list[dict[str, Any]], str]:
        return await client.list_with_version(res, namespace)

    def watch(version: str, timeout: int) -> AsyncIterator[kube.WatchEvent]:
        return client.watch(res, namespace, resource_version=version, timeout_seconds=timeout)

    return res.kind, list_all, watch


class SharedWatch:
    """The objects of one kind in one namespace, as last seen, plus change callbacks."""

    def __init__(
        self,
        of: tuple[str, Lister, Watcher],
        *,
        on_change: Callback | None = None,
        cache: bool = True,
        watch_timeout: int = 290,
        backoff: float = 1.0,
    ) -> None:
        self.kind, self._list, self._watch = of
        self._on_change = on_change
        self._cache = cache
        self._watch_timeout = watch_timeout
        self._backoff = backoff
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._waiters: set[asyncio.Event] = set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"warmpool-watch-{self.kind}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.asynccontextmanager
    async def changes(self) -> AsyncIterator[asyncio.Event]:
        """An event set on every change, for as long as the context is open."""
        flag = asyncio.Event()
        self._waiters.add(flag)
        try:
            yield flag
        finally:
            self._waiters.discard(flag)

    async def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        name = str((obj.get("metadata") or {}).get("name") or "")
        if kind == "DELETED":
            self.objects.pop(name, None)
        elif self._cache:
            self.objects[name] = obj
        for flag in self._waiters:
            flag.set()
        if self._on_change is not None:
            try:
                await self._on_change(kind, obj)
            except Exception:  # a record that failed must not stop the watch
                logger.exception("handling a %s change failed", self.kind)

    async def _run(self) -> None:
        version = ""
        while True:
            try:
                if not version:
                    items, version = await self._list()
                    gone = set(self.objects) - {str(i["metadata"]["name"]) for i in items}
                    for name in gone:
                        await self._apply("DELETED", self.objects[name])
                    for item in items:
                        await self._apply("MODIFIED", item)
                    self.synced.set()
                async for event in self._watch(version, self._watch_timeout):
                    rv = (event.object.get("metadata") or {}).get("resourceVersion")
                    if rv:
                        version = str(rv)
                    if event.type in ("ADDED", "MODIFIED", "DELETED"):
                        await self._apply(event.type, event.object)
            except errors.KubeGoneError:
                version = ""
            except errors.KubeError as e:
                logger.warning("%s watch failed, retrying: %s", self.kind, e)
                version = ""
                await asyncio.sleep(self._backoff)
