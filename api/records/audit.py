"""The audit trail: append-only records chained by hash, queried, verified and pruned.

Each record's ``hash`` is SHA-256 over its previous record's hash and a canonical
encoding of its own columns; :meth:`AuditTrail.verify` recomputes the chain and names
the first record that was altered, or the place where one was removed. A retention
clean-up removes old records from the start of the chain and writes an anchor (the
hash the first remaining record must point at) plus an ``audit.prune`` record, so the
chain stays verifiable. Removing the newest records leaves no gap inside the table:
compare the head hash that ``verify`` reports with one kept elsewhere to catch that.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from warmpool.api.records.db import Database
from warmpool.api.records.tables import AuditAnchor, AuditRecord

GENESIS = "0" * 64
LOCK_KEY = 0x61756474  # PostgreSQL transaction lock of appends across replicas
COLUMNS = ("at", "actor", "action", "object_kind", "object_name", "address", "outcome")


def utc(at: datetime) -> datetime:
    """SQLite hands back naive datetimes: every value is UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    body = {**fields, "at": utc(fields["at"]).isoformat(timespec="microseconds")}
    return hashlib.sha256((prev_hash + canonical(body)).encode()).hexdigest()


def fields_of(r: AuditRecord) -> dict[str, Any]:
    out = {c: getattr(r, c) for c in COLUMNS}
    out["detail"] = r.detail
    out["source"] = r.source
    return out


@dataclass(frozen=True)
class Entry:
    """What to record (the trail adds time, chain and hash)."""

    actor: str
    action: str
    object_kind: str = ""
    object_name: str = ""
    address: str = ""
    outcome: str = "ok"
    detail: dict[str, Any] | None = None
    source: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class Filter:
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    action: str | None = None
    object: str | None = None  # matches the name, or "Kind/name"


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    head: str
    anchored: bool
    problem: str = ""
    record_id: int | None = None


