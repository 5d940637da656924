"""The progress hub: ONE Kubernetes watch on GenerationJobs feeding every SSE listener.

A browser that opens a progress stream subscribes to a job name and gets its own
bounded queue; the hub's single watch task puts each job change into the queues
of that job's listeners. A slow listener never blocks the others: when its queue
is full the oldest snapshot is dropped (progress is a state, the newest wins).

The watch is kept alive forever: it lists to get a ``resourceVersion``, watches
from there, re-lists on 410 Gone (delivering the listed state to listeners, so a
gap never loses a terminal phase), and backs off on other failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from warmpool.crds.generationjob import TERMINAL_PHASES
from warmpool.operator import errors
from warmpool.operator.adapters import kube

logger = logging.getLogger(__name__)

QUEUE_SIZE = 64
GONE_KEPT = 10000


@dataclass
class JobEvent:
    """One observed change of a job: the watch event type and the object.

    ``memo`` lets the listeners of one job compute what they send once per change,
    not once per listener (500 listeners parse one object, not 500).
    """

    type: str  # ADDED, MODIFIED, DELETED
    object: dict[str, Any]
    memo: dict[str, Any] = field(default_factory=dict)


class Listener:
    """One subscriber's queue."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.queue: asyncio.Queue[JobEvent] = asyncio.Queue(maxsize=QUEUE_SIZE)

    def offer(self, event: JobEvent) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(event)


