""" "What do I rent right now": one Vast.ai listing per refresh interval for everyone.

Every pool and every instance handler asks the :class:`Inventory`; however many
callers ask at the same time, at most one ``list_all_instances()`` call is in flight
(single-flight) and its answer serves all callers until it is ``refresh_seconds``
old or :meth:`Inventory.invalidate` is called (after a create or a destroy).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from warmpool.operator.adapters.vastai_models import Instance

LABEL_ROOT = "warmpool"


class InstanceLister(Protocol):
    async def list_all_instances(self) -> list[Instance]: ...


def pool_label_prefix(namespace: str, pool: str, *, root: str = LABEL_ROOT) -> str:
    """The label prefix shared by a pool's rentals: ``warmpool.<namespace>.<pool>.``."""
    return f"{root}.{namespace}.{pool}."


class Inventory:
    """A single-flight, time-bounded cache of the account's instance list."""

    def __init__(
        self,
        client: InstanceLister,
        *,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._refresh = refresh_seconds
        self._clock = clock
        self._snapshot: tuple[Instance, ...] = ()
        self._fetched_at: float | None = None
        self._generation = 0
        self._inflight: asyncio.Task[tuple[Instance, ...] | Exception] | None = None
        self.fetches = 0  # listings made (for tests and benchmarks)

    def invalidate(self) -> None:
        """Forget the snapshot: the next question triggers a fresh listing."""
        self._generation += 1
        self._fetched_at = None

    @property
    def age(self) -> float | None:
        """Seconds since the current snapshot was taken, None when there is none."""
        return None if self._fetched_at is None else self._clock() - self._fetched_at

    async def instances(self) -> list[Instance]:
        """Every instance of the account (at most ``refresh_seconds`` old)."""
        return list(await self._get())

    async def by_label_prefix(self, prefix: str) -> list[Instance]:
        """Instances whose label starts with ``prefix`` (unlabelled ones never match)."""
        return [i for i in await self._get() if i.label is not None and i.label.startswith(prefix)]

    async def by_pool(self, namespace: str, pool: str, *, root: str = LABEL_ROOT) -> list[Instance]:
        """Instances labelled for one pool (``warmpool.<namespace>.<pool>.*``)."""
        return await self.by_label_prefix(pool_label_prefix(namespace, pool, root=root))

    async def by_label(self, label: str) -> list[Instance]:
        """Instances carrying exactly ``label``."""
        return [i for i in await self._get() if i.label == label]

    async def by_id(self, instance_id: int) -> Instance | None:
        """The instance with this contract id, if listed."""
        return next((i for i in await self._get() if i.id == instance_id), None)

    async def aclose(self) -> None:
        """Cancel a listing still in flight (at shutdown)."""
        task, self._inflight = self._inflight, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _get(self) -> Sequence[Instance]:
        if self._fetched_at is not None and self._clock() - self._fetched_at < self._refresh:
            return self._snapshot
        task = self._inflight
        if task is None or task.done():
            task = asyncio.ensure_future(self._fetch(self._generation))
            self._inflight = task
        # shield: one cancelled caller must not cancel the listing the others wait for
        outcome = await asyncio.shield(task)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _fetch(self, generation: int) -> tuple[Instance, ...] | Exception:
        # The shared task never ends in an exception: its waiters re-raise it. A task
        # whose caller was cancelled would otherwise hold an exception nobody retrieves
        # (and Kopf re-raises such leftovers at shutdown).
        started = self._clock()
        self.fetches += 1
        try:
            rows = tuple(await self._client.list_all_instances())
        except Exception as exc:  # handed to every waiter
            return exc
        finally:
            if self._inflight is asyncio.current_task():
                self._inflight = None
        self._snapshot = rows
        # a listing that overlapped an invalidate() serves its waiters but is not cached
        self._fetched_at = started if generation == self._generation else None
        return rows
