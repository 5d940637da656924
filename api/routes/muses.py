"""Muses: create, read, replace, delete, list, export and import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from warmpool.api import jobs, muses
from warmpool.api.deps import RecorderDep, StudioDep, UserDep
from warmpool.api.schemas import (
    OBJECT_NAME_PATTERN,
    ImportResult,
    MuseExport,
    MuseOut,
    MusePage,
    MuseRequest,
)
from warmpool.operator.adapters import kube

router = APIRouter(prefix="/api/v1", tags=["muses"])

Name = Annotated[str, Path(max_length=253, pattern=OBJECT_NAME_PATTERN)]


@router.post("/muses", status_code=status.HTTP_201_CREATED, summary="Create a muse")
async def create_muse(
    studio: StudioDep, user: UserDep, req: MuseRequest, audit: RecorderDep
) -> MuseOut:
    out = await muses.create(studio, user, req)
    await audit(user, "muse.create", "Muse", out.name)
    return out


@router.get("/muses", summary="List my muses, newest first")
async def list_muses(
    studio: StudioDep,
    user: UserDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    all: Annotated[bool, Query(description="Admins: everyone's muses.")] = False,
) -> MusePage:
    found = await muses.mine(studio, user, everyone=all)
    return MusePage(
        items=[muses.to_out(o) for o in found[offset : offset + limit]],
        total=len(found),
        offset=offset,
        limit=limit,
        next_offset=offset + limit if offset + limit < len(found) else None,
    )


@router.get("/muses/export", summary="Export my muses as JSON")
async def export_muses(studio: StudioDep, user: UserDep) -> Response:
    doc = await muses.export(studio, user)
    return Response(
        doc.model_dump_json(by_alias=True, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="muses.json"'},
    )


@router.post("/muses/import", status_code=status.HTTP_201_CREATED, summary="Import muses from JSON")
async def import_muses(
    studio: StudioDep, user: UserDep, doc: MuseExport, audit: RecorderDep
) -> ImportResult:
    result = ImportResult(created=await muses.import_(studio, user, doc))
    await audit(user, "muse.import", "Muse", "", detail={"created": result.created})
    return result


@router.get("/muses/{name}", summary="One muse")
async def get_muse(studio: StudioDep, user: UserDep, name: Name) -> MuseOut:
    return muses.to_out(await jobs.get_owned(studio, user, kube.MUSES, name))


@router.put("/muses/{name}", summary="Replace a muse")
async def replace_muse(studio: StudioDep, user: UserDep, name: Name, req: MuseRequest) -> MuseOut:
    return await muses.replace(studio, user, name, req)


@router.delete("/muses/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a muse")
async def delete_muse(studio: StudioDep, user: UserDep, name: Name, audit: RecorderDep) -> Response:
    await jobs.get_owned(studio, user, kube.MUSES, name)
    await studio.kube.delete(kube.MUSES, name, studio.settings.studio_namespace)
    await audit(user, "muse.delete", "Muse", name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
