"""The artifact store: generated outputs, uploads and their metadata records.

``WARMPOOL_ARTIFACTS_URL`` selects a local directory (``file://.warmpool/artifacts``,
``file:///abs/dir``) or an S3-compatible bucket (``s3://bucket/prefix``); both are
served by obstore, which streams in both directions. S3 credentials come from the
standard ``AWS_*`` environment variables only and are never logged.

Keys (pure helpers, validated: no ``..``, no leading ``/``, a restricted charset)::

    outputs/<namespace>/<job>/<index>.<ext>          an output of a GenerationJob
    records/<namespace>/<job>/<index>.<ext>.json     its metadata record (OutputRecord)
    uploads/<owner>/<sha256>.<ext>                   a user upload, content-addressed

Prefixes given to :meth:`ArtifactStore.list` match whole path segments
(``records/ns`` lists ``records/ns/...``, not ``records/ns2/...``).

About 530 lines on purpose: the key codec, the streaming writes and reads over obstore
(both backends) and the version-cached records are one store and share its handle.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import mimetypes
import os
import re
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, NamedTuple, cast

import obstore.exceptions
from obstore.store import LocalStore, S3Store
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from warmpool.crds.generationjob import ReferenceUse
from warmpool.operator import errors
from warmpool.operator.settings import OperatorSettings

__all__ = [
    "ArtifactStore",
    "ImageFacts",
    "ObjectInfo",
    "ObjectStream",
    "OutputRecord",
    "StoredObject",
    "check_output",
    "content_type_for_key",
    "extension_for",
    "from_settings",
    "image_facts",
    "open_store",
    "output_key",
    "record_key",
    "sniff_content_type",
    "upload_key",
    "validate_key",
]

logger = logging.getLogger(__name__)

OUTPUTS: Final = "outputs"
RECORDS: Final = "records"
UPLOADS: Final = "uploads"
MAX_KEY: Final = 512
READ_CHUNK: Final = 256 * 1024
RECORD_READS: Final = 16  # records fetched concurrently by list_records
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+=-]{0,127}")
_EXT = re.compile(r"[a-z0-9]{1,8}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
Records = list["OutputRecord"]
Keys = list[str]  # `list` is also a method name of ArtifactStore
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")

_TYPES: Final = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "application/json": "json",
}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_BY_EXT: Final = {ext: ct for ct, ext in _TYPES.items()} | {"jpeg": "image/jpeg"}


# ---------------------------------------------------------------- keys


def validate_key(key: str) -> str:
    """The key itself when acceptable, else :class:`ArtifactKeyError`: segments of
    letters, digits and ``._@+=-`` not starting with a dot, joined by single slashes."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise errors.ArtifactKeyError(f"artifact key must be 1..{MAX_KEY} characters")
    if not all(_SEGMENT.fullmatch(part) for part in key.split("/")):
        raise errors.ArtifactKeyError(f"artifact key refused: {key[:80]!r}")
    return key


def _prefix(prefix: str) -> str | None:
    prefix = prefix.rstrip("/")
    return validate_key(prefix) if prefix else None


def _ext(ext: str) -> str:
    ext = ext.lower().lstrip(".")
    if not _EXT.fullmatch(ext):
        raise errors.ArtifactKeyError(f"file extension refused: {ext[:20]!r}")
    return ext


def output_key(namespace: str, job: str, index: int, ext: str) -> str:
    """``outputs/<namespace>/<job>/<index>.<ext>``."""
    if index < 0:
        raise errors.ArtifactKeyError("output index must be >= 0")
    return validate_key(f"{OUTPUTS}/{namespace}/{job}/{index}.{_ext(ext)}")


def record_key(output: str) -> str:
    """The metadata record of an output: ``records/<rest of the output key>.json``."""
    head, _, rest = validate_key(output).partition("/")
    if head != OUTPUTS or not rest:
        raise errors.ArtifactKeyError(f"not an output key: {output[:80]!r}")
    return validate_key(f"{RECORDS}/{rest}.json")


def upload_key(owner: str, sha256: str, ext: str) -> str:
    """``uploads/<owner>/<sha256>.<ext>``: the same bytes from one owner share a key."""
    if not _SHA256.fullmatch(sha256):
        raise errors.ArtifactKeyError("sha256 must be 64 lowercase hex digits")
    return validate_key(f"{UPLOADS}/{owner}/{sha256}.{_ext(ext)}")


