"""Reference image uploads, output downloads and thumbnails, on the artifact store.

Keys are always made by the server: uploads go under ``uploads/<owner>/<sha256>.<ext>``
(content-addressed), and a client-given key is accepted only if it has exactly that
shape for the caller.
Outputs are found through their job (name + index), never through a client path.
Thumbnails are made with Pillow on first request and cached in the store under
``thumbnails/<sha256 of the output>-<size>.webp``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from dataclasses import dataclass

from PIL import Image

from warmpool.api.auth import User
from warmpool.api.problems import FieldError
from warmpool.operator import errors
from warmpool.operator.adapters import artifacts

UPLOAD_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
_UPLOAD_KEY = re.compile(
    r"^uploads/([A-Za-z0-9][-A-Za-z0-9_.]{0,62})/[0-9a-f]{64}\.(png|jpg|webp)$"
)
THUMBNAIL_TYPE = "image/webp"
MAX_PIXELS = 64_000_000


@dataclass(frozen=True)
class Stored:
    key: str
    content_type: str
    size: int
    width: int | None
    height: int | None


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

    def __init__(self, store: artifacts.ArtifactStore, *, max_bytes: int, thumb_size: int) -> None:
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
        content_type = artifacts.sniff_content_type(data[:64])
        if content_type not in UPLOAD_TYPES:
            raise FieldError(loc, "only PNG, JPEG and WEBP images are accepted", type="bad_type")
        try:
            facts = await asyncio.to_thread(artifacts.image_facts, data)
        except errors.ArtifactInvalidError as e:
            raise FieldError(loc, "the image cannot be read", type="bad_image") from e
        width, height = facts.width, facts.height
        digest = hashlib.sha256(data).hexdigest()
        key = artifacts.upload_key(user.label, digest, UPLOAD_TYPES[content_type])
        await self.store.put_bytes(key, data, content_type=content_type)
        return Stored(key, content_type, len(data), width, height)

    # ------------------------------------------------------------ outputs

    async def open(self, key: str) -> artifacts.ObjectStream:
        """The output's bytes as a stream (404 before any byte is sent when missing)."""
        return await self.store.get_stream(key)

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
