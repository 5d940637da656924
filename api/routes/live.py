"""Live pool status for the create page, and previews of uploaded reference images."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from warmpool.api import files, gallery, metrics, streams
from warmpool.api.deps import StudioDep, UserDep, records_of
from warmpool.api.problems import not_found
from warmpool.api.routes import library
from warmpool.api.schemas import GalleryItem, Out
from warmpool.api.streams import EventStream
from warmpool.crds.musetraits import CHOICES, Traits

router = APIRouter(prefix="/api/v1", tags=["library"])
SSE_PING_SECONDS = 15
UPLOAD_KEY = Query(min_length=10, max_length=512, description="The key an upload answered.")


@router.get(
    "/pools/events",
    summary="The pools I may use, as Server-Sent Events on every change",
    response_class=EventStream,
    responses={200: {"content": {streams.MEDIA_TYPE: {}}}},
)
async def pool_events(studio: StudioDep, user: UserDep, request: Request) -> EventStream:
    """A ``pools`` event (the same JSON list as ``GET /pools``) now and after each change
    of a GpuPool, from the studio's one shared pool watch."""
    watch = records_of(request).pools

    async def events() -> AsyncGenerator[bytes, None]:
        metrics.SSE_LISTENERS.inc()
        try:
            async with watch.changes() as changed:
                last = ""
                while True:
                    changed.clear()
                    pools = await library.list_pools(studio, user)
                    text = json.dumps([p.model_dump(by_alias=True) for p in pools])
                    if text != last:
                        last = text
                        yield streams.encode_text("pools", text)
                    await changed.wait()
        finally:
            metrics.SSE_LISTENERS.dec()

    return EventStream(events(), ping=SSE_PING_SECONDS)


@router.get(
    "/uploads/preview",
    summary="A thumbnail of one of my uploads (WEBP)",
    response_class=Response,
    responses={200: {"content": {"image/webp": {}}}},
)
async def upload_preview(
    studio: StudioDep, user: UserDep, key: Annotated[str, UPLOAD_KEY]
) -> Response:
    """For the reference images of muses and the image-to-image start; 404 unless the
    key has the shape of the caller's own upload."""
    # Thumbnails are cached by digest: the upload itself must exist, or a key of the
    # caller's shape naming someone else's digest would show their cached thumbnail.
    if not studio.uploads.owns(user, key) or await studio.uploads.store.head(key) is None:
        raise not_found("upload")
    digest = key.rsplit("/", 1)[-1].partition(".")[0]
    return await files.thumbnail(studio, key=key, sha256=digest)


@router.get("/muses/traits", summary="The pick lists of a muse's structured attributes")
async def muse_traits(user: UserDep) -> dict[str, list[str]]:
    """Attribute (camelCase, as in ``spec.traits``) → its choices, in the editor's order."""
    aliases = {name: field.alias or name for name, field in Traits.model_fields.items()}
    return {aliases[name]: list(values) for name, values in CHOICES.items()}


class MuseHistory(Out):
    generations: int
    outputs: int
    latest: GalleryItem


@router.get("/muses/history", summary="Per muse: my generations with it, and the latest")
async def muse_history(studio: StudioDep, user: UserDep) -> dict[str, MuseHistory]:
    """From the outputs' records (they outlive the jobs): muse name → how many
    generations and outputs, and the newest output (an image when it has one)."""
    found = await gallery.records(studio, user)  # newest job first
    jobs: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    latest: dict[str, GalleryItem] = {}
    for record in found:
        if not record.muse:
            continue
        jobs.setdefault(record.muse, set()).add(record.job)
        counts[record.muse] = counts.get(record.muse, 0) + 1
        have = latest.get(record.muse)
        if have is None or (have.job == record.job and not have.content_type.startswith("image/")):
            latest[record.muse] = gallery.item_of(record)
    return {
        m: MuseHistory(generations=len(jobs[m]), outputs=counts[m], latest=latest[m]) for m in jobs
    }