# ---------------------------------------------------------------- content


def sniff_content_type(head: bytes) -> str | None:
    """The MIME type from the first bytes: magic numbers, then Pillow's identification."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    try:
        with Image.open(io.BytesIO(head)) as img:
            return Image.MIME.get(img.format or "")
    except Exception:
        return None


def extension_for(content_type: str) -> str:
    """``png`` for ``image/png``; ``bin`` when unknown."""
    known = _TYPES.get(content_type.split(";")[0].strip().lower())
    guessed = mimetypes.guess_extension(content_type) or ".bin"
    return known or guessed.lstrip(".")


def content_type_for_key(key: str) -> str:
    ext = key.rsplit(".", 1)[-1].lower() if "." in key else ""
    return _BY_EXT.get(ext) or mimetypes.guess_type(key)[0] or "application/octet-stream"


class ImageFacts(NamedTuple):
    width: int
    height: int
    frames: int
    is_flat_colour: bool


def image_facts(data: bytes) -> ImageFacts:
    """Size, frame count and flatness of a PNG/JPEG/WEBP/GIF (animated too), decoding
    every sampled frame. :class:`ArtifactInvalidError` when empty or undecodable."""
    if not data:
        raise errors.ArtifactInvalidError("output is empty", reason="empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                frames = int(getattr(img, "n_frames", 1))
                step = max(1, frames // 8)
                colours: set[tuple[Any, ...]] = set()
                flat = True
                for index in range(0, frames, step):
                    img.seek(index)
                    extrema = cast(tuple[tuple[int, int], ...], img.convert("RGBA").getextrema())
                    if any(lo != hi for lo, hi in extrema):
                        flat = False
                        break
                    colours.add(tuple(lo for lo, _ in extrema))
                return ImageFacts(img.width, img.height, frames, flat and len(colours) == 1)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise errors.ArtifactInvalidError(
            f"output is not a decodable image: {e}", reason="undecodable"
        ) from e


def check_output(data: bytes) -> ImageFacts:
    """:func:`image_facts`, and refuse a single flat colour (``reason="flat"``)."""
    facts = image_facts(data)
    if facts.is_flat_colour:
        raise errors.ArtifactInvalidError("output is a single flat colour", reason="flat")
    return facts


# ---------------------------------------------------------------- values


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str
    content_type: str


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str
    modified: datetime


class ObjectStream(NamedTuple):
    chunks: AsyncIterator[bytes]
    content_type: str
    size: int


class OutputRecord(BaseModel):
    """The metadata record stored next to every output (read by the studio gallery).
    Stored in camelCase like the Kubernetes objects; snake_case names are accepted too."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    key: str = Field(description="The output's artifact key.")
    namespace: str
    job: str
    index: int = 0
    kind: str = Field("image", description="image or video.")
    owner: str | None = None
    pool: str | None = None
    muse: str | None = None
    prompt: str = ""
    negative_prompt: str = ""
    model: str | None = None
    created: datetime | None = None
    content_type: str
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    tags: list[str] = Field(default_factory=list)
    references: ReferenceUse | None = Field(
        None, description="How the muse's reference images were used (the job's status)."
    )


# ---------------------------------------------------------------- the store


def _safe(text: str) -> str:
    for name in _SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text.splitlines()[0][:300] if text else ""


def _translate(e: Exception, op: str, key: str) -> errors.ArtifactError:
    if isinstance(e, errors.ArtifactError):
        return e
    what = f"artifact {op} {key!r}"
    if isinstance(e, FileNotFoundError | obstore.exceptions.NotFoundError):
        return errors.ArtifactNotFoundError(f"{what}: not found")
    detail = f"{type(e).__name__}: {_safe(str(e))}"
    perm = obstore.exceptions.PermissionDeniedError, obstore.exceptions.UnauthenticatedError
    if isinstance(e, perm):
        return errors.ArtifactError(f"{what}: refused: {detail}")
    return errors.ArtifactUnavailableError(f"{what}: {detail}")


