"""Reference image uploads, output downloads and thumbnails, on the artifact store.

Keys are always made by the server: uploads go under
``uploads/<namespace>/<owner id>/<sha256>.<ext>`` (content-addressed; the owner id is the
SHA-256 of the full user name, so no crafted name can collide with another user's, as
the shortened owner *label* could), and a client-given key is accepted only if it has
exactly that shape for the caller in this namespace.
Images are measured from their header before anything is decoded: more than
``WARMPOOL_STUDIO_MAX_IMAGE_PIXELS`` (25 megapixels) is refused, and thumbnails shrink
while decoding (``draft``/``thumbnail``) before converting.
Outputs are found through their job (name + index), never through a client path.
Thumbnails are made with Pillow on first request and cached in the store under
``thumbnails/<sha256 of the output>-<size>.webp``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image

from warmpool.api.auth import User
from warmpool.api.problems import FieldError
from warmpool.operator import errors
from warmpool.operator.adapters import artifacts

UPLOAD_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
_UPLOAD_KEY = re.compile(
    r"^uploads/([a-z0-9][-a-z0-9]{0,62})/([0-9a-f]{64})/[0-9a-f]{64}\.(png|jpg|webp)$"
)
THUMBNAIL_TYPE = "image/webp"
MAX_PIXELS = 25_000_000


class TooManyPixels(ValueError):
    """The image's header announces more pixels than accepted."""


def _pixels(data: bytes, max_pixels: int) -> tuple[int, int]:
    """The size from the header only (``Image.open`` is lazy: nothing is decoded)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    if width * height > max_pixels:
        raise TooManyPixels(f"{width}x{height}")
    return width, height


@dataclass(frozen=True)
class Stored:
    key: str
    content_type: str
    size: int
    width: int | None
    height: int | None


def _thumbnail(data: bytes, size: int, max_pixels: int) -> bytes:
    _pixels(data, max_pixels)  # before anything is decoded
    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's own bomb check, as a second line
    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)  # the first frame of an animation
        mode = "RGBA" if image.mode in ("RGBA", "LA", "P", "PA") else "RGB"
        image.draft(mode, (size, size))  # JPEG: decode at 1/2..1/8 scale
        image.thumbnail((size, size))  # shrink (reducing while decoding) before converting
        frame = image.convert(mode)
        out = io.BytesIO()
        frame.save(out, format="WEBP", quality=80)
        return out.getvalue()


class Uploads:
    """The studio's view of the artifact store."""

    def __init__(
        self,
        store: artifacts.ArtifactStore,
        *,
        max_bytes: int,
        thumb_size: int,
        namespace: str = "default",
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.thumb_size = thumb_size
        self.namespace = namespace
        self.max_pixels = max_pixels

    # ------------------------------------------------------------ uploads

    def owns(self, user: User, key: str) -> bool:
        m = _UPLOAD_KEY.match(key)
        if m is None or m.group(1) != self.namespace:
            return False
        return user.admin or m.group(2) == user.owner_id

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
            await asyncio.to_thread(_pixels, data, self.max_pixels)
        except TooManyPixels as e:
            raise FieldError(
                loc,
                f"the image has more than {self.max_pixels} pixels ({e})",
                type="too_many_pixels",
            ) from e
        except (OSError, ValueError) as e:
            raise FieldError(loc, "the image cannot be read", type="bad_image") from e
        try:
            facts = await asyncio.to_thread(artifacts.image_facts, data)
        except errors.ArtifactInvalidError as e:
            raise FieldError(loc, "the image cannot be read", type="bad_image") from e
        width, height = facts.width, facts.height
        digest = hashlib.sha256(data).hexdigest()
        owner = f"{self.namespace}/{user.owner_id}"
        key = artifacts.upload_key(owner, digest, UPLOAD_TYPES[content_type])
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
        try:
            thumb = await asyncio.to_thread(_thumbnail, data, self.thumb_size, self.max_pixels)
        except (TooManyPixels, Image.DecompressionBombError) as e:
            raise FieldError(
                ["path", "index"], "the output is too large for a thumbnail", type="too_many_pixels"
            ) from e
        except OSError as e:  # not an image (Pillow's UnidentifiedImageError is one)
            raise FieldError(
                ["path", "index"], "the output is not an image", type="not_an_image"
            ) from e
        if cache_key is not None:
            await self.store.put_bytes(cache_key, thumb, content_type=THUMBNAIL_TYPE)
        return thumb
