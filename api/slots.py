"""Admission against the per-user limit of unfinished jobs, exact across studio replicas.

Each replica counts a user's unfinished jobs from its own watch, which sees a job some
moments after it was created — by this replica or by another one. So admitting is: under a
lock per user, count the unfinished jobs the watch knows *plus* the jobs admitted
recently (by any replica) that the watch has not seen finish, and when below the limit,
record this job's slot before creating it. The slot is released when the create fails.

The slots live in a :class:`Slots` store: :class:`MemorySlots` in this process (one
replica: SQLite records), ``records.shared.DbSlots`` in the records database (PostgreSQL:
the lock is an advisory transaction lock per user, so two replicas admitting the same
user's job at the same moment take turns). A slot counts for :data:`HORIZON`: by then
every replica's watch has the job (a job deleted by someone else meanwhile still counts
until then).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable
from datetime import datetime, timedelta
from typing import Protocol

#: How long a slot counts; far beyond any watch's delay.
HORIZON = timedelta(seconds=120)

#: Given the jobs admitted recently, the caller's count of the unfinished ones.
Counting = Callable[[Collection[str]], Awaitable[int]]


def unfinished(watched: Collection[str], recent: Iterable[str], seen: Callable[[str], bool]) -> int:
    """How many jobs are unfinished: those the watch knows unfinished, and the recent
    admissions it has not seen yet (one it has seen is either among ``watched`` or ended).
    One lookup per recent admission, no set built: this runs on every submission."""
    return len(watched) + sum(1 for name in recent if not seen(name))


class Slots(Protocol):
    async def reserve(
        self, owner: str, job: str, *, limit: int, count: Counting, now: datetime
    ) -> bool:
        """Record ``job``'s slot when ``count(recent)`` is below ``limit``; atomic per owner."""
        ...

    async def release(self, job: str) -> None:
        """The create failed: the place is free again."""
        ...

    def noted(self, job: str) -> None:
        """The job was created and this replica's watch view counts it from now on."""
        ...


class MemorySlots:
    """:class:`Slots` in this process (one replica). This replica's watch view is the only
    one, and it counts a job from the moment it is created (:meth:`noted`): only the
    admissions still being created stay as slots, so a count looks at a handful."""

    def __init__(self) -> None:
        # owner → job → admitted at, oldest first (expired slots leave from the front)
        self._slots: dict[str, dict[str, datetime]] = {}
        self._owners: dict[str, str] = {}  # job → owner
        self._locks: dict[str, asyncio.Lock] = {}  # one per owner seen (a few hundred bytes)

    async def reserve(
        self, owner: str, job: str, *, limit: int, count: Counting, now: datetime
    ) -> bool:
        async with self._locks.setdefault(owner, asyncio.Lock()):
            mine = self._slots.setdefault(owner, {})
            horizon = now - HORIZON
            while mine:
                oldest = next(iter(mine))
                if mine[oldest] >= horizon:
                    break
                del mine[oldest]
                self._owners.pop(oldest, None)
            if await count(mine.keys()) >= limit:
                return False
            mine[job] = max(now, mine[next(reversed(mine))]) if mine else now  # ordered
            self._owners[job] = owner
            return True

    async def release(self, job: str) -> None:
        self.noted(job)

    def noted(self, job: str) -> None:
        owner = self._owners.pop(job, None)
        if owner is not None:
            self._slots.get(owner, {}).pop(job, None)
