"""What studio replicas share through the records database: the per-minute counts of the
request and sign-in limits (:mod:`warmpool.api.limits`), the queue slots of admitted jobs
(:mod:`warmpool.api.slots`) and revoked token-mode sessions (:mod:`warmpool.api.sessions`).

Why the records database and not the Kubernetes API: with several replicas it is
PostgreSQL, which gives both atomic primitives needed — an upsert that increments a count
only below a bound (``INSERT … ON CONFLICT DO UPDATE … WHERE count < :allowed
RETURNING``: one statement, so two replicas cannot both take the last place) and advisory
transaction locks per user; the API server would need an object written per request,
with optimistic-concurrency retries under contention, on the server the operator depends
on. With SQLite (one replica, by the chart's rule) the in-process stores are exact and
cost no write per request: :func:`stores` picks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from warmpool.api.limits import Counters, MemoryCounters
from warmpool.api.records.db import Database
from warmpool.api.records.tables import LimitCount, QueueSlot, RevokedSession
from warmpool.api.sessions import MemoryRevocations, Revocations
from warmpool.api.slots import HORIZON, Counting, MemorySlots, Slots


@dataclass(frozen=True)
class Shared:
    counters: Counters
    slots: Slots
    revocations: Revocations


def stores(db: Database, *, shared: bool | None = None) -> Shared:
    """The database's stores on PostgreSQL (or when ``shared``), else the in-process ones."""
    if shared if shared is not None else db.backend == "postgresql":
        return Shared(DbCounters(db), DbSlots(db), DbRevocations(db))
    return Shared(MemoryCounters(), MemorySlots(), MemoryRevocations())


def _insert(db: Database) -> type[postgresql.Insert] | type[sqlite.Insert]:
    return postgresql.Insert if db.backend == "postgresql" else sqlite.Insert


def _serial(db: Database) -> contextlib.AbstractAsyncContextManager[Any]:
    """SQLite has one writer at a time: writes take the process's write lock (the tests
    run these stores on SQLite too; in service SQLite uses the in-process stores)."""
    return db.write_lock if db.backend == "sqlite" else contextlib.nullcontext()


class DbCounters:
    """:class:`~warmpool.api.limits.Counters` in table ``limit_counts``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pruned = 0

    async def counts(self, key: str, windows: tuple[int, int]) -> tuple[int, int]:
        async with self.db.sessions() as s:
            found = await s.execute(
                select(LimitCount.window, LimitCount.count).where(
                    LimitCount.key == key, LimitCount.window.in_(windows)
                )
            )
            rows = {window: count for window, count in found}
        return rows.get(windows[0], 0), rows.get(windows[1], 0)

    async def take(self, key: str, window: int, allowed: int) -> bool:
        if allowed <= 0:
            return False
        insert = _insert(self.db)(LimitCount).values(key=key, window=window, count=1)
        upsert = insert.on_conflict_do_update(
            index_elements=[LimitCount.key, LimitCount.window],
            set_={"count": LimitCount.count + 1},
            where=LimitCount.count < allowed,
        ).returning(LimitCount.count)
        async with _serial(self.db), self.db.session() as s:
            taken = (await s.execute(upsert)).scalar_one_or_none() is not None
            await self._prune(s, window)
        return taken

    async def add(self, keys: Sequence[str], window: int) -> None:
        async with _serial(self.db), self.db.session() as s:
            for key in keys:
                insert = _insert(self.db)(LimitCount).values(key=key, window=window, count=1)
                await s.execute(
                    insert.on_conflict_do_update(
                        index_elements=[LimitCount.key, LimitCount.window],
                        set_={"count": LimitCount.count + 1},
                    )
                )
            await self._prune(s, window)

    async def _prune(self, s: AsyncSession, window: int) -> None:
        """Once per window and process: the windows no judgement reads any more."""
        if window != self._pruned:
            self._pruned = window
            await s.execute(delete(LimitCount).where(LimitCount.window < window - 1))


class DbSlots:
    """:class:`~warmpool.api.slots.Slots` in table ``queue_slots``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def reserve(
        self, owner: str, job: str, *, limit: int, count: Counting, now: datetime
    ) -> bool:
        async with _serial(self.db), self.db.session() as s:
            if self.db.backend == "postgresql":
                await s.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:o))"), {"o": f"queue:{owner}"}
                )
            await s.execute(
                delete(QueueSlot).where(QueueSlot.owner == owner, QueueSlot.at < now - HORIZON)
            )
            recent = frozenset(
                await s.scalars(select(QueueSlot.job).where(QueueSlot.owner == owner))
            )
            if await count(recent) >= limit:
                return False
            s.add(QueueSlot(job=job, owner=owner, at=now))
        return True

    async def release(self, job: str) -> None:
        async with _serial(self.db), self.db.session() as s:
            await s.execute(delete(QueueSlot).where(QueueSlot.job == job))

    def noted(self, job: str) -> None:
        """Kept: the other replicas count the job by its slot until their watches have
        it (:data:`~warmpool.api.slots.HORIZON`)."""


class DbRevocations:
    """:class:`~warmpool.api.sessions.Revocations` in table ``revoked_sessions``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def revoke(self, sid: str, expires: int, now: float) -> None:
        until = datetime.fromtimestamp(expires, UTC)
        insert = _insert(self.db)(RevokedSession).values(sid=sid, expires_at=until)
        async with _serial(self.db), self.db.session() as s:
            await s.execute(
                delete(RevokedSession).where(
                    RevokedSession.expires_at < datetime.fromtimestamp(now, UTC)
                )
            )
            await s.execute(insert.on_conflict_do_nothing(index_elements=[RevokedSession.sid]))

    async def is_revoked(self, sid: str) -> bool:
        async with self.db.sessions() as s:
            return await s.get(RevokedSession, sid) is not None
