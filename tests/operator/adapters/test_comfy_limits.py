"""Byte caps and answer shapes on what a machine's ComfyUI sends (T2, respx).

A rented machine is hostile until proven otherwise: before the caps, ``GET /history``
or ``GET /view`` answering an endless body was read whole into the operator's memory
(``response.json()``, ``buffer.extend`` for every output). Every answer is now read with a
running count and stops at its cap with :class:`errors.ComfyAnswerTooLargeError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from warmpool.operator import errors
from warmpool.operator.adapters import comfy
from warmpool.operator.adapters.comfy_limits import ComfyLimits

URL = "http://comfy.test:8188"
TOKEN = "comfy-token-SECRET-0123456789"
LIMITS = ComfyLimits(json=64 * 1024, image=256 * 1024, video=1024 * 1024)
CHUNK = 16 * 1024
READ = 64 * 1024 + CHUNK  # the reader's chunk plus one chunk of the body: the slack past a cap


async def no_sleep(_: float) -> None:
    return None


def client(http: httpx.AsyncClient) -> comfy.ComfyClient:
    return comfy.ComfyClient(http, URL, TOKEN, attempts=3, sleep=no_sleep, limits=LIMITS)


class Endless(httpx.AsyncByteStream):
    """A body that never ends (or ends after ``total`` bytes); counts what was pulled."""

    def __init__(self, total: int | None = None, fill: bytes = b"a") -> None:
        self.total = total
        self.fill = fill
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.total is None or self.sent < self.total:
            size = CHUNK if self.total is None else min(CHUNK, self.total - self.sent)
            self.sent += size
            yield self.fill * size


def streamed(stream: Endless, **headers: str) -> httpx.Response:
    return httpx.Response(200, stream=stream, headers=headers)


@pytest.mark.parametrize(
    ("path", "call"),
    [
        pytest.param("/history/p1", lambda c: c.history("p1"), id="history"),
        pytest.param("/queue", lambda c: c.queue_state(), id="queue"),
        pytest.param("/object_info", lambda c: c.object_info(), id="object_info"),
        pytest.param("/system_stats", lambda c: c.system_stats(), id="system_stats"),
    ],
)  # fmt: skip
async def test_an_endless_json_answer_stops_at_the_cap(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter, path: str, call: Any
) -> None:
    body = Endless()
    route = comfy_mock.get(path).mock(side_effect=lambda _: streamed(body))
    with pytest.raises(errors.ComfyAnswerTooLargeError) as caught:
        await call(client(comfy_http))
    assert caught.value.limit == LIMITS.json
    assert caught.value.reason == "MachineAnswerTooLarge"
    assert body.sent <= LIMITS.json + READ  # read no further than the cap
    assert route.call_count == 1  # not retried on the same machine
    assert TOKEN not in str(caught.value)


async def test_a_declared_length_above_the_cap_is_refused_before_reading(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter
) -> None:
    body = Endless(total=10 * LIMITS.json)
    comfy_mock.post("/prompt").mock(
        side_effect=lambda _: streamed(body, **{"content-length": str(10 * LIMITS.json)})
    )
    with pytest.raises(errors.ComfyAnswerTooLargeError, match="Content-Length"):
        await client(comfy_http).submit_prompt({"1": {}}, "cid")
    assert body.sent == 0


async def test_an_answer_just_under_the_cap_is_read(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter
) -> None:
    padding = "x" * (LIMITS.json - 100)
    comfy_mock.get("/system_stats").respond(json={"devices": [], "pad": padding})
    stats = await client(comfy_http).system_stats()
    assert stats["pad"] == padding


async def test_identity_encoding_is_asked_for(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter
) -> None:
    route = comfy_mock.get("/queue").respond(json={"queue_running": [], "queue_pending": []})
    await client(comfy_http).queue_state()
    assert route.calls.last.request.headers["Accept-Encoding"] == "identity"


async def _download(c: comfy.ComfyClient, **kwargs: Any) -> int:
    got = 0
    stream = c.fetch_output(comfy.OutputFile("x.png", "", "output", "9"), **kwargs)
    async with contextlib.aclosing(stream) as chunks:  # type: ignore[type-var]
        async for chunk in chunks:
            got += len(chunk)
    return got


async def test_an_endless_output_stops_at_the_image_cap(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter
) -> None:
    body = Endless(fill=b"\x89")
    comfy_mock.get("/view").mock(side_effect=lambda _: streamed(body))
    with pytest.raises(errors.ComfyAnswerTooLargeError) as caught:
        await _download(client(comfy_http))
    assert caught.value.limit == LIMITS.image
    assert body.sent <= LIMITS.image + READ


async def test_an_output_may_use_the_video_cap(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter
) -> None:
    size = LIMITS.image * 2  # above the image cap, under the video one
    comfy_mock.get("/view").mock(side_effect=lambda _: streamed(Endless(total=size)))
    assert await _download(client(comfy_http), limit=LIMITS.for_output("video/mp4")) == size
    with pytest.raises(errors.ComfyAnswerTooLargeError):
        await _download(client(comfy_http), limit=LIMITS.for_output("image/png"))


async def test_probe_reports_too_large_and_stops_at_once(
    comfy_http: httpx.AsyncClient, comfy_mock: respx.MockRouter
) -> None:
    route = comfy_mock.get("/system_stats").mock(side_effect=lambda _: streamed(Endless()))
    result = await comfy.probe(comfy_http, URL, TOKEN, deadline=30.0, sleep=no_sleep,
                               limits=LIMITS)  # fmt: skip
    assert not result.ready
    assert result.reason is comfy.ProbeReason.TOO_LARGE
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("path", "method", "answer", "call"),
    [
        pytest.param("/queue", "GET", {"queue_running": "lots"},
                     lambda c: c.queue_state(), id="queue-not-lists"),
        pytest.param("/prompt", "POST", {"prompt_id": {"$": 1}},
                     lambda c: c.submit_prompt({}, "cid"), id="prompt-id-not-text"),
        pytest.param("/history/p1", "GET", {"p1": {"status": {"messages": "boom"}}},
                     lambda c: c.history("p1"), id="history-messages-not-a-list"),
        pytest.param("/history/p1", "GET", {"p1": {"outputs": ["x"]}},
                     lambda c: c.history("p1"), id="history-outputs-not-a-map"),
        pytest.param("/upload/image", "POST", {"subfolder": "x"},
                     lambda c: c.upload_image(b"png", "a.png"), id="upload-no-name"),
        pytest.param("/models/checkpoints", "GET", [{"name": 1}],
                     lambda c: c.list_models("checkpoints"), id="models-not-names"),
    ],
)  # fmt: skip
async def test_wrong_shapes_are_malformed_answers(
    comfy_http: httpx.AsyncClient,
    comfy_mock: respx.MockRouter,
    path: str,
    method: str,
    answer: Any,
    call: Any,
) -> None:
    comfy_mock.route(method=method, path=path).respond(json=answer)
    with pytest.raises(errors.ComfyMalformedResponseError, match="wrong shape"):
        await call(client(comfy_http))


async def test_an_endless_instance_log_is_cut_at_its_cap(
    vastai_http: httpx.AsyncClient, vastai_mock: respx.MockRouter, fake_time: Any
) -> None:
    """The container log is the machine's own output: it is read up to a cap, not whole."""
    from warmpool.operator.adapters import vastai

    key = SecretStr("sk-vast-limits-0123456789")
    client = vastai.VastaiClient(vastai_http, base_url="https://vast.test", api_key=key,
                                 sleep=fake_time.sleep, clock=fake_time,
                                 max_log_bytes=100_000)  # fmt: skip
    vastai_mock.put("/api/v0/instances/request_logs/12/").respond(
        200, json={"success": True, "result_url": "https://logs.test/x.log"}
    )
    body = Endless(fill=b"l")
    vastai_mock.get("https://logs.test/x.log").mock(side_effect=lambda _: streamed(body))
    text = await client.request_logs(12)
    assert text.startswith("l" * 1000)
    assert text.endswith("[log cut at 100000 bytes]\n")
    assert len(text) < 100_000 + 100
    assert body.sent <= 100_000 + READ


async def test_a_websocket_frame_past_the_cap_fails_the_follow() -> None:
    """A frame larger than the JSON cap closes the socket (1009) and is an oversized
    answer, not a reason to fall back to polling the same machine."""
    from websockets.asyncio.server import ServerConnection, serve

    async def huge(ws: ServerConnection) -> None:
        await ws.send('{"type": "status", "data": {"pad": "' + "x" * (LIMITS.json * 2) + '"}}')
        await ws.wait_closed()

    async with serve(huge, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with httpx.AsyncClient() as http:
            c = comfy.ComfyClient(http, f"http://127.0.0.1:{port}", TOKEN, limits=LIMITS,
                                  timeout=5.0)  # fmt: skip
            with pytest.raises(errors.ComfyAnswerTooLargeError, match="GET /ws"):
                await c.follow_prompt("p1", "cid", deadline=10.0)
