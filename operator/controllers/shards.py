"""What one shard writes as Kopf's bookkeeping, and letting go of another shard's.

Label shards (``pool_selector``) watch the same objects and filter with ``when=``. Kopf
adds its finalizer to an object one of its handlers needs to see deleted, and removes it
from an object none of its handlers match: with one finalizer name for all shards, every
shard removed the finalizer the owning shard had just added, on every event of the other
shard's objects. Each label shard therefore has a finalizer and an annotation prefix of its
own (:func:`persistence_names`). When an object is deleted, the shard that handles it also
removes the finalizers of warmpool shards that are not its own (:func:`release_others`):
a former owner (a pool moved to another shard while that shard was down), or the
unsharded name of a fleet that was sharded later, would otherwise keep it forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import kopf

from warmpool.operator import errors
from warmpool.operator.adapters import kube
from warmpool.operator.deps import Deps

#: The unsharded names (and the root of every shard's).
PREFIX = "warmpool.dev"
FINALIZER = f"{PREFIX}/kopf-finalizer"


def persistence_names(shard: str) -> tuple[str, str]:
    """(annotation prefix, finalizer) of Kopf's bookkeeping for a shard ("" unsharded)."""
    if not shard:
        return PREFIX, FINALIZER
    return f"{shard}.shards.{PREFIX}", f"{FINALIZER}-{shard}"


#: Kinds with no changing or daemon handler (only indexes and ``on.event``): Kopf's
#: diff-base of their events is never read, so it is not built (see :class:`DiffBase`).
NO_DIFF_KINDS = frozenset({"GenerationJob"})


class DiffBase(kopf.AnnotationsDiffBaseStorage):
    """Kopf's diff-base in annotations, skipped for :data:`NO_DIFF_KINDS`.

    Kopf builds the "essence" of every event's body (a deep copy minus metadata and
    status) and compares it with the last handled one, for every kind, whether or not a
    handler of that kind reacts to changes. A GenerationJob has none: its essence was
    built and thrown away on each of its events (a fifth of the operator's Kopf time per
    job, ``bench/jobs.py``). For those kinds both sides are empty: no change, ever."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        if body.get("kind") in NO_DIFF_KINDS:
            return kopf.BodyEssence()
        return super().build(body=body, extra_fields=extra_fields)

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        if body.get("kind") in NO_DIFF_KINDS:
            return kopf.BodyEssence()
        return super().fetch(body=body)


def is_warmpool_finalizer(name: str) -> bool:
    return name == FINALIZER or name.startswith(f"{FINALIZER}-")


async def release_others(deps: Deps, res: kube.Resource, body: Mapping[str, Any]) -> None:
    """Remove the warmpool finalizers other than this shard's own from an object being
    deleted (a conflict is retried by Kopf; the object already gone counts as done)."""
    own = persistence_names(deps.settings.shard_key)[1]
    meta = body.get("metadata") or {}
    present = list(meta.get("finalizers") or [])
    kept = [f for f in present if f == own or not is_warmpool_finalizer(f)]
    if kept == present:
        return
    patch = {"metadata": {"resourceVersion": meta.get("resourceVersion"), "finalizers": kept}}
    try:
        await deps.kube.patch(res, meta.get("name") or "", meta.get("namespace") or "default",
                              patch)  # fmt: skip
    except errors.KubeNotFoundError:
        return
