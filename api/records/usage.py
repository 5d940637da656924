"""The usage ledger: each finished job's owner, pool, GPU, seconds and actual cost.

Written once per job (its uid is unique) when the studio's watch sees the job reach a
terminal phase, so costs outlive the job objects that a TTL deletes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from warmpool.api.records.audit import utc
from warmpool.api.records.db import Database
from warmpool.api.records.tables import UsageRecord
from warmpool.crds.generationjob import TERMINAL_PHASES, GenerationJob


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def may_be_finished(obj: dict[str, Any], *, deleted: bool = False) -> bool:
    """Whether :func:`usage_of` could find a ledger row, read off the raw body: most job
    changes are progress of a running job, not worth validating the whole object."""
    status = obj.get("status") or {}
    return bool(status) and (deleted or status.get("phase") in TERMINAL_PHASES)


def usage_of(obj: dict[str, Any], *, deleted: bool = False) -> dict[str, Any] | None:
    """The ledger row of a finished job, or None while it runs (or without a uid).

    A job deleted before it finished (cancelled) is recorded as ``Cancelled`` with what it
    had cost so far, when it had started at all."""
    job = GenerationJob.from_body(obj)
    st = job.status
    uid = job.metadata.uid
    phase = st.phase
    if deleted and phase not in TERMINAL_PHASES and (st.started_at or st.scheduled_at):
        phase = "Cancelled"
    if phase not in TERMINAL_PHASES or not uid:
        return None
    finished = parse_time(st.finished_at) or datetime.now(UTC)
    started = parse_time(st.started_at) or parse_time(st.scheduled_at)
    seconds = max(0.0, (finished - started).total_seconds()) if started else 0.0
    return {
        "job_uid": uid,
        "job": job.metadata.name,
        "namespace": job.metadata.namespace or "",
        "owner": job.spec.owner or "",
        "pool": job.spec.pool,
        "gpu": st.gpu_name,
        "instance": st.instance,
        "phase": phase,
        "seconds": round(seconds, 3),
        "cost": float(st.actual_cost or 0.0),
        "finished_at": finished,
        "day": finished.strftime("%Y-%m-%d"),
    }


@dataclass(frozen=True)
class Spend:
    day: str
    owner: str
    pool: str
    jobs: int
    seconds: float
    cost: float


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, row: dict[str, Any]) -> bool:
        """Insert the row; False when this job was already recorded."""
        insert = pg_insert if self.db.backend == "postgresql" else sqlite_insert
        stmt = insert(UsageRecord).values(**row).on_conflict_do_nothing(index_elements=["job_uid"])
        async with self.db.session() as s:
            result = await s.execute(stmt)
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def spend(self, since: datetime, until: datetime) -> Sequence[Spend]:
        """Per UTC day, owner and pool, oldest day first."""
        q = (
            select(
                UsageRecord.day,
                UsageRecord.owner,
                UsageRecord.pool,
                func.count(UsageRecord.id),
                func.sum(UsageRecord.seconds),
                func.sum(UsageRecord.cost),
            )
            .where(UsageRecord.finished_at >= utc(since), UsageRecord.finished_at < utc(until))
            .group_by(UsageRecord.day, UsageRecord.owner, UsageRecord.pool)
            .order_by(UsageRecord.day, UsageRecord.owner, UsageRecord.pool)
        )
        async with self.db.session() as s:
            rows = (await s.execute(q)).all()
        return [
            Spend(day, owner, pool, int(n), round(float(sec or 0), 3), round(float(c or 0), 6))
            for day, owner, pool, n, sec, c in rows
        ]

    async def prune(self, retention: timedelta, *, now: datetime | None = None) -> int:
        cutoff = utc(now or datetime.now(UTC)) - retention
        async with self.db.session() as s:
            result = await s.execute(delete(UsageRecord).where(UsageRecord.finished_at < cutoff))
            return int(result.rowcount)  # type: ignore[attr-defined]
