"""Answers that carry a stored output: the download and its thumbnail.

Both routes that serve outputs (a live job's, and the gallery's from its record) answer
through here, with one set of headers.

An output comes from a rented machine, so its bytes are hostile until proven otherwise:
the content type served is the one *sniffed from the bytes* when it is in the allowlist
(PNG, JPEG, WEBP, GIF, MP4, WEBM), whatever the machine or the record said; anything
else is ``application/octet-stream`` as an ``attachment``. Every download carries
``Content-Security-Policy: sandbox`` (a document opened from it has no origin, no
scripts) and ``nosniff``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

from fastapi import Response
from fastapi.responses import StreamingResponse

from warmpool.api.state import Studio
from warmpool.operator.adapters import artifacts

Disposition = Literal["attachment", "inline"]
SAFE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/webp", "image/gif", "video/mp4", "video/webm"}
)
OPAQUE = "application/octet-stream"
SNIFF_BYTES = 64
DOWNLOAD_CSP = "sandbox; default-src 'none'"


def served_type(head: bytes) -> str:
    """The type to serve for bytes starting with ``head``: allowlisted magic, else opaque."""
    sniffed = artifacts.sniff_content_type(head[:SNIFF_BYTES])
    return sniffed if sniffed in SAFE_TYPES else OPAQUE


async def _with_head(chunks: AsyncIterator[bytes]) -> tuple[bytes, AsyncIterator[bytes]]:
    """The first bytes of a stream, and the stream again from its start."""
    head = b""
    first: list[bytes] = []
    async for chunk in chunks:
        first.append(chunk)
        head += chunk
        if len(head) >= SNIFF_BYTES:
            break

    async def again() -> AsyncIterator[bytes]:
        for chunk in first:
            yield chunk
        async for chunk in chunks:
            yield chunk

    return head, again()


async def download(
    studio: Studio, *, key: str, content_type: str, job: str, index: int, disposition: Disposition
) -> StreamingResponse:
    """The output streamed from the store, named ``<job>-<index>.<ext>``."""
    stream = await studio.uploads.open(key)  # gone meanwhile: 404
    head, chunks = await _with_head(stream.chunks)
    served = served_type(head)
    if served == OPAQUE:
        disposition = "attachment"
    ext = artifacts.extension_for(served) if served != OPAQUE else "bin"
    return StreamingResponse(
        chunks,
        media_type=served,
        headers={
            "Content-Disposition": f'{disposition}; filename="{job}-{index}.{ext}"',
            "Content-Length": str(stream.size),
            "Cache-Control": "private, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": DOWNLOAD_CSP,
        },
    )


async def thumbnail(studio: Studio, *, key: str, sha256: str) -> Response:
    """A WEBP thumbnail of the output (made once, kept in the store)."""
    data = await studio.uploads.thumbnail(key, sha256)
    return Response(
        data,
        media_type="image/webp",
        headers={
            "Cache-Control": "private, max-age=86400",
            "Content-Security-Policy": DOWNLOAD_CSP,
        },
    )
