"""The gallery: listing with filters, deleting, favourites and ratings, albums, storage."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from warmpool.api import gallery, gallery_ops
from warmpool.api.deps import RecorderDep, StudioDep, UserDep
from warmpool.api.gallery_schemas import (
    AlbumItemRequest,
    AlbumOut,
    AlbumRequest,
    GenerationDeleted,
    MarkOut,
    MarkRequest,
    UsageOut,
)
from warmpool.api.problems import FieldError, not_found
from warmpool.api.records.audit import utc
from warmpool.api.records.curation import AlbumExistsError, Curation
from warmpool.api.records.tables import Album
from warmpool.api.schemas import OBJECT_NAME_PATTERN, GalleryPage
from warmpool.crds.generationjob import JobKind

router = APIRouter(prefix="/api/v1", tags=["gallery"])

MAX_ID = 2**53
Job = Annotated[str, Path(max_length=253, pattern=OBJECT_NAME_PATTERN)]
Index = Annotated[int, Path(ge=0, le=1000)]
AlbumId = Annotated[int, Path(ge=1, le=MAX_ID)]
CurationDep = Annotated[Curation, Depends(gallery_ops.curation_of)]
TAG = Query(max_length=253)


def _day(value: datetime | date | None, *, end: bool = False) -> datetime | None:
    """A date means its whole UTC day (``until`` a date: up to the end of that day)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc(value)
    start = datetime.combine(value, time.min, tzinfo=UTC)
    return start + timedelta(days=1) if end else start


@router.get("/gallery", summary="My outputs, newest first, filtered")
async def list_gallery(
    studio: StudioDep,
    user: UserDep,
    curation: CurationDep,
    muse: Annotated[str | None, Query(max_length=253)] = None,
    kind: JobKind | None = None,
    tag: Annotated[list[str], TAG] = [],  # noqa: B006 (FastAPI copies defaults)
    rating: Annotated[
        int | None, Query(ge=1, le=5, description="At least this many stars.")
    ] = None,
    favourite: Annotated[bool | None, Query(description="Only favourites (or not).")] = None,
    since: Annotated[date | datetime | None, Query(description="Made on or after.")] = None,
    until: Annotated[
        date | datetime | None, Query(description="Made before (a date: through it).")
    ] = None,
    q: Annotated[
        str, Query(max_length=400, description="Words that must all be in the prompt.")
    ] = "",
    album: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this album of mine.")
    ] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 24,
    all: Annotated[bool, Query(description="Admins: everyone's outputs.")] = False,
) -> GalleryPage:
    """Read from the outputs' metadata records (they outlive the GenerationJob objects);
    several ``tag`` parameters must all match. Each item carries the caller's favourite,
    rating and albums, and links to the gallery's own download and thumbnail routes."""
    keys: frozenset[tuple[str, int]] = frozenset()
    if album is not None:
        if await curation.album(user.name, album) is None:
            raise FieldError(["query", "album"], "not one of your albums", type="unknown_album")
        keys = frozenset(await curation.items(album))
    f = gallery_ops.Filter(
        muse=muse or None, kind=kind, tags=[t for t in tag if t], min_rating=rating,
        favourite=favourite, since=_day(since), until=_day(until, end=True), text=q,
        album=album, album_keys=keys,
    )  # fmt: skip
    found = await gallery_ops.listing(studio, curation, user, f, everyone=all)
    return GalleryPage(
        items=found[offset : offset + limit],
        total=len(found),
        offset=offset,
        limit=limit,
        next_offset=offset + limit if offset + limit < len(found) else None,
    )


@router.get("/gallery/usage", summary="My storage use")
async def storage_use(studio: StudioDep, user: UserDep) -> UsageOut:
    used = await gallery_ops.usage(studio, user)
    days = studio.settings.studio_gallery_retention_days
    return UsageOut(outputs=used.outputs, bytes=used.bytes, retention_days=days)


