"""The gallery: a user's outputs newest first, read from the outputs' metadata records.

Next to every output the operator writes an :class:`~artifacts.OutputRecord`
(``records/<namespace>/<job>/<index>.<ext>.json``: owner, muse, kind, prompt, tags,
type, size, digest, dimensions), so the gallery outlives the GenerationJob objects
(deleted by a pool's ``spec.jobs.ttl`` or by an admin) while the artifacts stay.

An output is addressed by (job name, index), never by a key or path from the client:
:func:`record_of` lists the job's record prefix (built from the configured namespace
and the validated job name), takes the record named ``<index>.<ext>.json``, checks that
it describes exactly the output key it sits next to, and checks the owner from it.

Cost: :meth:`ArtifactStore.list_records` lists the namespace's records on each request
and reads only those that are new or rewritten since the last listing (the store keeps
parsed records by version): 2,000 records take ~1.2 s the first time, ~0.13 s after, on a
file store. Pagination is exact: the whole filtered list is ordered, then sliced.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from warmpool.api import urls
from warmpool.api.auth import User
from warmpool.api.problems import not_found
from warmpool.api.schemas import GalleryItem
from warmpool.api.state import Studio
from warmpool.crds.generationjob import JobKind
from warmpool.operator import errors
from warmpool.operator.adapters import artifacts

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _prefix(studio: Studio, job: str | None = None) -> str:
    base = f"{artifacts.RECORDS}/{studio.settings.studio_namespace}"
    return f"{base}/{job}" if job is not None else base


def _consistent(studio: Studio, record: artifacts.OutputRecord) -> bool:
    """The record's key is the output its own namespace, job and index name."""
    ns = studio.settings.studio_namespace
    own = f"{artifacts.OUTPUTS}/{ns}/{record.job}/{record.index}"
    return record.namespace == ns and record.key.rpartition(".")[0] == own


def _when(record: artifacts.OutputRecord) -> datetime:
    created = record.created or _EPOCH
    return created if created.tzinfo else created.replace(tzinfo=UTC)


#: Public names of the two helpers, for :mod:`warmpool.api.gallery_ops`.
consistent = _consistent
when = _when


def ordered(records: list[artifacts.OutputRecord]) -> list[artifacts.OutputRecord]:
    """Jobs newest first (by their newest output), each job's outputs by index."""
    newest: dict[str, datetime] = {}
    for r in records:
        newest[r.job] = max(newest.get(r.job, _EPOCH), _when(r))
    by_index = sorted(records, key=lambda r: r.index)
    return sorted(by_index, key=lambda r: (newest[r.job], r.job), reverse=True)


async def records(
    studio: Studio,
    user: User,
    *,
    muse: str | None = None,
    kind: str | None = None,
    tag: str | None = None,
    everyone: bool = False,
) -> list[artifacts.OutputRecord]:
    """The caller's records (an admin asking for ``everyone``: all), filtered, ordered."""
    owner = None if (everyone and user.admin) else user.name
    found = await studio.uploads.store.list_records(owner, prefix=_prefix(studio))
    return ordered(
        [
            r
            for r in found
            if _consistent(studio, r)
            and user.may_touch(r.owner or "")
            and (muse is None or r.muse == muse)
            and (kind is None or r.kind == kind)
            and (tag is None or tag in r.tags)
        ]
    )


def item_of(record: artifacts.OutputRecord) -> GalleryItem:
    kind: JobKind = "video" if record.kind == "video" else "image"
    return GalleryItem(
        job=record.job,
        index=record.index,
        owner=record.owner or "",
        muse=record.muse,
        kind=kind,
        prompt=record.prompt,
        created=_when(record).isoformat().replace("+00:00", "Z") if record.created else None,
        content_type=record.content_type,
        size=record.size,
        width=record.width,
        height=record.height,
        tags=record.tags,
        pool=record.pool,
        model=record.model,
        negative_prompt=record.negative_prompt,
        references=record.references,
        url=urls.gallery_output(record.job, record.index),
        thumbnail_url=urls.gallery_thumbnail(record.job, record.index),
    )


async def record_of(studio: Studio, user: User, job: str, index: int) -> artifacts.OutputRecord:
    """The record of output ``index`` of ``job`` when the caller may see it; 404 otherwise
    (missing, unreadable, someone else's: the same answer, nothing leaks)."""
    store = studio.uploads.store
    try:
        prefix = artifacts.validate_key(_prefix(studio, job))
        keys = await store.list(prefix)
    except errors.ArtifactKeyError:
        raise not_found("output") from None
    name = re.compile(rf"{re.escape(prefix)}/{index}\.[a-z0-9]{{1,8}}\.json")
    for key in keys:
        if not name.fullmatch(key):
            continue
        try:
            record = artifacts.OutputRecord.model_validate(await store.get_json(key))
            # The record must describe exactly the output it sits next to.
            sound = artifacts.record_key(record.key) == key and record.job == job
        except (errors.ArtifactError, ValueError):
            continue
        if sound and record.index == index and user.may_touch(record.owner or ""):
            return record
    raise not_found("output")