class ArtifactStore:
    """Streams objects in and out of one local directory or S3 bucket prefix."""

    def __init__(self, store: LocalStore | S3Store, *, url: str) -> None:
        self._store = store
        self.url = url  # never holds credentials: they come from the environment
        self._attributes = isinstance(store, S3Store)  # the local store keeps none
        #: Parsed records by key, with the version (e_tag or mtime+size) they were read at:
        #: a listing re-reads only records that are new or were rewritten (a retried job).
        self._records: dict[str, tuple[str, OutputRecord]] = {}

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], *, content_type: str | None = None
    ) -> StoredObject:
        """Stream into ``key``, hashing on the way. The content type is sniffed from the
        first chunk when not given. The object appears whole or not at all."""
        validate_key(key)
        digest = hashlib.sha256()
        size = 0
        first = b""
        async for first in chunks:
            if first:
                break
        content_type = content_type or sniff_content_type(first) or content_type_for_key(key)

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            if first:
                digest.update(first)
                size += len(first)
                yield first
            async for chunk in chunks:
                if chunk:
                    digest.update(chunk)
                    size += len(chunk)
                    yield chunk

        attributes: Any = {"Content-Type": content_type} if self._attributes else None
        try:
            await self._store.put_async(key, counted(), attributes=attributes)
        except Exception as e:
            raise _translate(e, "put", key) from e
        return StoredObject(key, size, digest.hexdigest(), content_type)

    async def put_bytes(
        self, key: str, data: bytes, *, content_type: str | None = None
    ) -> StoredObject:
        """Store ``data`` whole, in one call to the store (no stream to pass through)."""
        validate_key(key)
        content_type = content_type or sniff_content_type(data) or content_type_for_key(key)
        attributes: Any = {"Content-Type": content_type} if self._attributes else None
        try:
            await self._store.put_async(key, data, attributes=attributes)
        except Exception as e:
            raise _translate(e, "put", key) from e
        return StoredObject(key, len(data), hashlib.sha256(data).hexdigest(), content_type)

    async def get_stream(self, key: str) -> ObjectStream:
        """``(chunks, content_type, size)``; :class:`ArtifactNotFoundError` when missing."""
        validate_key(key)
        try:
            result = await self._store.get_async(key)
        except Exception as e:
            raise _translate(e, "get", key) from e
        content_type = result.attributes.get("Content-Type") or content_type_for_key(key)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in result.stream(min_chunk_size=READ_CHUNK):
                    yield bytes(chunk)
            except Exception as e:
                raise _translate(e, "read", key) from e

        return ObjectStream(chunks(), str(content_type), int(result.meta["size"]))

    async def get_bytes(self, key: str) -> bytes:
        stream = await self.get_stream(key)
        return b"".join([chunk async for chunk in stream.chunks])

    async def head(self, key: str) -> ObjectInfo | None:
        """Size and modification time, or None when there is no such object."""
        validate_key(key)
        try:
            meta = await self._store.head_async(key)
        except Exception as e:
            error = _translate(e, "head", key)
            if isinstance(error, errors.ArtifactNotFoundError):
                return None
            raise error from e
        return ObjectInfo(key, int(meta["size"]), content_type_for_key(key), meta["last_modified"])

    async def delete(self, key: str) -> None:
        """Delete; deleting a missing key is not an error."""
        validate_key(key)
        try:
            await self._store.delete_async(key)
        except Exception as e:
            error = _translate(e, "delete", key)
            if not isinstance(error, errors.ArtifactNotFoundError):
                raise error from e

    async def list(self, prefix: str = "") -> Keys:
        """Every key under the prefix (whole segments), sorted."""
        keys: Keys = []
        checked = _prefix(prefix)
        try:
            async for batch in self._store.list(checked):
                keys.extend(meta["path"] for meta in batch)
        except Exception as e:
            raise _translate(e, "list", prefix) from e
        return sorted(keys)

    async def _versions(self, prefix: str) -> dict[str, str]:
        """Every key under the prefix with a version tag (e_tag, else mtime and size)."""
        versions: dict[str, str] = {}
        checked = _prefix(prefix)
        try:
            async for batch in self._store.list(checked):
                for meta in batch:
                    tag = meta.get("e_tag") or f"{meta.get('last_modified')}/{meta.get('size')}"
                    versions[meta["path"]] = str(tag)
        except Exception as e:
            raise _translate(e, "list", prefix) from e
        return versions

    async def put_json(self, key: str, obj: Any) -> StoredObject:
        data = json.dumps(obj, sort_keys=True, default=str).encode()
        return await self.put_bytes(key, data, content_type="application/json")

    async def get_json(self, key: str) -> Any:
        data = await self.get_bytes(key)
        try:
            return json.loads(data)
        except ValueError as e:
            raise errors.ArtifactError(f"artifact {key!r} is not JSON") from e

    async def put_record(self, record: OutputRecord) -> StoredObject:
        """Write the record of ``record.key`` at :func:`record_key`."""
        body = record.model_dump(mode="json", by_alias=True)
        return await self.put_json(record_key(record.key), body)

    async def get_record(self, output: str) -> OutputRecord | None:
        try:
            return OutputRecord.model_validate(await self.get_json(record_key(output)))
        except errors.ArtifactNotFoundError:
            return None

    async def list_records(
        self, owner: str | None = None, *, prefix: str = RECORDS, limit: int | None = None
    ) -> Records:
        """Records under the prefix (optionally of one owner), newest first. Records
        deleted meanwhile or unreadable are skipped."""
        if prefix.rstrip("/").split("/")[0] != RECORDS:
            raise errors.ArtifactKeyError(f"records live under {RECORDS}/")
        versions = {k: v for k, v in (await self._versions(prefix)).items() if k.endswith(".json")}
        gate = asyncio.Semaphore(RECORD_READS)

        async def read(key: str) -> OutputRecord | None:
            cached = self._records.get(key)
            if cached is not None and cached[0] == versions[key]:
                return cached[1]
            async with gate:
                try:
                    record = OutputRecord.model_validate(await self.get_json(key))
                except errors.ArtifactNotFoundError:
                    return None
                except (errors.ArtifactError, ValidationError) as e:
                    logger.warning("skipping unreadable record %s: %s", key, type(e).__name__)
                    return None
            self._records[key] = (versions[key], record)
            return record

        found = [r for r in await asyncio.gather(*map(read, versions)) if r is not None]
        for gone in [k for k in self._records if k.startswith(prefix) and k not in versions]:
            del self._records[gone]
        mine = [r for r in found if owner is None or r.owner == owner]
        mine.sort(key=lambda r: (r.created or _EPOCH, r.key), reverse=True)
        return mine[:limit] if limit is not None else mine


