"""The records service of the studio: database, audit trail, usage ledger, the shared
fleet watches and the background work (Event ingestion, ledger writes, retention).

Built by the app's lifespan (``app.state.records``). Writes that come from watches go
through one queue and one task, so the watches never wait on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request

from warmpool.api.hub import JobEvent
from warmpool.api.records.audit import AuditTrail, Entry
from warmpool.api.records.db import Database
from warmpool.api.records.usage import Ledger, may_be_finished, parse_time, usage_of
from warmpool.api.records.watch import SharedWatch, source
from warmpool.api.settings import StudioSettings
from warmpool.operator.adapters import kube

logger = logging.getLogger(__name__)

#: The operator's money Events (reason → audit action).
MONEY_REASONS = {
    "Rented": "operator.rent",
    "Releasing": "operator.release",
    "Destroyed": "operator.destroy",
}
_PRICE = re.compile(r"\$([0-9]+(?:\.[0-9]+)?)/h")


def client_address(
    request: Request, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> str:
    """The caller's address: the connection's, or — when the connection comes from a
    trusted proxy — the nearest untrusted address of ``X-Forwarded-For``."""
    host = request.client.host if request.client else ""

    def trusted(value: str) -> bool:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return False
        return any(address in net for net in networks)

    if not trusted(host):
        return host
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            return hop[:64]
    return host


def money_entry(obj: dict[str, Any]) -> Entry | None:
    """The audit entry of an operator money Event, keyed by uid and count."""
    action = MONEY_REASONS.get(str(obj.get("reason") or ""))
    involved = obj.get("involvedObject") or {}
    meta = obj.get("metadata") or {}
    if action is None or involved.get("kind") not in ("GpuPool", "GpuInstance"):
        return None
    message = str(obj.get("message") or "")
    detail: dict[str, Any] = {"reason": obj.get("reason"), "message": message}
    price = _PRICE.search(message)
    if price:
        detail["pricePerHour"] = float(price.group(1))
    count = int(obj.get("count") or 1)
    at = parse_time(
        str(obj.get("lastTimestamp") or obj.get("eventTime") or obj.get("firstTimestamp") or "")
    )
    return Entry(
        actor=str((obj.get("source") or {}).get("component") or "operator"),
        action=action,
        object_kind=str(involved.get("kind")),
        object_name=str(involved.get("name") or ""),
        detail=detail,
        source=f"{meta.get('uid') or meta.get('name')}:{count}",
        at=at,
    )


class Records:
    def __init__(
        self, settings: StudioSettings, db: Database, audit: AuditTrail, client: kube.KubeClient
    ) -> None:
        self.settings = settings
        self.db = db
        self.audit = audit
        self.ledger = Ledger(db)
        ns = settings.studio_namespace
        self.pools = SharedWatch(source(client, kube.GPUPOOLS, ns))
        self.instances = SharedWatch(source(client, kube.GPUINSTANCES, ns))
        self.events = SharedWatch(
            source(client, kube.EVENTS, ns), on_change=self._on_event, cache=False
        )
        self._networks = [
            ipaddress.ip_network(c, strict=False) for c in settings.studio_proxy_cidrs
        ]
        self._jobs: asyncio.Queue[tuple[dict[str, Any], bool]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        #: Jobs already written to the ledger by this process (saves a round trip).
        self._recorded: set[str] = set()

    @classmethod
    async def open(cls, settings: StudioSettings, client: kube.KubeClient) -> Records:
        db = Database(settings.studio_records_url.get_secret_value())
        await db.migrate()
        configured = settings.studio_records_fingerprint_key
        key = await db.fingerprint_key(configured.get_secret_value() if configured else None)
        return cls(settings, db, AuditTrail(db, key), client)

    def start(self) -> None:
        self.pools.start()
        self.instances.start()
        if self.settings.studio_records_ingest_events:
            self.events.start()
        self._tasks.append(asyncio.create_task(self._write_jobs(), name="warmpool-usage"))
        self._tasks.append(asyncio.create_task(self._cleanup(), name="warmpool-retention"))

    async def close(self) -> None:
        for watch in (self.events, self.instances, self.pools):
            await watch.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.audit.flush()
        await self.db.close()

    # ------------------------------------------------------------ recording

    def address(self, request: Request) -> str:
        return client_address(request, self._networks)

    async def record(
        self,
        request: Request | None,
        actor: str,
        action: str,
        kind: str = "",
        name: str = "",
        *,
        outcome: str = "ok",
        detail: dict[str, Any] | None = None,
    ) -> None:
        """One audit record; a database failure is logged, never fails the request."""
        entry = Entry(
            actor=actor,
            action=action,
            object_kind=kind,
            object_name=name,
            address=self.address(request) if request is not None else "",
            outcome=outcome,
            detail=detail,
        )
        try:
            await self.audit.append(entry)
        except Exception:
            logger.exception("could not write the audit record %s", action)

    def on_job(self, event: JobEvent) -> None:
        """The hub's hook: every job change, queued for the ledger writer."""
        deleted = event.type == "DELETED"
        if may_be_finished(event.object, deleted=deleted):
            self._jobs.put_nowait((event.object, deleted))

    async def settled(self) -> None:
        """Wait until every queued job change was written (tests)."""
        await self._jobs.join()

    async def _write_jobs(self) -> None:
        while True:
            obj, deleted = await self._jobs.get()
            try:
                await self._write_job(obj, deleted)
            except Exception:
                logger.exception("could not write a usage record")
            finally:
                self._jobs.task_done()

    async def _write_job(self, obj: dict[str, Any], deleted: bool = False) -> None:
        row = usage_of(obj, deleted=deleted)
        if row is None or row["job_uid"] in self._recorded:
            return
        if await self.ledger.record(row):
            outputs = (obj.get("status") or {}).get("outputs") or []
            for i, out in enumerate(outputs):
                await self.audit.append(
                    Entry(
                        actor=row["owner"], action="output.create", object_kind="Output",
                        object_name=f"{row['job']}/{i}",
                        detail={"key": out.get("key"), "size": out.get("size")},
                        source=f"output:{row['job_uid']}:{i}", at=row["finished_at"],
                    )
                )  # fmt: skip
        self._recorded.add(row["job_uid"])

    async def _on_event(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "DELETED":
            return
        entry = money_entry(obj)
        if entry is not None:
            await self.audit.append(entry)

    async def prune(self, now: datetime | None = None) -> tuple[int, int]:
        keep = timedelta(days=self.settings.studio_records_retention_days)
        return await self.audit.prune(keep, now=now), await self.ledger.prune(keep, now=now)

    async def _cleanup(self) -> None:
        while True:
            try:
                removed = await self.prune(datetime.now(UTC))
                if any(removed):
                    logger.info("retention removed %d audit and %d usage records", *removed)
            except Exception:
                logger.exception("the retention clean-up failed")
            await asyncio.sleep(self.settings.studio_records_cleanup_seconds)
