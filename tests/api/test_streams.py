"""The event stream response (``api/streams.py``) over raw ASGI: framing, the server's own
``send`` for chunks, pings while silent, the end on disconnect (no task left behind)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

from waiting import eventually

from warmpool.api import streams
from warmpool.api.streams import EventStream, KeepServerSend

Message = dict[str, Any]


class Client:
    """The server side of one connection: what the app sent, and a disconnect on demand."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.through_stack: list[Message] = []
        self._gone = asyncio.Event()
        self._requested = False

    async def receive(self) -> Message:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def leave(self) -> None:
        self._gone.set()

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


def wrapped(app: Any, client: Client) -> Any:
    """``app`` behind a middleware that records every message it sees on its way out."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        async def seen(message: Message) -> None:
            client.through_stack.append(message)
            await send(message)

        await app(scope, receive, seen)

    return KeepServerSend(middleware)


def scope() -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": "/x", "headers": []}


async def test_events_are_framed_and_chunks_skip_the_middleware() -> None:
    async def chunks() -> AsyncGenerator[bytes, None]:
        yield streams.encode("progress", {"phase": "Running", "percent": 50})
        yield streams.encode_text("done", '{"phase": "Succeeded"}')

    client = Client()
    await wrapped(EventStream(chunks()), client)(scope(), client.receive, client.send)

    start = client.sent[0]
    headers = dict(start["headers"])
    assert start["type"] == "http.response.start" and start["status"] == 200
    assert headers[b"content-type"].startswith(b"text/event-stream")
    assert b"content-length" not in headers  # chunked: the stream has no length
    assert client.bodies() == [
        b'event: progress\r\ndata: {"phase": "Running", "percent": 50}\r\n\r\n',
        b'event: done\r\ndata: {"phase": "Succeeded"}\r\n\r\n',
        b"",
    ]
    assert client.sent[-1]["more_body"] is False
    # The start and the closing message go through the middleware; the events do not.
    assert [m["type"] for m in client.through_stack] == [
        "http.response.start",
        "http.response.body",
    ]
    assert client.through_stack[1]["body"] == b""
    data = client.bodies()[0].split(b"data: ", 1)[1]
    assert json.loads(data) == {"phase": "Running", "percent": 50}


async def test_a_silent_stream_pings_and_ends_when_the_client_leaves() -> None:
    closed = asyncio.Event()

    async def chunks() -> AsyncGenerator[bytes, None]:
        try:
            yield streams.encode("progress", {"n": 1})
            await asyncio.Event().wait()  # nothing more, ever
            yield b""  # pragma: no cover
        finally:
            closed.set()

    client = Client()
    app = wrapped(EventStream(chunks(), ping=0.05), client)
    base = asyncio.all_tasks()
    serving = asyncio.create_task(app(scope(), client.receive, client.send))
    await eventually(lambda: client.bodies().count(streams.PING) >= 2, timeout=10,
                     what="two pings")  # fmt: skip
    client.leave()
    await asyncio.wait_for(serving, timeout=10)
    assert closed.is_set()  # the generator's ``finally`` ran at the disconnect
    assert client.sent[-1] != {"type": "http.response.body", "body": b"", "more_body": False}
    assert asyncio.all_tasks() - base == set()  # the stream's tasks ended with it
