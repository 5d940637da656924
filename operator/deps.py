"""The typed memo shared by every handler: settings, clients and the clock.

Kopf copies the memo for every object it handles; :meth:`Deps.__copy__` returns
the same instance so that clients, caches and ledgers are shared, not cloned.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from warmpool.operator.adapters import artifacts
from warmpool.operator.adapters.artifacts import ArtifactStore
from warmpool.operator.adapters.comfy_clients import ClientPool
from warmpool.operator.adapters.comfy_limits import ComfyLimits
from warmpool.operator.adapters.inventory import Inventory
from warmpool.operator.adapters.kube import USER_AGENT, KubeClient
from warmpool.operator.adapters.secrets import TokenCache
from warmpool.operator.adapters.vastai import VastaiClient
from warmpool.operator.adapters.vastai_models import Offer

if TYPE_CHECKING:
    import httpx

    from warmpool.crds.gpupool import GpuPool
    from warmpool.operator.decisions.budget import FleetSpend
    from warmpool.operator.decisions.drift import BalanceSample, DriftVerdict
    from warmpool.operator.decisions.peering import JobListing
    from warmpool.operator.decisions.scheduler import JobCounts
    from warmpool.operator.settings import OperatorSettings


T = TypeVar("T")


def utcnow() -> datetime:
    """The wall clock, in UTC. Controllers read time only through ``Deps.now``."""
    return datetime.now(UTC)


class JobsView(Protocol):
    """What the pool controller reads of the job dispatcher (``controllers/jobs/loops.py``)."""

    def jobs_on(self, namespace: str, instance: str) -> int: ...
    def job_counts(self, namespace: str, pool: str) -> JobCounts | None: ...
    def arrivals_since(
        self, namespace: str, pool: str, since: datetime
    ) -> list[datetime] | None: ...
    async def stop(self) -> None:
        """Stop dispatching and the runners (their jobs keep their leases)."""
        ...


@dataclass(frozen=True)
class Reservation:
    """An offer being rented right now (between choosing it and writing the status)."""

    machine_id: int
    price_per_hour: float


@dataclass(frozen=True)
class Listing:
    """A pool's GpuInstances as its reconcile last listed them (``controllers/cache.py``):
    the pool's instance mark then, the monotonic time, the bodies."""

    mark: int
    at: float
    bodies: list[dict[str, Any]]


def user_agent(settings: OperatorSettings) -> str:
    """The operator's User-Agent, naming the replica (the audit log shows who wrote)."""
    return f"{USER_AGENT} ({settings.pod_id})"


class NotOpenError(RuntimeError):
    """An adapter was used before :func:`open_deps` (a wiring mistake, not a runtime state)."""


