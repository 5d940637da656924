"""Per-user spending limits in dollars, per UTC day and per UTC month (every auth mode).

The limits are the settings' defaults (``WARMPOOL_STUDIO_SPEND_DAILY_LIMIT``,
``..._MONTHLY_LIMIT``) unless an admin set an override for the user (``spend_limits``).

What counts as spent in a window is, for the user:

- the actual cost of every finished job in the usage ledger (``usage``, written when the
  job ends), plus
- the estimate of every submitted job not in the ledger yet (``spend_reservations``), for
  at most :data:`HOLD` (a job cancelled before it started never gets a ledger row).

So a submission reserves its estimate, and the finished job settles at its actual cost:
its ledger row replaces the reservation in the sum. The check and the reservation are one
transaction, serialized per user (a lock in this process; on PostgreSQL an advisory
transaction lock, across replicas), so two submissions at once cannot both pass.

With SQLite (one replica, by the chart's rule) the overrides are also kept in this
process: :meth:`Spending.set_override` and :meth:`Spending.clear_override` are their only
writers, so the copy is exact and a submission without a limit reads nothing. On
PostgreSQL another replica may change an override: it is read per submission.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from warmpool.api.records.audit import utc
from warmpool.api.records.db import Database
from warmpool.api.records.tables import SpendLimit, SpendReservation, UsageRecord

#: How long an unsettled reservation counts.
HOLD = timedelta(hours=6)
#: Users whose override (or its absence) is kept in this process at most (SQLite).
KNOWN_MAX = 10000
EPSILON = 1e-9  # float sums: $0.000000001 of slack
LABELS = {"day": "daily", "month": "monthly"}


def day_start(now: datetime) -> datetime:
    return utc(now).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)


def next_month(start: datetime) -> datetime:
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


@dataclass(frozen=True)
class Window:
    """One window (``day`` or ``month``): spent, its limit (None: none), what is left."""

    name: str
    spent: float
    limit: float | None
    resets_at: datetime

    @property
    def left(self) -> float | None:
        return None if self.limit is None else round(max(0.0, self.limit - self.spent), 6)


@dataclass(frozen=True)
class Standing:
    day: Window
    month: Window


class SpendLimitError(Exception):
    """A submission would cross a limit (the route answers 402)."""

    def __init__(self, window: Window, estimate: float) -> None:
        self.window = window
        self.estimate = estimate
        limit, left, reset = window.limit or 0.0, window.left or 0.0, window.resets_at
        super().__init__(
            f"this generation (≈ ${estimate:.4f}) would cross your {LABELS[window.name]} limit of "
            f"${limit:.2f}: ${left:.4f} left until {reset:%Y-%m-%d %H:%M} UTC"
        )


@dataclass(frozen=True)
class Override:
    owner: str
    daily: float | None
    monthly: float | None
    updated_at: datetime
    updated_by: str


class Spending:
    def __init__(self, db: Database, *, daily: float | None, monthly: float | None) -> None:
        self.db = db
        self.default_daily = daily
        self.default_monthly = monthly
        # owner -> (daily, monthly), None: no override. Only with one replica (SQLite).
        self._known: dict[str, tuple[float | None, float | None] | None] | None = (
            {} if db.backend == "sqlite" else None
        )
        self._changes = 0  # a read that overlapped a change is not kept

    async def _limits(self, s: AsyncSession, owner: str) -> tuple[float | None, float | None]:
        known = self._known
        if known is not None and owner in known:
            found = known[owner]
        else:
            changes = self._changes
            row = await s.get(SpendLimit, owner)
            found = None if row is None else (row.daily, row.monthly)
            if known is not None and changes == self._changes:
                if len(known) >= KNOWN_MAX:
                    known.clear()
                known[owner] = found
        return (self.default_daily, self.default_monthly) if found is None else found

    async def _limits_alone(self, owner: str) -> tuple[float | None, float | None]:
        """:meth:`_limits` outside a transaction (no session when the copy has it)."""
        if self._known is not None and owner in self._known:
            found = self._known[owner]
            return (self.default_daily, self.default_monthly) if found is None else found
        async with self.db.session() as s:
            return await self._limits(s, owner)

    @staticmethod
    async def _spent(s: AsyncSession, owner: str, since: datetime, now: datetime) -> float:
        settled = await s.scalar(
            select(func.coalesce(func.sum(UsageRecord.cost), 0.0)).where(
                UsageRecord.owner == owner, UsageRecord.finished_at >= since
            )
        )
        held = await s.scalar(
            select(func.coalesce(func.sum(SpendReservation.amount), 0.0)).where(
                SpendReservation.owner == owner,
                SpendReservation.at >= max(since, now - HOLD),
                ~exists().where(
                    and_(
                        UsageRecord.job == SpendReservation.job,
                        UsageRecord.owner == SpendReservation.owner,
                    )
                ),
            )
        )
        return round(float(settled or 0.0) + float(held or 0.0), 6)

    async def _standing(self, s: AsyncSession, owner: str, now: datetime) -> Standing:
        daily, monthly = await self._limits(s, owner)
        d0, m0 = day_start(now), month_start(now)
        return Standing(
            day=Window("day", await self._spent(s, owner, d0, now), daily, d0 + timedelta(days=1)),
            month=Window("month", await self._spent(s, owner, m0, now), monthly, next_month(m0)),
        )

    async def standing(self, owner: str, *, now: datetime | None = None) -> Standing:
        async with self.db.session() as s:
            return await self._standing(s, owner, utc(now or datetime.now(UTC)))

    async def reserve(self, owner: str, estimate: float, *, now: datetime | None = None) -> str:
        """Hold ``estimate`` for a job about to be created; raises :class:`SpendLimitError`
        when a window would be crossed. Returns the reservation's key (see :meth:`bind`)."""
        at = utc(now or datetime.now(UTC))
        key = f"pending-{secrets.token_hex(12)}"
        # No default: only an override limits, and most users have none. One read (none
        # with SQLite's copy), outside the write lock (every submission queued on it).
        no_default = self.default_daily is None and self.default_monthly is None
        if no_default and await self._limits_alone(owner) == (None, None):
            return ""
        async with self.db.write_lock, self.db.session() as s:
            if self.db.backend == "postgresql":
                await s.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:o))"), {"o": f"spend:{owner}"}
                )
            standing = await self._standing(s, owner, at)
            if standing.day.limit is None and standing.month.limit is None:
                return ""  # no limit: nothing to hold (no write per job)
            for window in (standing.day, standing.month):
                if window.limit is not None and window.spent + estimate > window.limit + EPSILON:
                    raise SpendLimitError(window, estimate)
            s.add(SpendReservation(job=key, owner=owner, amount=round(estimate, 6), at=at))
        return key

    async def bind(self, key: str, job: str) -> None:
        """The reservation now belongs to the created job (settled by its ledger row)."""
        if not key:
            return
        async with self.db.session() as s:
            await s.execute(
                update(SpendReservation).where(SpendReservation.job == key).values(job=job)
            )

    async def release(self, key: str) -> None:
        if not key:
            return
        async with self.db.session() as s:
            await s.execute(delete(SpendReservation).where(SpendReservation.job == key))

    # ------------------------------------------------------------ overrides (admins)

    async def set_override(
        self, owner: str, *, daily: float | None, monthly: float | None, by: str
    ) -> None:
        async with self.db.session() as s:
            row = await s.get(SpendLimit, owner)
            if row is None:
                row = SpendLimit(owner=owner)
                s.add(row)
            row.daily, row.monthly = daily, monthly
            row.updated_at, row.updated_by = datetime.now(UTC), by
            self._forget(owner)
        self._forget(owner)  # committed: the next read sees the new row

    def _forget(self, owner: str) -> None:
        self._changes += 1
        if self._known is not None:
            self._known.pop(owner, None)

    async def clear_override(self, owner: str) -> bool:
        async with self.db.session() as s:
            result = await s.execute(delete(SpendLimit).where(SpendLimit.owner == owner))
            self._forget(owner)
        self._forget(owner)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def overrides(self) -> Sequence[Override]:
        async with self.db.session() as s:
            rows = await s.scalars(select(SpendLimit).order_by(SpendLimit.owner))
            return [
                Override(r.owner, r.daily, r.monthly, utc(r.updated_at), r.updated_by) for r in rows
            ]

    async def prune(self, *, now: datetime | None = None) -> int:
        """Remove reservations too old to count."""
        cutoff = utc(now or datetime.now(UTC)) - HOLD
        async with self.db.session() as s:
            result = await s.execute(delete(SpendReservation).where(SpendReservation.at < cutoff))
            return int(result.rowcount)  # type: ignore[attr-defined]
