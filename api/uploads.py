"""Reference image uploads, output downloads and thumbnails, on the artifact store.

Keys are always made by the server: uploads go under ``uploads/<owner>/<random>.<ext>``
and a client-given key is accepted only if it has exactly that shape for the caller.
Outputs are found through their job (name + index), never through a client path.
Thumbnails are made with Pillow on first request and cached in the store under
``thumbnails/<sha256 of the output>-<size>.webp``.
"""

from __future__ import annotations

import asyncio
import io
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from PIL import Image, UnidentifiedImageError

from warmpool.api.auth import User
from warmpool.api.problems import FieldError
from warmpool.operator import errors

UPLOAD_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
_UPLOAD_KEY = re.compile(
    r"^uploads/([A-Za-z0-9][-A-Za-z0-9_.]{0,62})/[0-9a-f]{32}\.(png|jpg|webp)$"
)
THUMBNAIL_TYPE = "image/webp"
MAX_PIXELS = 64_000_000


def sniff(data: bytes) -> str | None:
    """The image type by magic bytes: PNG, JPEG or WEBP (anything else: None)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class ArtifactStore(Protocol):
    """What the studio needs of ``warmpool.operator.adapters.artifacts`` stores."""

    async def put_bytes(self, key: str, data: bytes, *, content_type: str) -> object: ...

    async def get_bytes(self, key: str) -> bytes: ...

    def get_stream(self, key: str) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class Stored:
    key: str
    content_type: str
    size: int
    width: int | None
    height: int | None


def _dimensions(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def _thumbnail(data: bytes, size: int) -> bytes:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)  # the first frame of an animation
        frame = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
        frame.thumbnail((size, size))
        out = io.BytesIO()
        frame.save(out, format="WEBP", quality=80)
        return out.getvalue()


class Uploads:
    """The studio's view of the artifact store."""

    def __init__(self, store: ArtifactStore, *, max_bytes: int, thumb_size: int) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.thumb_size = thumb_size

    # ------------------------------------------------------------ uploads

    def owns(self, user: User, key: str) -> bool:
        m = _UPLOAD_KEY.match(key)
        return m is not None and (user.admin or m.group(1) == user.label)

    async def save(self, user: User, data: bytes) -> Stored:
        loc: list[str | int] = ["body", "file"]
        if len(data) > self.max_bytes:
            raise FieldError(
                loc, f"the image is larger than {self.max_bytes} bytes", type="too_large"
            )
        content_type = sniff(data)
        if content_type is None:
            raise FieldError(loc, "only PNG, JPEG and WEBP images are accepted", type="bad_type")
        try:
            width, height = await asyncio.to_thread(_dimensions, data)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            raise FieldError(loc, "the image cannot be read", type="bad_image") from e
        key = f"uploads/{user.label}/{secrets.token_hex(16)}.{UPLOAD_TYPES[content_type]}"
        await self.store.put_bytes(key, data, content_type=content_type)
        return Stored(key, content_type, len(data), width, height)

    # ------------------------------------------------------------ outputs

    def stream(self, key: str) -> AsyncIterator[bytes]:
        return self.store.get_stream(key)

    async def thumbnail(self, key: str, sha256: str) -> bytes:
        """The cached thumbnail of an output, made on first use."""
        digest = sha256 if re.fullmatch(r"[0-9a-f]{64}", sha256 or "") else None
        cache_key = f"thumbnails/{digest}-{self.thumb_size}.webp" if digest else None
        if cache_key is not None:
            try:
                return await self.store.get_bytes(cache_key)
            except errors.ArtifactNotFoundError:
                pass
        data = await self.store.get_bytes(key)
        thumb = await asyncio.to_thread(_thumbnail, data, self.thumb_size)
        if cache_key is not None:
            await self.store.put_bytes(cache_key, thumb, content_type=THUMBNAIL_TYPE)
        return thumb
