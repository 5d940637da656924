"""The typed memo shared by every handler: settings, clients and the clock.

Kopf copies the memo for every object it handles; :meth:`Deps.__copy__` returns
the same instance so that clients, caches and ledgers are shared, not cloned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from warmpool.operator.adapters import artifacts, inventory, kube, vastai

if TYPE_CHECKING:
    import httpx

    from warmpool.operator.settings import OperatorSettings


def utcnow() -> datetime:
    """The wall clock, in UTC. Handlers read time only through ``Deps.now``."""
    return datetime.now(UTC)


@dataclass(eq=False)
class Deps:
    """Everything a handler needs besides the object it handles."""

    settings: OperatorSettings
    http: httpx.AsyncClient
    now: Callable[[], datetime] = utcnow
    #: Set once the adapters are open (startup handler).
    vastai: Any = None
    inventory: Any = None
    kube: Any = None
    artifacts: Any = None
    #: The job dispatcher and slot ledger (``controllers/jobs/loops.py``), created by the
    #: jobs start-up handler.
    dispatcher: Any = None
    #: Background tasks owned by the operator (probes, job runners), by key.
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    #: Pools waiting for a reconcile because something changed (event-driven wake-ups).
    wakeups: dict[str, asyncio.Event] = field(default_factory=dict)

    #: Per-pool locks serialising the rentals of one pool (offer choice + budget).
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    #: Per-pool offer search results: (monotonic time, offers).
    offer_cache: dict[str, tuple[float, list[Any]]] = field(default_factory=dict)

    #: Rentals being made right now, per pool then instance (``renting.Reservation``).
    reservations: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Per instance ("ns/name"): the rental's ``actual_status`` and when this process
    #: first saw it so (the offline grace of the liveness decision).
    rental_status: dict[str, tuple[str | None, datetime]] = field(default_factory=dict)
    #: Orphaned rentals (contract id) and when this process first saw them (monotonic).
    orphans_seen: dict[int, float] = field(default_factory=dict)

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


async def open_deps(deps: Deps) -> None:
    """Create the clients in the memo (idempotent)."""
    s = deps.settings
    if deps.vastai is None:
        deps.vastai = vastai.VastaiClient.from_settings(deps.http, s)
    if deps.inventory is None:
        deps.inventory = inventory.Inventory(deps.vastai, refresh_seconds=s.inventory_refresh)
    if deps.kube is None:
        deps.kube = kube.KubeClient.from_config()
    if deps.artifacts is None:  # job outputs (controllers/jobs/outputs.py)
        deps.artifacts = artifacts.from_settings(s)


async def close_deps(deps: Deps) -> None:
    """Close what :func:`open_deps` opened."""
    tasks = list(deps.tasks.values())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    deps.tasks.clear()
    if deps.inventory is not None:
        await deps.inventory.aclose()
    if deps.kube is not None:
        await deps.kube.close()
    await deps.http.aclose()
