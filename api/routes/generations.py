"""Generations: create, estimate, read, list, cancel, progress stream, outputs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.types import Send

from warmpool.api import files, gallery_ops, jobs, metrics, streams
from warmpool.api.accounts import spend_routes
from warmpool.api.deps import RecorderDep, StudioDep, UserDep
from warmpool.api.problems import not_found
from warmpool.api.records.curation import Curation
from warmpool.api.schemas import OBJECT_NAME_PATTERN, EstimateOut, GenerationOut, GenerationPage
from warmpool.api.schemas import GenerationRequest as Req
from warmpool.api.streams import EventStream
from warmpool.crds.generationjob import GenerationJob, JobPhase, Output
from warmpool.operator.adapters import kube

router = APIRouter(prefix="/api/v1", tags=["generations"])

Name = Annotated[str, Path(max_length=253, pattern=OBJECT_NAME_PATTERN)]
Index = Annotated[int, Path(ge=0, le=1000)]
SSE_PING_SECONDS = 15


@router.post("/generations", status_code=status.HTTP_201_CREATED, summary="Create a generation")
async def create_generation(
    studio: StudioDep, user: UserDep, req: Req, audit: RecorderDep, request: Request
) -> GenerationOut:
    """Creates a GenerationJob owned by the caller; answers with its name and estimate.
    402 when its estimate would cross the caller's daily or monthly spending limit."""
    out = await spend_routes.create_within_limits(studio, user, req, request)
    await audit(user, "generation.create", "GenerationJob", out.name, detail={"pool": req.pool})
    return out


@router.post("/estimate", summary="Estimate a generation without creating it")
async def estimate(studio: StudioDep, user: UserDep, req: Req) -> EstimateOut:
    req, pool, muse = await jobs.checked(studio, user, req)
    return jobs.estimate_of(studio, req, pool, muse)


@router.get("/generations", summary="List my generations, newest first")
async def list_generations(
    studio: StudioDep,
    user: UserDep,
    phase: JobPhase | None = None,
    muse: Annotated[str | None, Query(max_length=253)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 24,
    all: Annotated[bool, Query(description="Admins: everyone's generations.")] = False,
) -> GenerationPage:
    objs = await studio.kube.list(
        kube.GENERATIONJOBS,
        studio.settings.studio_namespace,
        label_selector=jobs.owner_selector(user, all),
    )
    chosen = [
        o
        for o in jobs.newest_first(objs)
        if user.may_touch(jobs.owner_of(o))
        and (phase is None or (o.get("status") or {}).get("phase", "Queued") == phase)
        and (muse is None or (o.get("spec") or {}).get("museRef") == muse)
    ]
    page = chosen[offset : offset + limit]
    more = offset + limit < len(chosen)
    return GenerationPage(
        items=[jobs.to_out(o) for o in page],
        total=len(chosen),
        offset=offset,
        limit=limit,
        next_offset=offset + limit if more else None,
    )


@router.get("/generations/{name}", summary="One generation")
async def get_generation(studio: StudioDep, user: UserDep, name: Name) -> GenerationOut:
    return jobs.to_out(await jobs.get_owned(studio, user, kube.GENERATIONJOBS, name))


@router.delete(
    "/generations/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Cancel (delete)"
)
async def cancel_generation(
    studio: StudioDep,
    user: UserDep,
    name: Name,
    audit: RecorderDep,
    curation: Annotated[Curation, Depends(gallery_ops.curation_of)],
) -> Response:
    """Deletes the job (a running one is interrupted) and its stored outputs."""
    await jobs.cancel(studio, user, name)
    await audit(user, "generation.cancel", "GenerationJob", name)
    # A finished job's outputs go with it (a TTL or an admin deleting the object keeps them).
    removed = await gallery_ops.delete_job_outputs(studio, curation, user, name)
    if removed:
        await audit(user, "output.delete", "GenerationJob", name, detail={"outputs": removed})
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/generations/{name}/events",
    summary="Progress as Server-Sent Events",
    response_class=EventStream,
    responses={200: {"content": {streams.MEDIA_TYPE: {}}}},
)
async def generation_events(studio: StudioDep, user: UserDep, name: Name) -> EventStream:
    """``progress`` events (JSON: phase, percent, value, max, message, outputs) in order,
    one per observed change, then ``done`` after the terminal phase."""
    owner = studio.hub.owner(name)  # the watch's copy: no API read per listener
    if owner is None:
        await jobs.get_owned(studio, user, kube.GENERATIONJOBS, name)
    elif not user.may_touch(owner):
        raise not_found(kube.GENERATIONJOBS.kind)

    async def push(send: Send) -> None:
        metrics.SSE_LISTENERS.inc()
        try:
            await studio.fanout.stream(name, send)
        finally:
            metrics.SSE_LISTENERS.dec()

    return EventStream(push=push, ping=SSE_PING_SECONDS)


async def _output(studio: StudioDep, user: UserDep, name: str, index: int) -> tuple[str, Output]:
    job = GenerationJob.from_body(await jobs.get_owned(studio, user, kube.GENERATIONJOBS, name))
    if index >= len(job.status.outputs):
        raise not_found("output")
    return job.metadata.name, job.status.outputs[index]


@router.get(
    "/generations/{name}/outputs/{index}",
    summary="Download an output",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/png": {}, "image/webp": {}, "image/jpeg": {}}}},
)
async def download_output(
    studio: StudioDep,
    user: UserDep,
    name: Name,
    index: Index,
    disposition: Literal["attachment", "inline"] = "attachment",
) -> StreamingResponse:
    job, output = await _output(studio, user, name, index)
    return await files.download(
        studio, key=output.key, content_type=output.content_type, job=job, index=index,
        disposition=disposition,
    )  # fmt: skip


@router.get(
    "/generations/{name}/outputs/{index}/thumbnail",
    summary="Thumbnail of an output (WEBP)",
    response_class=Response,
    responses={200: {"content": {"image/webp": {}}}},
)
async def output_thumbnail(studio: StudioDep, user: UserDep, name: Name, index: Index) -> Response:
    _, output = await _output(studio, user, name, index)
    return await files.thumbnail(studio, key=output.key, sha256=output.sha256)
