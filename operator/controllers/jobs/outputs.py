"""Storing one output of a job: fetch it from ``/view`` into the artifact store.

An image is fetched whole into memory (at most ``WARMPOOL_COMFY_MAX_IMAGE_BYTES``) and
checked before anything is stored: an empty file, one that is not a decodable image or
animation, or a single flat colour is refused (:class:`errors.JobOutputError`: the job
is retried elsewhere); one that passes is stored in one write (hashed there: the sha256
recorded is of what was stored). A video is never held: it streams to the store, at most
``WARMPOOL_COMFY_MAX_VIDEO_BYTES``. Past its cap the download stops, nothing is stored,
and :class:`errors.ComfyAnswerTooLargeError` is raised (the host is cooled down).
Next to each output goes its metadata record (:class:`artifacts.OutputRecord`), so that
the gallery can list outputs without reading the job objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from warmpool.crds.generationjob import GenerationJobSpec, Output, ReferenceUse
from warmpool.operator import errors, metrics
from warmpool.operator.adapters import artifacts, comfy
from warmpool.operator.controllers.jobs.facts import JobFacts
from warmpool.operator.decisions import scheduler, workflows
from warmpool.operator.deps import Deps


@dataclass(frozen=True)
class Stored:
    output: Output
    record_key: str


class Refused(Exception):
    """The outputs could not be stored: the failure's kind (for
    :func:`scheduler.decide_failure`) and its message."""

    def __init__(self, kind: scheduler.FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


def record_of(
    job: JobFacts,
    spec: GenerationJobSpec,
    pool: str,
    *,
    now: datetime,
    references: ReferenceUse | None = None,
) -> dict[str, Any]:
    """The metadata stored next to each output of ``job`` (the gallery lists these)."""
    return {
        "namespace": job.namespace, "job": job.name, "kind": spec.kind,
        "owner": spec.owner or None, "pool": pool, "muse": spec.muse_ref,
        "prompt": spec.prompt, "negativePrompt": spec.negative_prompt,
        "model": spec.model or workflows.DEFAULT_CHECKPOINT, "created": now,
        "tags": list(spec.tags), "references": references,
    }  # fmt: skip


async def store_all(
    deps: Deps,
    client: comfy.ComfyClient,
    files: Iterable[comfy.OutputFile],
    *,
    record: dict[str, Any],
) -> list[Stored]:
    """Every ``output``-type file of a prompt, stored in order; :class:`Refused` when there
    is none, or one is refused, too large, lost with the instance, or the store is down."""
    wanted = [f for f in files if f.type == "output"]
    if not wanted:
        raise Refused("bad_output", "the prompt produced no output")
    stored: list[Stored] = []
    for index, file in enumerate(wanted):
        try:
            stored.append(await store(deps, client, file, index=index, record=record))
        except errors.JobOutputError as exc:
            raise Refused("bad_output", str(exc)) from None
        except errors.ComfyAnswerTooLargeError as exc:
            raise Refused("too_large", f"fetching outputs: {exc}") from None
        except errors.ComfyError as exc:
            raise Refused("instance_lost", f"fetching outputs: {exc}") from None
        except errors.ArtifactError as exc:  # the store is down: try again later
            raise Refused("store_unavailable", f"storing outputs: {exc}") from None
    return stored


def observe(
    stored: list[Stored], spec: GenerationJobSpec, *, namespace: str, pool: str, gpu: str,
    cost: float,
) -> None:  # fmt: skip
    """Output bytes and cost per output (per image, or per second of video)."""
    for item in stored:
        metrics.OUTPUT_BYTES.labels(namespace, pool).inc(item.output.size)
    if spec.kind == "video":
        fps = spec.fps or workflows.DEFAULT_FPS
        seconds = sum((s.output.frames or 1) for s in stored) / fps
        metrics.OUTPUT_COST.labels(namespace, pool, gpu, "video").observe(cost / max(seconds, 1e-9))
    else:
        per = cost / max(len(stored), 1)
        for _ in stored:
            metrics.OUTPUT_COST.labels(namespace, pool, gpu, "image").observe(per)


async def store(
    deps: Deps,
    client: comfy.ComfyClient,
    file: comfy.OutputFile,
    *,
    index: int,
    record: dict[str, Any],
) -> Stored:
    """Store ``file`` at ``outputs/<ns>/<job>/<index>.<ext>`` (an image checked first),
    write its record; the :class:`Output` for ``status.outputs``."""
    ctype = artifacts.content_type_for_key(file.filename)
    key = artifacts.output_key(str(record["namespace"]), str(record["job"]), index,
                               artifacts.extension_for(ctype))  # fmt: skip
    facts: artifacts.ImageFacts | None = None
    if ctype.startswith("image/"):
        data = await _fetch_whole(client, file, ctype)
        try:
            facts = artifacts.check_output(data)
        except errors.ArtifactInvalidError as exc:
            raise errors.JobOutputError(f"{file.filename}: {exc}") from None
        stored = await deps.artifacts.put_bytes(key, data, content_type=ctype)
    else:
        stored = await _stream(deps, client, file, ctype, key)
    output = Output(
        key=key, content_type=stored.content_type, size=stored.size, sha256=stored.sha256,
        width=facts.width if facts else None, height=facts.height if facts else None,
        frames=facts.frames if facts and facts.frames > 1 else None,
    )  # fmt: skip
    meta = artifacts.OutputRecord.model_validate({
        **record, "key": key, "index": index, "contentType": output.content_type,
        "size": output.size, "sha256": output.sha256, "width": output.width,
        "height": output.height, "frames": output.frames,
    })  # fmt: skip
    written = await deps.artifacts.put_record(meta)
    return Stored(output, written.key)


async def _fetch_whole(client: comfy.ComfyClient, file: comfy.OutputFile, ctype: str) -> bytes:
    """An image's bytes (at most its cap): checked before anything is stored."""
    buffer = bytearray()
    stream = client.fetch_output(file, limit=client.limits.for_output(ctype))
    try:
        async for chunk in stream:
            buffer.extend(chunk)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    if not buffer:
        raise errors.JobOutputError(f"{file.filename} is empty")
    return bytes(buffer)


async def _stream(
    deps: Deps, client: comfy.ComfyClient, file: comfy.OutputFile, ctype: str, key: str
) -> artifacts.StoredObject:
    """A video, streamed into ``key`` (never held whole); nothing stays of one cut off."""
    refused: list[errors.ComfyError] = []
    seen = False

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal seen
        stream = client.fetch_output(file, limit=client.limits.for_output(ctype))
        try:
            async for chunk in stream:
                seen = seen or bool(chunk)
                yield chunk
        except errors.ComfyError as exc:
            refused.append(exc)  # the store may wrap what its writer raised
            raise
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    try:
        stored = await deps.artifacts.put_stream(key, chunks(), content_type=ctype)
    except Exception:
        if refused:
            await deps.artifacts.delete(key)  # nothing half-written stays
            raise refused[0] from None
        raise
    if not seen:
        await deps.artifacts.delete(key)
        raise errors.JobOutputError(f"{file.filename} is empty")
    return stored
