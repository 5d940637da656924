"""The gallery: a user's outputs newest first, read from their GenerationJobs.

Every output a job produced is recorded in its ``status.outputs`` (key, type, size,
digest, dimensions) and the job's spec says who, which muse, which kind and tags;
so the gallery is a view of the cluster, addressed by (job, index), never by key.
"""

from __future__ import annotations

from typing import Any

from warmpool.api import urls
from warmpool.api.auth import OWNER_LABEL, User
from warmpool.api.jobs import newest_first, owner_of
from warmpool.api.schemas import GalleryItem
from warmpool.api.state import Studio
from warmpool.crds.generationjob import GenerationJob
from warmpool.operator.adapters import kube


async def items(
    studio: Studio,
    user: User,
    *,
    muse: str | None = None,
    kind: str | None = None,
    tag: str | None = None,
    everyone: bool = False,
) -> list[GalleryItem]:
    selector = None if (everyone and user.admin) else f"{OWNER_LABEL}={user.label}"
    objs = await studio.kube.list(
        kube.GENERATIONJOBS, studio.settings.studio_namespace, label_selector=selector
    )
    found: list[GalleryItem] = []
    for obj in newest_first([o for o in objs if user.may_touch(owner_of(o))]):
        if not (obj.get("status") or {}).get("outputs"):
            continue
        job = GenerationJob.from_body(obj)
        spec = job.spec
        if muse is not None and spec.muse_ref != muse:
            continue
        if kind is not None and spec.kind != kind:
            continue
        if tag is not None and tag not in spec.tags:
            continue
        found.extend(_items_of(job, obj))
    return found


def _items_of(job: GenerationJob, obj: dict[str, Any]) -> list[GalleryItem]:
    name = job.metadata.name
    created = job.status.finished_at or job.metadata.creation_timestamp
    return [
        GalleryItem(
            job=name,
            index=i,
            owner=job.spec.owner,
            muse=job.spec.muse_ref,
            kind=job.spec.kind,
            prompt=job.spec.prompt,
            created=created,
            content_type=o.content_type,
            size=o.size,
            width=o.width,
            height=o.height,
            tags=job.spec.tags,
            url=urls.output(name, i),
            thumbnail_url=urls.thumbnail(name, i),
        )
        for i, o in enumerate(job.status.outputs)
    ]
