"""The admin console: ``/admin`` (page) and ``/api/v1/admin/*`` — fleet, actions, audit,
usage. The admin group only; everyone else gets 403 (and the refusal is recorded)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse

from warmpool.api import streams
from warmpool.api.deps import AdminDep, RecorderDep, RecordsDep, StudioDep
from warmpool.api.records import fleet
from warmpool.api.records.audit import Filter, as_row
from warmpool.api.records.schemas import (
    ActionOut,
    AuditPage,
    AuditRow,
    BudgetRequest,
    Fleet,
    PauseRequest,
    PrewarmRequest,
    ScaleRequest,
    SpendRow,
    UsageOut,
    VerifyOut,
)
from warmpool.api.schemas import OBJECT_NAME_PATTERN
from warmpool.api.streams import EventStream
from warmpool.operator.adapters import kube

router = APIRouter(tags=["admin"])
Name = Annotated[str, Path(max_length=253, pattern=OBJECT_NAME_PATTERN)]
CONSOLE = resources.files("warmpool.api.records") / "console"
ASSETS = {"admin.js": "text/javascript", "admin.css": "text/css", "limits.js": "text/javascript"}
FLEET_DEBOUNCE_SECONDS = 0.2
SSE_PING_SECONDS = 15
CSV_MAX_ROWS = 100_000


@router.get("/admin", response_class=HTMLResponse, include_in_schema=False)
async def console(user: AdminDep) -> HTMLResponse:
    return HTMLResponse((CONSOLE / "admin.html").read_text(), headers={"Cache-Control": "no-store"})


@router.get("/admin/assets/{name}", include_in_schema=False)
async def console_asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="not found")
    return Response((CONSOLE / name).read_bytes(), media_type=ASSETS[name])


api = "/api/v1/admin"


# ---------------------------------------------------------------- fleet


@router.get(f"{api}/fleet", summary="Pools and instances, as the shared watch sees them")
async def get_fleet(records: RecordsDep, user: AdminDep) -> Fleet:
    return fleet.snapshot(records)


@router.get(
    f"{api}/fleet/events",
    summary="The fleet as Server-Sent Events (a snapshot per change)",
    response_class=EventStream,
    responses={200: {"content": {streams.MEDIA_TYPE: {}}}},
)
async def fleet_events(records: RecordsDep, user: AdminDep) -> EventStream:
    async def events() -> AsyncGenerator[bytes, None]:
        async with records.pools.changes() as pools, records.instances.changes() as insts:
            last = ""
            while True:
                text = fleet.snapshot(records).model_dump_json(by_alias=True)
                if text != last:
                    last = text
                    yield streams.encode_text("fleet", text)
                waits = [asyncio.create_task(pools.wait()), asyncio.create_task(insts.wait())]
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
                await asyncio.sleep(FLEET_DEBOUNCE_SECONDS)  # coalesce a burst of changes
                pools.clear()
                insts.clear()

    return EventStream(events(), ping=SSE_PING_SECONDS)


# ---------------------------------------------------------------- actions


async def _pool_action(
    studio: StudioDep, audit: RecorderDep, user: AdminDep, name: str, action: str, spec_of: Any
) -> ActionOut:
    ns = studio.settings.studio_namespace
    done = await fleet.edit_pool(studio.kube, ns, user.name, name, action, spec_of)
    await audit(user, action, "GpuPool", name, detail={"before": done.before, "after": done.after})
    return done


@router.post(f"{api}/pools/{{name}}/scale", summary="Set a pool's warm replicas")
async def scale(
    studio: StudioDep, audit: RecorderDep, user: AdminDep, name: Name, req: ScaleRequest
) -> ActionOut:
    return await _pool_action(
        studio, audit, user, name, "pool.scale", lambda s: fleet.scale_spec(s, req.replicas)
    )


@router.post(f"{api}/pools/{{name}}/pause", summary="Pause (safe mode) or resume a pool")
async def pause(
    studio: StudioDep, audit: RecorderDep, user: AdminDep, name: Name, req: PauseRequest
) -> ActionOut:
    action = "pool.pause" if req.paused else "pool.resume"
    return await _pool_action(studio, audit, user, name, action, lambda s: {"paused": req.paused})


@router.post(f"{api}/pools/{{name}}/prewarm", summary="Rent more warm instances now")
async def prewarm(
    studio: StudioDep, audit: RecorderDep, user: AdminDep, name: Name, req: PrewarmRequest
) -> ActionOut:
    return await _pool_action(
        studio, audit, user, name, "pool.prewarm", lambda s: fleet.prewarm_spec(s, req.count)
    )


@router.post(f"{api}/pools/{{name}}/budget", summary="Change a pool's budget")
async def budget(
    studio: StudioDep, audit: RecorderDep, user: AdminDep, name: Name, req: BudgetRequest
) -> ActionOut:
    if (
        req.max_daily_spend is not None
        and req.max_hourly_spend is not None
        and req.max_daily_spend < req.max_hourly_spend
    ):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"type": "value_error", "loc": ["body", "maxDailySpend"],
                     "msg": "maxDailySpend must be >= maxHourlySpend"}],
        )  # fmt: skip
    new: dict[str, Any] = {
        "maxHourlySpend": req.max_hourly_spend,
        "maxDailySpend": req.max_daily_spend,
    }
    if req.on_exceeded is not None:
        new["onExceeded"] = req.on_exceeded
    return await _pool_action(studio, audit, user, name, "pool.budget", lambda s: {"budget": new})


@router.delete(f"{api}/instances/{{name}}", summary="Terminate one instance")
async def terminate(studio: StudioDep, audit: RecorderDep, user: AdminDep, name: Name) -> ActionOut:
    ns = studio.settings.studio_namespace
    done = await fleet.delete_object(
        studio.kube, kube.GPUINSTANCES, ns, user.name, name, "instance.terminate"
    )
    await audit(user, done.action, "GpuInstance", name, detail={"before": done.before})
    return done


@router.delete(f"{api}/jobs/{{name}}", summary="Cancel anyone's job")
async def cancel_job(
    studio: StudioDep, audit: RecorderDep, user: AdminDep, name: Name
) -> ActionOut:
    ns = studio.settings.studio_namespace
    done = await fleet.delete_object(
        studio.kube, kube.GENERATIONJOBS, ns, user.name, name, "job.cancel"
    )
    await audit(user, done.action, "GenerationJob", name, detail={"before": done.before})
    return done


# ---------------------------------------------------------------- audit


def _filter(
    since: datetime | None, until: datetime | None, actor: str | None,
    action: str | None, obj: str | None,
) -> Filter:  # fmt: skip
    return Filter(since=since, until=until, actor=actor or None, action=action or None,
                  object=obj or None)  # fmt: skip


Text = Annotated[str | None, Query(max_length=320)]


@router.get(f"{api}/audit", summary="Audit records, newest first")
async def audit_page(
    records: RecordsDep,
    user: AdminDep,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: Text = None,
    action: Text = None,
    object: Text = None,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditPage:
    rows, total = await records.audit.page(
        _filter(since, until, actor, action, object), offset=offset, limit=limit
    )
    return AuditPage(
        items=[AuditRow.model_validate(as_row(r)) for r in rows],
        total=total,
        offset=offset,
        limit=limit,
        next_offset=offset + limit if offset + limit < total else None,
    )


@router.get(f"{api}/audit.csv", summary="Audit records as CSV", response_class=Response)
async def audit_csv(
    records: RecordsDep,
    user: AdminDep,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: Text = None,
    action: Text = None,
    object: Text = None,
) -> Response:
    rows, _ = await records.audit.page(
        _filter(since, until, actor, action, object), limit=CSV_MAX_ROWS
    )
    out = io.StringIO()
    columns = ["id", "at", "actor", "action", "objectKind", "objectName", "address", "outcome",
               "detail", "prevHash", "hash"]  # fmt: skip
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        row = as_row(r)
        row["detail"] = json.dumps(row["detail"], sort_keys=True)
        writer.writerow(row)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="warmpool-audit.csv"'},
    )


@router.post(f"{api}/audit/verify", summary="Verify the audit hash chain now")
async def audit_verify(records: RecordsDep, user: AdminDep, request: Request) -> VerifyOut:
    v = await records.audit.verify()
    return VerifyOut(ok=v.ok, checked=v.checked, head=v.head, anchored=v.anchored,
                     problem=v.problem, record_id=v.record_id)  # fmt: skip


# ---------------------------------------------------------------- usage


@router.get(f"{api}/usage", summary="Spend per day, user and pool")
async def usage(
    records: RecordsDep,
    user: AdminDep,
    since: datetime | None = None,
    until: datetime | None = None,
) -> UsageOut:
    end = until or datetime.now(UTC) + timedelta(seconds=1)
    start = since or end - timedelta(days=30)
    rows = await records.ledger.spend(start, end)
    return UsageOut(
        since=fleet.iso(start),
        until=fleet.iso(end),
        rows=[
            SpendRow(
                day=r.day, owner=r.owner, pool=r.pool, jobs=r.jobs, seconds=r.seconds, cost=r.cost
            )
            for r in rows
        ],
        total_cost=round(sum(r.cost for r in rows), 6),
    )