@dataclass(eq=False)
class Deps:
    """Everything a controller needs besides the object it handles.

    The adapters are set once by :func:`open_deps` (the start-up handler); reading one
    before that raises :class:`NotOpenError`.
    """

    settings: OperatorSettings
    http: httpx.AsyncClient
    #: The wall clock (status times) and the monotonic clock (durations, caches).
    now: Callable[[], datetime] = utcnow
    monotonic: Callable[[], float] = time.monotonic
    opened_vastai: VastaiClient | None = None
    opened_inventory: Inventory | None = None
    opened_kube: KubeClient | None = None
    opened_artifacts: ArtifactStore | None = None
    opened_tokens: TokenCache | None = None
    #: One small HTTP pool per ComfyUI base URL (the ComfyUI adapter's).
    comfy: ClientPool = field(default_factory=ClientPool)
    #: The job dispatcher and slot ledger (``controllers/jobs/loops.py``), created by the
    #: jobs start-up handler.
    dispatcher: JobsView | None = None
    #: Set while this replica works; cleared while it stands by for a peer
    #: (``controllers/activity.py``). Always set without peering; with it, clear until
    #: the peering object says this replica works.
    active: asyncio.Event = field(default_factory=asyncio.Event)
    #: The jobs listed on taking over: the dispatcher starts once Kopf's job index caught
    #: up with it (``controllers/jobs/loops.py``), then clears it.
    catch_up: JobListing | None = None
    #: Background tasks owned by the operator (probes, job runners), by key.
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    #: Pools waiting for a reconcile because something changed (event-driven wake-ups).
    wakeups: dict[str, asyncio.Event] = field(default_factory=dict)

    #: Per-pool locks serialising the rentals of one pool (offer choice + budget).
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    #: Per-pool offer search results: (monotonic time, offers).
    offer_cache: dict[str, tuple[float, list[Offer]]] = field(default_factory=dict)

    #: Rentals being made right now, per pool then instance.
    reservations: dict[str, dict[str, Reservation]] = field(default_factory=dict)
    #: Per instance ("ns/name"): the resourceVersion this process last wrote or read (its
    #: daemon uses the live body, not a fresh read, while the body shows this version).
    seen_versions: dict[str, str] = field(default_factory=dict)
    #: Per instance ("ns/name"): when this process last probed its ComfyUI.
    probed_at: dict[str, datetime] = field(default_factory=dict)
    #: Pools as their last watch event showed them, parsed (``controllers/cache.py``).
    pool_models: dict[tuple[str, str], GpuPool] = field(default_factory=dict)
    #: Per instance (namespace, name): what the pool can see of it, as last seen; per pool
    #: (namespace, name): how many changes of its instances were seen, its last listing
    #: and when its status last wrote a figure that moves with the clock (monotonic).
    instance_seen: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    instance_marks: dict[tuple[str, str], int] = field(default_factory=dict)
    pool_listings: dict[tuple[str, str], Listing] = field(default_factory=dict)
    pool_status_at: dict[tuple[str, str], float] = field(default_factory=dict)
    #: Orphaned rentals (contract id) and when this process first saw them (monotonic).
    orphans_seen: dict[int, float] = field(default_factory=dict)
    #: Every GpuInstance's uid as last listed by the orphan sweep: (monotonic time, uids).
    known_uids: tuple[float, set[str]] | None = None
    #: Every pool's spend against the operator-wide cap (``controllers/spending.py``):
    #: (monotonic time counted, figure), and the lock that lets one count serve all pools.
    fleet_spend: tuple[float, FleetSpend] | None = None
    fleet_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: The Vast.ai credit against the counted spend (``controllers/balance.py``).
    balance_samples: list[BalanceSample] = field(default_factory=list)
    drift: DriftVerdict | None = None
    #: One credit check at a time when machines are seen stopped by Vast.ai (``balance``).
    credit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Per pool ("ns/name"): when its next time-bound decision falls due (the cold tier's
    #: resume timeouts and maxAge); its reconcile loop wakes up then.
    deadlines: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.settings.peering:
            self.active.set()

    @property
    def vastai(self) -> VastaiClient:
        return _opened(self.opened_vastai, "vastai")

    @property
    def inventory(self) -> Inventory:
        return _opened(self.opened_inventory, "inventory")

    @property
    def kube(self) -> KubeClient:
        return _opened(self.opened_kube, "kube")

    @property
    def artifacts(self) -> ArtifactStore:
        return _opened(self.opened_artifacts, "artifacts")

    @artifacts.setter
    def artifacts(self, store: ArtifactStore | None) -> None:
        self.opened_artifacts = store

    @property
    def tokens(self) -> TokenCache:
        return _opened(self.opened_tokens, "tokens")

    def lock(self, namespace: str, pool: str) -> asyncio.Lock:
        """The lock serialising rentals of one pool."""
        return self.locks.setdefault(f"{namespace}/{pool}", asyncio.Lock())

    def __copy__(self) -> Deps:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Deps:
        return self

    def wake(self, namespace: str, pool: str) -> None:
        """Ask the pool's reconcile loop to run now."""
        event = self.wakeups.setdefault(f"{namespace}/{pool}", asyncio.Event())
        event.set()


def _opened(client: T | None, name: str) -> T:
    if client is None:
        raise NotOpenError(f"the {name} adapter is used before open_deps()")
    return client


async def open_deps(deps: Deps) -> None:
    """Create the clients in the memo (idempotent)."""
    s = deps.settings
    deps.comfy.limits = ComfyLimits.from_settings(s)
    deps.comfy.allow_http = s.comfy_allow_plain_http
    if deps.opened_vastai is None:
        deps.opened_vastai = VastaiClient.from_settings(deps.http, s)
    if deps.opened_inventory is None:
        deps.opened_inventory = Inventory(deps.opened_vastai, refresh_seconds=s.inventory_refresh)
    if deps.opened_kube is None:
        deps.opened_kube = KubeClient.from_config(user_agent=user_agent(s))
    if deps.opened_tokens is None:
        deps.opened_tokens = TokenCache(deps.opened_kube)
    if deps.opened_artifacts is None:  # job outputs (controllers/jobs/outputs.py)
        deps.opened_artifacts = artifacts.from_settings(s)


async def cancel_tasks(deps: Deps) -> None:
    """Cancel the operator's background tasks (probes, job runners) and wait for them.

    Before any client they use is closed: a job runner cancelled keeps its job's lease
    for the next process, while one whose client was closed under it takes that for an
    error and fails the job over.
    """
    tasks = list(deps.tasks.values())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    deps.tasks.clear()


async def close_deps(deps: Deps) -> None:
    """Close what :func:`open_deps` opened."""
    await cancel_tasks(deps)
    await deps.comfy.aclose()
    if deps.opened_inventory is not None:
        await deps.opened_inventory.aclose()
    if deps.opened_kube is not None:
        await deps.opened_kube.close()
    await deps.http.aclose()
