"""Answers that carry a stored output: the download and its thumbnail.

Both routes that serve outputs (a live job's, and the gallery's from its record) answer
through here, with one set of headers.
"""

from __future__ import annotations

from typing import Literal

from fastapi import Response
from fastapi.responses import StreamingResponse

from warmpool.api.state import Studio
from warmpool.operator.adapters import artifacts

Disposition = Literal["attachment", "inline"]


async def download(
    studio: Studio, *, key: str, content_type: str, job: str, index: int, disposition: Disposition
) -> StreamingResponse:
    """The output streamed from the store, named ``<job>-<index>.<ext>``."""
    stream = await studio.uploads.open(key)  # gone meanwhile: 404
    ext = artifacts.extension_for(content_type)
    return StreamingResponse(
        stream.chunks,
        media_type=content_type,
        headers={
            "Content-Disposition": f'{disposition}; filename="{job}-{index}.{ext}"',
            "Content-Length": str(stream.size),
            "Cache-Control": "private, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def thumbnail(studio: Studio, *, key: str, sha256: str) -> Response:
    """A WEBP thumbnail of the output (made once, kept in the store)."""
    data = await studio.uploads.thumbnail(key, sha256)
    return Response(
        data, media_type="image/webp", headers={"Cache-Control": "private, max-age=86400"}
    )
