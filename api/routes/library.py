"""Uploads, the gallery and the pools."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile, status

from warmpool.api import gallery, jobs
from warmpool.api.deps import StudioDep, UserDep
from warmpool.api.schemas import GalleryPage, PoolOut, UploadOut
from warmpool.crds.generationjob import JobKind
from warmpool.crds.gpupool import GpuPool
from warmpool.operator.adapters import kube

router = APIRouter(prefix="/api/v1", tags=["library"])


@router.post("/uploads", status_code=status.HTTP_201_CREATED, summary="Upload a reference image")
async def upload(
    studio: StudioDep,
    user: UserDep,
    file: Annotated[UploadFile, File(description="PNG, JPEG or WEBP.")],
) -> UploadOut:
    """Stores the image under a key the server makes; refuses other types and big files."""
    data = await file.read(studio.uploads.max_bytes + 1)
    stored = await studio.uploads.save(user, data)
    return UploadOut(
        key=stored.key,
        content_type=stored.content_type,
        size=stored.size,
        width=stored.width,
        height=stored.height,
    )


@router.get("/gallery", summary="My outputs, newest first")
async def list_gallery(
    studio: StudioDep,
    user: UserDep,
    muse: Annotated[str | None, Query(max_length=253)] = None,
    kind: JobKind | None = None,
    tag: Annotated[str | None, Query(max_length=253)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 24,
    all: Annotated[bool, Query(description="Admins: everyone's outputs.")] = False,
) -> GalleryPage:
    found = await gallery.items(studio, user, muse=muse, kind=kind, tag=tag, everyone=all)
    return GalleryPage(
        items=found[offset : offset + limit],
        total=len(found),
        offset=offset,
        limit=limit,
        next_offset=offset + limit if offset + limit < len(found) else None,
    )


@router.get("/pools", summary="The pools I may use")
async def list_pools(studio: StudioDep, user: UserDep) -> list[PoolOut]:
    objs = await studio.kube.list(kube.GPUPOOLS, studio.settings.studio_namespace)
    allowed = studio.settings.studio_pools
    out = []
    for obj in sorted(objs, key=lambda o: str(o["metadata"]["name"])):
        pool = GpuPool.from_body(obj)
        if allowed and pool.metadata.name not in allowed:
            continue
        out.append(
            PoolOut(
                name=pool.metadata.name,
                ready=pool.status.ready_replicas > 0 and not pool.spec.paused,
                paused=pool.spec.paused,
                replicas=pool.status.replicas,
                ready_replicas=pool.status.ready_replicas,
                queued_jobs=pool.status.queued_jobs,
                running_jobs=pool.status.running_jobs,
                price_per_hour=jobs.price_per_hour(studio, pool),
                models=jobs.pool_models(studio, pool),
            )
        )
    return out