class AuditTrail:
    def __init__(self, db: Database, fingerprint_key: bytes) -> None:
        self.db = db
        self._key = fingerprint_key

    def fingerprint(self, token: str) -> str:
        """A keyed fingerprint (HMAC-SHA256, 16 hex digits) standing for a token."""
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()[:16]

    async def _head(self, s: AsyncSession) -> str:
        last = await s.scalar(select(AuditRecord.hash).order_by(AuditRecord.id.desc()).limit(1))
        if last is not None:
            return last
        anchor = await s.scalar(
            select(AuditAnchor.prev_hash).order_by(AuditAnchor.id.desc()).limit(1)
        )
        return anchor or GENESIS

    async def append(self, entry: Entry) -> AuditRecord | None:
        """Append one record; None when its ``source`` was already recorded."""
        async with self.db.write_lock:
            try:
                async with self.db.session() as s:
                    if self.db.backend == "postgresql":
                        await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
                    if entry.source is not None:
                        seen = await s.scalar(
                            select(AuditRecord.id).where(AuditRecord.source == entry.source)
                        )
                        if seen is not None:
                            return None
                    return await self._add(s, entry)
            except IntegrityError:  # the same source from another replica meanwhile
                return None

    async def _add(self, s: AsyncSession, entry: Entry) -> AuditRecord:
        prev = await self._head(s)
        fields: dict[str, Any] = {
            "at": utc(entry.at or datetime.now(UTC)),
            "actor": entry.actor[:320],
            "action": entry.action[:64],
            "object_kind": entry.object_kind[:64],
            "object_name": entry.object_name[:253],
            "address": entry.address[:64],
            "outcome": entry.outcome[:16],
            "detail": canonical(entry.detail or {}),
            "source": entry.source,
        }
        record = AuditRecord(**fields, prev_hash=prev, hash=record_hash(prev, fields))
        s.add(record)
        await s.flush()
        return record

    # ------------------------------------------------------------ reading

    @staticmethod
    def _where(q: Select[Any], f: Filter) -> Select[Any]:
        if f.since is not None:
            q = q.where(AuditRecord.at >= utc(f.since))
        if f.until is not None:
            q = q.where(AuditRecord.at < utc(f.until))
        if f.actor:
            q = q.where(AuditRecord.actor == f.actor)
        if f.action:
            q = q.where(AuditRecord.action.startswith(f.action, autoescape=True))
        if f.object:
            kind, _, name = f.object.rpartition("/")
            q = q.where(AuditRecord.object_name == name)
            if kind:
                q = q.where(AuditRecord.object_kind == kind)
        return q

    async def page(
        self, f: Filter, *, offset: int = 0, limit: int = 50
    ) -> tuple[Sequence[AuditRecord], int]:
        """Newest first."""
        async with self.db.session() as s:
            total = await s.scalar(self._where(select(func.count(AuditRecord.id)), f))
            rows = await s.scalars(
                self._where(select(AuditRecord), f)
                .order_by(AuditRecord.id.desc())
                .offset(offset)
                .limit(limit)
            )
            return list(rows), int(total or 0)

    # ------------------------------------------------------------ integrity

    async def verify(self, batch: int = 1000) -> Verification:
        """Recompute the chain from its anchor (or the genesis) to its head."""
        async with self.db.session() as s:
            anchor = await s.scalar(
                select(AuditAnchor.prev_hash).order_by(AuditAnchor.id.desc()).limit(1)
            )
            prev = anchor or GENESIS
            checked, last_id = 0, 0
            while True:
                rows = list(
                    await s.scalars(
                        select(AuditRecord)
                        .where(AuditRecord.id > last_id)
                        .order_by(AuditRecord.id)
                        .limit(batch)
                    )
                )
                if not rows:
                    return Verification(True, checked, prev, anchor is not None)
                for r in rows:
                    if r.prev_hash != prev:
                        return Verification(
                            False, checked, prev, anchor is not None,
                            problem="a record before this one was removed or altered",
                            record_id=r.id,
                        )  # fmt: skip
                    if record_hash(r.prev_hash, fields_of(r)) != r.hash:
                        return Verification(
                            False, checked, prev, anchor is not None,
                            problem="this record was altered", record_id=r.id,
                        )  # fmt: skip
                    prev, last_id, checked = r.hash, r.id, checked + 1

    async def prune(self, retention: timedelta, *, now: datetime | None = None) -> int:
        """Remove records older than ``retention``; anchor the chain on the first kept
        record, and record the clean-up itself."""
        cutoff = utc(now or datetime.now(UTC)) - retention
        async with self.db.write_lock, self.db.session() as s:
            if self.db.backend == "postgresql":
                await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
            last_old = await s.scalar(
                select(func.max(AuditRecord.id)).where(AuditRecord.at < cutoff)
            )
            if last_old is None:
                return 0
            boundary = await s.scalar(select(AuditRecord.hash).where(AuditRecord.id == last_old))
            removed = (
                await s.execute(delete(AuditRecord).where(AuditRecord.id <= last_old))
            ).rowcount  # type: ignore[attr-defined]
            s.add(
                AuditAnchor(
                    at=utc(now or datetime.now(UTC)),
                    first_id=last_old + 1,
                    prev_hash=str(boundary),
                    removed=int(removed),
                )
            )
            await s.flush()
            detail = {"removed": int(removed), "before": cutoff.isoformat(), "through": last_old}
            await self._add(s, Entry("system", "audit.prune", "AuditTrail", "", detail=detail))
            return int(removed)


def as_row(r: AuditRecord) -> dict[str, Any]:
    """The JSON/CSV shape of one record."""
    return {
        "id": r.id,
        "at": utc(r.at).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "actor": r.actor,
        "action": r.action,
        "objectKind": r.object_kind,
        "objectName": r.object_name,
        "address": r.address,
        "outcome": r.outcome,
        "detail": json.loads(r.detail or "{}"),
        "hash": r.hash,
        "prevHash": r.prev_hash,
    }
