"""Uploads, the gallery and the pools."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Path, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from warmpool.api import files, gallery, jobs
from warmpool.api.deps import RecorderDep, StudioDep, UserDep
from warmpool.api.schemas import OBJECT_NAME_PATTERN, PoolOut, UploadOut
from warmpool.crds.gpupool import GpuPool
from warmpool.operator.adapters import kube

router = APIRouter(prefix="/api/v1", tags=["library"])

Job = Annotated[str, Path(max_length=253, pattern=OBJECT_NAME_PATTERN)]
Index = Annotated[int, Path(ge=0, le=1000)]


@router.post("/uploads", status_code=status.HTTP_201_CREATED, summary="Upload a reference image")
async def upload(
    studio: StudioDep,
    user: UserDep,
    file: Annotated[UploadFile, File(description="PNG, JPEG or WEBP.")],
    audit: RecorderDep,
) -> UploadOut:
    """Stores the image under a key the server makes; refuses other types and big files."""
    data = await file.read(studio.uploads.max_bytes + 1)
    stored = await studio.uploads.save(user, data)
    await audit(user, "upload.create", "Upload", stored.key, detail={"size": stored.size})
    return UploadOut(
        key=stored.key,
        content_type=stored.content_type,
        size=stored.size,
        width=stored.width,
        height=stored.height,
    )


@router.get(
    "/gallery/{job}/{index}",
    summary="Download an output of the gallery",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/png": {}, "image/webp": {}, "image/jpeg": {}}}},
)
async def download_gallery_output(
    studio: StudioDep,
    user: UserDep,
    job: Job,
    index: Index,
    disposition: Literal["attachment", "inline"] = "attachment",
) -> StreamingResponse:
    """Output ``index`` of generation ``job``, found through its metadata record (the
    job object may be gone); 404 when missing or someone else's."""
    record = await gallery.record_of(studio, user, job, index)
    return await files.download(
        studio, key=record.key, content_type=record.content_type, job=job, index=index,
        disposition=disposition,
    )  # fmt: skip


@router.get(
    "/gallery/{job}/{index}/thumbnail",
    summary="Thumbnail of an output of the gallery (WEBP)",
    response_class=Response,
    responses={200: {"content": {"image/webp": {}}}},
)
async def gallery_thumbnail(studio: StudioDep, user: UserDep, job: Job, index: Index) -> Response:
    record = await gallery.record_of(studio, user, job, index)
    return await files.thumbnail(studio, key=record.key, sha256=record.sha256)


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
                default_model=jobs.default_model(pool),
                loras=[m.file for m in pool.spec.template.models if m.folder == "loras"],
                checkpoints=jobs.checkpoints_out(studio, pool),
                reference_modes=jobs.reference_modes(studio, pool),
            )
        )
    return out