# ---------------------------------------------------------------- opening


def open_store(
    url: str,
    *,
    s3_endpoint: str | None = None,
    s3_region: str | None = None,
    base_dir: Path | None = None,
) -> ArtifactStore:
    """``file://<dir>`` (relative to ``base_dir`` or the working directory; created
    when missing) or ``s3://bucket[/prefix]`` with credentials from ``AWS_*``."""
    if url.startswith("file://"):
        path = Path(url.removeprefix("file://")).expanduser()
        path = path if path.is_absolute() else (base_dir or Path.cwd()) / path
        path.mkdir(parents=True, exist_ok=True)
        return ArtifactStore(LocalStore(path.resolve()), url=f"file://{path.resolve()}")
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise errors.ConfigurationError("artifacts URL s3:// needs a bucket")
        region = (
            s3_region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )
        config: Any = {"region": region}
        if s3_endpoint:
            config["endpoint"] = s3_endpoint
        store = S3Store(
            bucket,
            prefix=_prefix(prefix),
            config=config,
            client_options={
                "allow_http": bool(s3_endpoint and s3_endpoint.startswith("http://")),
                "connect_timeout": timedelta(seconds=5),
                "timeout": timedelta(seconds=120),
            },
            retry_config={
                "max_retries": 3,
                "retry_timeout": timedelta(seconds=30),
                "backoff": {
                    "init_backoff": timedelta(milliseconds=100),
                    "max_backoff": timedelta(seconds=5),
                    "base": 2,
                },
            },
        )
        return ArtifactStore(store, url=url)
    raise errors.ConfigurationError("artifacts URL must start with file:// or s3://")


def from_settings(settings: OperatorSettings) -> ArtifactStore:
    return open_store(
        settings.artifacts_url,
        s3_endpoint=settings.artifacts_s3_endpoint,
        s3_region=settings.artifacts_s3_region,
    )