@router.delete(
    "/gallery/{job}/{index}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an output (file, thumbnail, record)",
)
async def delete_output(
    studio: StudioDep,
    user: UserDep,
    curation: CurationDep,
    job: Job,
    index: Index,
    audit: RecorderDep,
) -> Response:
    record = await gallery_ops.delete_output(studio, curation, user, job, index)
    await audit(user, "output.delete", "Output", f"{job}/{index}", detail={"size": record.size})
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/gallery/{job}", summary="Delete a whole generation's outputs")
async def delete_generation_outputs(
    studio: StudioDep, user: UserDep, curation: CurationDep, job: Job, audit: RecorderDep
) -> GenerationDeleted:
    """Every output of the generation (404 when it has none of the caller's); the
    GenerationJob object, when it still exists, is left to ``DELETE /generations``."""
    removed = await gallery_ops.delete_job_outputs(studio, curation, user, job)
    if not removed:
        raise not_found("generation")
    await audit(user, "output.delete", "GenerationJob", job, detail={"outputs": removed})
    return GenerationDeleted(job=job, outputs=removed)


@router.put("/gallery/{job}/{index}/mark", summary="Favourite and/or rate an output")
async def mark_output(
    studio: StudioDep,
    user: UserDep,
    curation: CurationDep,
    job: Job,
    index: Index,
    req: MarkRequest,
) -> MarkOut:
    await gallery.record_of(studio, user, job, index)  # 404 unless the caller's
    mark = await curation.set_mark(
        user.name, (job, index), favourite=req.favourite, rating=req.rating,
        clear_rating="rating" in req.model_fields_set and req.rating is None,
    )  # fmt: skip
    return MarkOut(job=job, index=index, favourite=mark.favourite, rating=mark.rating)


# ---------------------------------------------------------------- albums


def _exists() -> FieldError:
    return FieldError(["body", "name"], "you have an album of that name", type="exists")


def album_out(album: Album, count: int = 0) -> AlbumOut:
    created = utc(album.created_at).isoformat(timespec="seconds").replace("+00:00", "Z")
    return AlbumOut(id=album.id, name=album.name, count=count, created=created)


async def own_album(curation: Curation, user: UserDep, album_id: int) -> Album:
    album = await curation.album(user.name, album_id)
    if album is None:
        raise not_found("album")
    return album


@router.get("/albums", summary="My albums")
async def list_albums(user: UserDep, curation: CurationDep) -> list[AlbumOut]:
    return [album_out(a, n) for a, n in await curation.albums(user.name)]


@router.post("/albums", status_code=status.HTTP_201_CREATED, summary="Create an album")
async def create_album(
    user: UserDep, curation: CurationDep, req: AlbumRequest, audit: RecorderDep
) -> AlbumOut:
    try:
        album = await curation.create_album(user.name, req.name.strip())
    except AlbumExistsError:
        raise _exists() from None
    await audit(user, "album.create", "Album", str(album.id))
    return album_out(album)


@router.patch("/albums/{album_id}", summary="Rename an album")
async def rename_album(
    user: UserDep, curation: CurationDep, album_id: AlbumId, req: AlbumRequest
) -> AlbumOut:
    album = await own_album(curation, user, album_id)
    try:
        album = await curation.rename_album(album, req.name.strip())
    except AlbumExistsError:
        raise _exists() from None
    return album_out(album, len(await curation.items(album.id)))


@router.delete(
    "/albums/{album_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an album"
)
async def delete_album(
    user: UserDep, curation: CurationDep, album_id: AlbumId, audit: RecorderDep
) -> Response:
    """The album and its share links; the outputs stay in the gallery."""
    await curation.delete_album(await own_album(curation, user, album_id))
    await audit(user, "album.delete", "Album", str(album_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/albums/{album_id}/items", status_code=status.HTTP_201_CREATED, summary="Add an output"
)
async def add_to_album(
    studio: StudioDep,
    user: UserDep,
    curation: CurationDep,
    album_id: AlbumId,
    req: AlbumItemRequest,
) -> AlbumOut:
    album = await own_album(curation, user, album_id)
    await gallery_ops.own_output(studio, user, req.job, req.index)
    await curation.add_item(album, (req.job, req.index))
    return album_out(album, len(await curation.items(album.id)))


@router.delete(
    "/albums/{album_id}/items/{job}/{index}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an output from an album",
)
async def remove_from_album(
    user: UserDep, curation: CurationDep, album_id: AlbumId, job: Job, index: Index
) -> Response:
    album = await own_album(curation, user, album_id)
    if not await curation.remove_item(album, (job, index)):
        raise not_found("album item")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
