"""Byte caps on what a rented machine answers, and the capped reader of the ComfyUI adapter.

A rented machine is not trusted: its ComfyUI (or whatever answers on its port) can send
an endless body, a JSON document of gigabytes, or an "image" of many gigabytes. Every
answer is read as a stream with a running count; past the cap of its kind the read stops
and :class:`errors.ComfyAnswerTooLargeError` is raised (nothing past the cap is held). A
``Content-Length`` above the cap is refused before the first byte is read.

The count is of decoded bytes (what would be held in memory); the adapter asks machines
for ``Accept-Encoding: identity`` so that a compressed bomb is not even offered, and if one
comes anyway its expansion is counted chunk by chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from warmpool.operator import errors

if TYPE_CHECKING:
    from warmpool.operator.settings import OperatorSettings

MIB = 1024 * 1024


@dataclass(frozen=True)
class ComfyLimits:
    """The byte caps of one ComfyUI client (``WARMPOOL_COMFY_MAX_*_BYTES``)."""

    json: int = 8 * MIB
    image: int = 64 * MIB
    video: int = 2048 * MIB

    @classmethod
    def from_settings(cls, settings: OperatorSettings) -> ComfyLimits:
        return cls(settings.comfy_max_json_bytes, settings.comfy_max_image_bytes,
                   settings.comfy_max_video_bytes)  # fmt: skip

    def for_output(self, content_type: str) -> int:
        """The cap of one output file: video by its content type, everything else image."""
        return self.video if content_type.startswith("video/") else self.image


def too_large(endpoint: str, limit: int, seen: str) -> errors.ComfyAnswerTooLargeError:
    return errors.ComfyAnswerTooLargeError(
        f"{endpoint}: the machine answered {seen} (more than the {limit} bytes accepted)",
        endpoint=endpoint, limit=limit,
    )  # fmt: skip


def check_declared(response: httpx.Response, endpoint: str, limit: int) -> None:
    """Refuse a ``Content-Length`` above ``limit`` before reading anything."""
    declared = response.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        raise too_large(endpoint, limit, f"a Content-Length of {int(declared)} bytes")


async def capped_chunks(
    response: httpx.Response, endpoint: str, limit: int, *, chunk_size: int = 65536
) -> AsyncIterator[bytes]:
    """The body of a streamed response, stopping with an error past ``limit`` bytes."""
    check_declared(response, endpoint, limit)
    seen = 0
    async for chunk in response.aiter_bytes(chunk_size):
        seen += len(chunk)
        if seen > limit:
            raise too_large(endpoint, limit, f"over {limit} bytes")
        yield chunk


async def read_capped(response: httpx.Response, endpoint: str, limit: int) -> bytes:
    """The whole body of a streamed response, at most ``limit`` bytes."""
    body = bytearray()
    async for chunk in capped_chunks(response, endpoint, limit):
        body.extend(chunk)
    return bytes(body)
