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

import asyncio
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


#: Appends written together in one transaction at most (group commit).
MAX_BATCH = 200


class AuditTrail:
    """The trail. Appends are group-committed: the entries that arrive while one batch is
    being written go into the next transaction together (one head read, one commit), and
    each caller still returns only once its own record is committed."""

    def __init__(self, db: Database, fingerprint_key: bytes) -> None:
        self.db = db
        self._key = fingerprint_key
        self._pending: list[tuple[Entry, asyncio.Future[AuditRecord | None]]] = []
        self._writer: asyncio.Task[None] | None = None

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
        """Append one record once it is committed; None when its ``source`` was already
        recorded."""
        done: asyncio.Future[AuditRecord | None] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="warmpool-audit-writer")
        return await asyncio.shield(done)

    async def flush(self) -> None:
        """Wait until every append so far is written (closing)."""
        if self._writer is not None:
            await self._writer

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                written = await self._write([entry for entry, _ in batch])
            except IntegrityError:  # a source recorded by another replica meanwhile
                written = [await self._write_one(entry) for entry, _ in batch]
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (_, done), record in zip(batch, written, strict=True):
                if not done.done():
                    done.set_result(record)

    async def _write_one(self, entry: Entry) -> AuditRecord | None:
        try:
            return (await self._write([entry]))[0]
        except IntegrityError:
            return None

    async def _write(self, entries: list[Entry]) -> list[AuditRecord | None]:
        """One transaction: skip sources already recorded (or twice in the batch), chain
        the rest from the head in order."""
        async with self.db.write_lock, self.db.session() as s:
            if self.db.backend == "postgresql":
                await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
            sources = {e.source for e in entries if e.source is not None}
            seen: set[str | None] = set()
            if sources:
                seen.update(
                    await s.scalars(
                        select(AuditRecord.source).where(AuditRecord.source.in_(sources))
                    )
                )
            prev = await self._head(s)
            out: list[AuditRecord | None] = []
            for entry in entries:
                if entry.source is not None and entry.source in seen:
                    out.append(None)
                    continue
                seen.add(entry.source)
                record = self._record(prev, entry)
                s.add(record)  # the unit of work inserts in the order of add(): chain order
                prev = record.hash
                out.append(record)
            await s.flush()
            return out

    async def _add(self, s: AsyncSession, entry: Entry) -> AuditRecord:
        record = self._record(await self._head(s), entry)
        s.add(record)
        await s.flush()
        return record

    @staticmethod
    def _record(prev: str, entry: Entry) -> AuditRecord:
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
        return AuditRecord(**fields, prev_hash=prev, hash=record_hash(prev, fields))

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