class Hub:
    """Fan-out of one GenerationJob watch to per-listener queues."""

    def __init__(
        self,
        client: kube.KubeClient,
        namespace: str,
        *,
        watch_timeout: int = 290,
        backoff: float = 1.0,
        on_change: Callable[[JobEvent], None] | None = None,
    ) -> None:
        self._kube = client
        #: Called with every change (the records' usage ledger); must not block.
        self._on_change = on_change
        self._namespace = namespace
        self._watch_timeout = watch_timeout
        self._backoff = backoff
        self._listeners: dict[str, set[Listener]] = {}
        self._task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()
        self.watches_started = 0
        #: name → (owner, phase) of every job seen: per-user counts without a list call.
        self.jobs: dict[str, tuple[str, str]] = {}
        self._unfinished: dict[str, set[str]] = {}
        #: Names of jobs seen deleted, the newest :data:`GONE_KEPT` (for :meth:`seen`).
        self._gone: dict[str, None] = {}
        #: Jobs this replica created while a (re-)list is in flight: the list may predate
        #: them, and the watch from its version reports them a moment later.
        self._created_while_listing: dict[str, dict[str, Any]] | None = None
        #: The newest object of each job somebody listens to, and the one read in flight
        #: per such job: 500 listeners opening at once cost one API read, not 500.
        self._latest: dict[str, dict[str, Any]] = {}
        self._reads: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        self.reads = 0

    @property
    def listener_count(self) -> int:
        return sum(len(s) for s in self._listeners.values())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="warmpool-studio-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.asynccontextmanager
    async def subscribe(self, name: str) -> AsyncIterator[Listener]:
        """A queue of the named job's changes for as long as the context is open."""
        listener = self.listen(name)
        try:
            yield listener
        finally:
            self.unlisten(listener)

    def listen(self, name: str) -> Listener:
        """:meth:`subscribe` without the context: end it with :meth:`unlisten`."""
        listener = Listener(name)
        self._listeners.setdefault(name, set()).add(listener)
        return listener

    def unlisten(self, listener: Listener) -> None:
        group = self._listeners.get(listener.name)
        if group is not None:
            group.discard(listener)
            if not group:
                del self._listeners[listener.name]
                self._latest.pop(listener.name, None)
                self._reads.pop(listener.name, None)

    def latest(self, name: str) -> dict[str, Any] | None:
        """The newest object published for a job somebody listens to (None: not yet read,
        or deleted)."""
        return self._latest.get(name)

    def owner(self, name: str) -> str | None:
        """The job's owner as the synced watch last saw it; None when unknown."""
        if not self.synced.is_set():
            return None
        seen = self.jobs.get(name)
        return seen[0] if seen is not None else None

    async def current(self, name: str) -> dict[str, Any] | None:
        """The job now, for a caller subscribed to it (inside :meth:`subscribe`).

        While anybody listens, every change the watch publishes is kept here, so a new
        listener takes that copy; the first ones share one read started after they
        subscribed. Either way nothing published after the subscription is missed: it is
        in the listener's queue.
        """
        if name not in self._listeners:
            raise RuntimeError("Hub.current() is for subscribed callers")
        if name in self._latest:
            return self._latest[name]
        flight = self._reads.get(name)
        if flight is None:
            flight = self._reads[name] = asyncio.ensure_future(self._read(name))
        obj = await asyncio.shield(flight)
        return self._latest.get(name, obj)

    async def _read(self, name: str) -> dict[str, Any] | None:
        self.reads += 1
        try:
            obj = await self._kube.get(kube.GENERATIONJOBS, name, self._namespace)
        finally:
            if self._reads.get(name) is asyncio.current_task():
                del self._reads[name]
        if obj is not None and name in self._listeners:
            self._latest.setdefault(name, obj)
        return obj

    def created(self, obj: dict[str, Any]) -> None:
        """A job this replica just created: counted at once, before the watch reports it,
        so a burst of submissions is counted exactly (even across a re-list)."""
        self.note(obj)
        if self._created_while_listing is not None:
            self._created_while_listing[str(obj["metadata"]["name"])] = obj

    def note(self, obj: dict[str, Any], *, deleted: bool = False) -> None:
        """Record a job's owner and phase."""
        name = str((obj.get("metadata") or {}).get("name") or "")
        before = self.jobs.pop(name, None)
        if before is not None:
            self._unfinished.get(before[0], set()).discard(name)
        if deleted:
            self._gone[name] = None
            if len(self._gone) > GONE_KEPT:
                del self._gone[next(iter(self._gone))]
        else:
            owner = str((obj.get("spec") or {}).get("owner") or "")
            phase = str((obj.get("status") or {}).get("phase") or "Queued")
            self.jobs[name] = (owner, phase)
            if phase not in TERMINAL_PHASES:
                self._unfinished.setdefault(owner, set()).add(name)

    def forget_all(self) -> None:
        """Before a re-list: the listed state replaces everything seen."""
        self.jobs.clear()
        self._unfinished.clear()

    def unfinished_names(self, owner: str) -> Collection[str]:
        """Jobs of ``owner`` not in a terminal phase, as last seen by the watch (kept per
        owner as changes arrive: no walk over every job per submission). A live view:
        read it at once, do not keep it."""
        return self._unfinished.get(owner, ())

    def seen(self, name: str) -> bool:
        """Whether the watch has seen the job at all (in any phase, or deleted)."""
        return name in self.jobs or name in self._gone

    def publish(self, event: JobEvent) -> None:
        self.note(event.object, deleted=event.type == "DELETED")
        if self._on_change is not None:
            self._on_change(event)
        name = str((event.object.get("metadata") or {}).get("name") or "")
        if name in self._listeners:
            if event.type == "DELETED":
                self._latest.pop(name, None)
            else:
                self._latest[name] = event.object
        for listener in tuple(self._listeners.get(name, ())):
            listener.offer(event)

    async def _run(self) -> None:
        version = ""
        while True:
            try:
                if not version:
                    created: dict[str, dict[str, Any]] = {}
                    self._created_while_listing = created
                    try:
                        items, version = await self._kube.list_with_version(
                            kube.GENERATIONJOBS, self._namespace
                        )
                    finally:
                        self._created_while_listing = None
                    self.forget_all()
                    for item in items:
                        self.publish(JobEvent("MODIFIED", item))
                        created.pop(str((item.get("metadata") or {}).get("name") or ""), None)
                    for obj in created.values():  # newer than the list: kept counted
                        self.note(obj)
                    self.synced.set()
                self.watches_started += 1
                async for event in self._kube.watch(
                    kube.GENERATIONJOBS,
                    self._namespace,
                    resource_version=version,
                    timeout_seconds=self._watch_timeout,
                ):
                    rv = (event.object.get("metadata") or {}).get("resourceVersion")
                    if rv:
                        version = str(rv)
                    if event.type in ("ADDED", "MODIFIED", "DELETED"):
                        self.publish(JobEvent(event.type, event.object))
            except errors.KubeGoneError:
                version = ""
            except errors.KubeError as e:
                logger.warning("job watch failed, retrying: %s", e)
                version = ""
                await asyncio.sleep(self._backoff)
