"""Curating the gallery: filters over records and marks, deleting outputs and whole
generations, storage use, and the retention clean-up.

An output lives in three places: its file (``outputs/…``), its thumbnail
(``thumbnails/<sha256>-<size>.webp``) and its metadata record (``records/…``); the
records database adds the user's marks, album items and share links. Deleting an
output removes all of them (the record last, so a failure half-way leaves the output
listed and deletable again, never an orphaned file that nothing lists).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fastapi import HTTPException, Request, status

from warmpool.api import gallery
from warmpool.api.auth import User
from warmpool.api.deps import records_of
from warmpool.api.problems import FieldError, not_found
from warmpool.api.records.curation import Curation, Key, Mark
from warmpool.api.schemas import GalleryItem
from warmpool.api.state import Studio
from warmpool.operator import errors
from warmpool.operator.adapters import artifacts

logger = logging.getLogger(__name__)


async def curation_of(request: Request) -> Curation:
    """The app's one :class:`Curation` over the records database."""
    state = request.app.state
    found: Curation | None = getattr(state, "curation", None)
    if found is None:
        found = state.curation = Curation(records_of(request).db)
    return found


@dataclass(frozen=True)
class Filter:
    """What the gallery lists; every given condition must hold."""

    muse: str | None = None
    kind: str | None = None
    tags: Sequence[str] = ()
    min_rating: int | None = None
    favourite: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str = ""
    album: int | None = None
    album_keys: frozenset[Key] = field(default_factory=frozenset)

    def words(self) -> list[str]:
        return [w for w in self.text.lower().split() if w]


def matches(record: artifacts.OutputRecord, mark: Mark, f: Filter) -> bool:
    """One record against the filter (marks are the caller's)."""
    created = gallery.when(record)
    prompt = record.prompt.lower()
    return (
        (f.muse is None or record.muse == f.muse)
        and (f.kind is None or record.kind == f.kind)
        and all(t in record.tags for t in f.tags)
        and (f.min_rating is None or (mark.rating or 0) >= f.min_rating)
        and (f.favourite is None or mark.favourite == f.favourite)
        and (f.since is None or created >= f.since)
        and (f.until is None or created < f.until)
        and all(w in prompt for w in f.words())
        and (f.album is None or (record.job, record.index) in f.album_keys)
    )


async def listing(
    studio: Studio, curation: Curation, user: User, f: Filter, *, everyone: bool = False
) -> list[GalleryItem]:
    """The caller's outputs (an admin's ``everyone``: all) that match, ordered."""
    found = await gallery.records(studio, user, everyone=everyone)
    marks = await curation.marks(user.name)
    albums = await curation.memberships(user.name)
    out = []
    for r in found:
        key = (r.job, r.index)
        mark = marks.get(key, Mark())
        if matches(r, mark, f):
            out.append(item_with(r, mark, albums.get(key, [])))
    return out


def item_with(record: artifacts.OutputRecord, mark: Mark, albums: list[int]) -> GalleryItem:
    return gallery.item_of(record).model_copy(
        update={"favourite": mark.favourite, "rating": mark.rating, "albums": sorted(albums)}
    )


async def own_output(studio: Studio, user: User, job: str, index: int) -> artifacts.OutputRecord:
    """The caller's output named in a request body; 422 on ``job`` otherwise."""
    try:
        return await gallery.record_of(studio, user, job, index)
    except HTTPException as e:
        if e.status_code != status.HTTP_404_NOT_FOUND:
            raise
        raise FieldError(["body", "job"], "not one of your outputs", type="unknown_output") from e


# ---------------------------------------------------------------- deleting


async def _remove_files(studio: Studio, record: artifacts.OutputRecord) -> None:
    store = studio.uploads.store
    await store.delete(record.key)
    if re.fullmatch(r"[0-9a-f]{64}", record.sha256):
        await store.delete(f"thumbnails/{record.sha256}-{studio.uploads.thumb_size}.webp")
    await store.delete(artifacts.record_key(record.key))


async def delete_output(
    studio: Studio, curation: Curation, user: User, job: str, index: int
) -> artifacts.OutputRecord:
    """The output's file, thumbnail, record and rows; 404 when not the caller's."""
    record = await gallery.record_of(studio, user, job, index)
    await _remove_files(studio, record)
    await curation.forget(job, index)
    return record


async def job_records(studio: Studio, user: User, job: str) -> list[artifacts.OutputRecord]:
    """Every record of the job that the caller may touch (others' are never listed)."""
    try:
        prefix = artifacts.validate_key(f"{artifacts.RECORDS}/{studio.settings.studio_namespace}")
        found = await studio.uploads.store.list_records(None, prefix=f"{prefix}/{job}")
    except errors.ArtifactKeyError:
        raise not_found("generation") from None
    return [r for r in found if gallery.consistent(studio, r) and user.may_touch(r.owner or "")]


async def delete_job_outputs(studio: Studio, curation: Curation, user: User, job: str) -> int:
    """All of the job's outputs the caller owns; how many were removed."""
    records = await job_records(studio, user, job)
    for record in records:
        await _remove_files(studio, record)
        await curation.forget(job, record.index)
    return len(records)


# ---------------------------------------------------------------- storage and retention


@dataclass(frozen=True)
class Usage:
    outputs: int
    bytes: int


async def usage(studio: Studio, user: User) -> Usage:
    found = await gallery.records(studio, user)
    return Usage(outputs=len(found), bytes=sum(r.size for r in found))


def expired(
    records: Sequence[artifacts.OutputRecord], kept: set[Key], *, now: datetime, age: timedelta
) -> list[artifacts.OutputRecord]:
    """The records older than ``age`` that nobody favourited or put in an album."""
    cutoff = now - age
    return [
        r
        for r in records
        if r.created is not None and gallery.when(r) < cutoff and (r.job, r.index) not in kept
    ]


async def sweep(studio: Studio, curation: Curation, *, now: datetime) -> int:
    """One retention pass over the namespace; how many outputs were deleted."""
    days = studio.settings.studio_gallery_retention_days
    if days is None:
        return 0
    prefix = f"{artifacts.RECORDS}/{studio.settings.studio_namespace}"
    found = await studio.uploads.store.list_records(None, prefix=prefix)
    found = [r for r in found if gallery.consistent(studio, r)]
    old = expired(found, await curation.kept(), now=now, age=timedelta(days=days))
    for record in old:
        await _remove_files(studio, record)
        await curation.forget(record.job, record.index)
    return len(old)


async def retention_loop(studio: Studio, curation: Curation) -> None:
    """Sweep now and then, forever (a failure is logged, the loop goes on)."""
    while True:
        try:
            removed = await sweep(studio, curation, now=datetime.now(UTC))
            if removed:
                logger.info("gallery retention removed %d outputs", removed)
        except Exception:
            logger.exception("the gallery retention clean-up failed")
        await asyncio.sleep(studio.settings.studio_gallery_cleanup_seconds)
