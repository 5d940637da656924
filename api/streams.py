"""Server-Sent Events streams: pre-encoded events written straight to the server.

A progress update reaches every listener of a job (500 in ``bench/studio.py``), so what a
stream costs per event is multiplied by the listeners. A stream here costs one ASGI
``send`` of bytes encoded once per change (see :mod:`hub`), nothing more:

- The response start goes through the whole middleware stack as any answer does (the
  guard's security headers, the request metrics, the error handlers see it). The body
  chunks after it go to the server's own ``send``, which :class:`KeepServerSend` (the
  outermost layer of the app) leaves in the scope: the per-event wrappers of every
  middleware layer (each an extra coroutine call per event per listener) are skipped.
  None of the studio's middleware looks at body messages; one that rewrote bodies (a
  compressor) would have to exclude ``text/event-stream``, as compressors do.
- One task per stream waits for the client's disconnect and sends a comment line every
  ``ping`` seconds while nothing else was sent (proxies close silent connections); no
  timer or cancel scope per event.
- Both tasks end with the stream, whichever way it ends (no task left pending at
  shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

#: Scope key of the server's own ``send`` (set by :class:`KeepServerSend`).
SERVER_SEND = "warmpool.server_send"
PING = b": ping\r\n\r\n"
MEDIA_TYPE = "text/event-stream"


def encode(event: str, data: Any) -> bytes:
    """One event: ``event:`` and a one-line JSON ``data:`` (JSON never spans lines)."""
    return b"event: " + event.encode() + b"\r\ndata: " + json.dumps(data).encode() + b"\r\n\r\n"


def encode_text(event: str, text: str) -> bytes:
    """An event whose data is already JSON text (one line)."""
    return b"event: " + event.encode() + b"\r\ndata: " + text.encode() + b"\r\n\r\n"


async def _nothing() -> AsyncGenerator[bytes, None]:
    """No chunks (push mode: the response writes them itself)."""
    nothing: tuple[bytes, ...] = ()
    for chunk in nothing:
        yield chunk


class KeepServerSend:
    """Outermost ASGI layer: remembers the server's ``send`` in the scope for streams."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[SERVER_SEND] = send
        await self.app(scope, receive, send)


class SlowClientError(Exception):
    """A stream's client did not take a write in time (:data:`fanout.SEND_TIMEOUT`)."""


class EventStream(StreamingResponse):
    """``text/event-stream`` of the byte chunks ``chunks`` yields (or that ``push`` writes
    itself), until it ends or the client goes; a ``PING`` comment after ``ping`` seconds
    without a chunk (every ``ping`` seconds in push mode)."""

    media_type = MEDIA_TYPE

    def __init__(
        self,
        chunks: AsyncGenerator[bytes, None] | None = None,
        status_code: int = 200,
        *,
        push: Callable[[Send], Awaitable[None]] | None = None,
        ping: float = 15.0,
        background: BackgroundTask | None = None,
    ) -> None:
        chunks = chunks if chunks is not None else _nothing()
        super().__init__(  # StreamingResponse: no Content-Length, chunked
            chunks,
            status_code=status_code,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            media_type=MEDIA_TYPE,
            background=background,
        )
        self.chunks = chunks
        #: Push mode: writes the chunks itself with the send it is given (:mod:`fanout`).
        self.push = push
        self.ping = ping
        self._last_sent = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        direct: Send = scope.get(SERVER_SEND, send)
        self._last_sent = time.monotonic()
        streaming = asyncio.ensure_future(self._stream(direct))
        watching = asyncio.ensure_future(self._watch(receive, direct))
        try:
            await asyncio.wait((streaming, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, watching):
                task.cancel()
            await asyncio.gather(streaming, watching, return_exceptions=True)
            await self.chunks.aclose()  # its ``finally`` runs now, not at garbage collection
        error = None if streaming.cancelled() else streaming.exception()
        if isinstance(error, SlowClientError):  # closed on purpose: not a server error
            log.info("event stream closed: its client did not read (%s)", error)
            return
        if error is not None:
            raise error
        if streaming.done() and not streaming.cancelled():
            with contextlib.suppress(OSError):  # the client left meanwhile
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        if self.background is not None:
            await self.background()

    async def _stream(self, send: Send) -> None:
        if self.push is not None:
            await self.push(send)
            return
        async for chunk in self.chunks:
            self._last_sent = time.monotonic()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def _watch(self, receive: Receive, send: Send) -> None:
        """Return when the client disconnects; ping while the stream is silent."""
        while True:
            wait = self._last_sent + self.ping - time.monotonic()
            if wait <= 0:
                self._last_sent = time.monotonic()
                await send({"type": "http.response.body", "body": PING, "more_body": True})
                continue
            message: Message | None = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    message = await receive()
            if message is not None and message["type"] == "http.disconnect":
                return
