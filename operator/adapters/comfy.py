"""ComfyUI client: node catalogue, models, prompts, queue, history, outputs.

Wire protocol: ``contracts/comfyui-api.md``. HTTP goes through one chokepoint,
:meth:`ComfyClient._request`, on an injected shared ``httpx.AsyncClient``: time-out,
the status-to-error table, a few retries with jittered exponential backoff for
idempotent calls. The per-instance token travels as ``Authorization: Bearer`` on
every request, the websocket handshake included, never in a URL.

The websocket (``/ws``) uses the ``websockets`` library rather than ``httpx-ws``:
its keepalive pings notice a machine that vanished without closing the socket, it
bounds the frame size (previews can be MBs), and a long-lived socket does not hold
a connection of the shared HTTP pool.

Every answer is read with a byte cap (:mod:`.comfy_limits`) and JSON answers are checked
against pydantic shapes (:mod:`.comfy_answers`) before use: a rented machine is not trusted.

Split by concern: the values and error classifiers (:mod:`.comfy_values`, re-exported
here), following one prompt (:mod:`.comfy_follow`: :meth:`ComfyClient.run_prompt` and
:meth:`ComfyClient.follow_prompt` open a socket per prompt, for the canary), the
instance's one shared socket that the job runners follow their prompts on
(:mod:`.comfy_session`), the readiness probe (:mod:`.comfy_probe`, ``comfy.probe``
builds the client), the per-URL HTTP pools and sessions (:mod:`.comfy_clients`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from websockets.asyncio.client import connect

from warmpool.operator import errors
from warmpool.operator.adapters import comfy_answers as answers
from warmpool.operator.adapters.comfy_follow import WS_GREETING_TIMEOUT, Follower
from warmpool.operator.adapters.comfy_limits import (
    ComfyLimits,
    capped_chunks,
    read_capped,
)
from warmpool.operator.adapters.comfy_probe import (
    ProbeReason,
    ProbeResult,
    ProbeTarget,
    probe_once,
    probe_with,
)
from warmpool.operator.adapters.comfy_values import (
    HOST_OOM,
    OOM_TIPS,
    OutputFile,
    ProgressCallback,
    ProgressEvent,
    PromptResult,
    QueueState,
    Submitted,
    execution_error,
    is_out_of_memory,
    outputs_from,
    validation_error,
)

__all__ = [
    "HOST_OOM", "OOM_TIPS", "WS_GREETING_TIMEOUT",
    "ComfyClient", "ComfyLimits", "OutputFile", "ProbeReason", "ProbeResult", "ProbeTarget",
    "ProgressCallback", "ProgressEvent", "PromptResult", "QueueState", "Submitted",
    "execution_error", "is_out_of_memory", "outputs_from", "probe", "probe_once", "probe_with",
    "validation_error",
]  # fmt: skip

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
#: A JSON answer must arrive whole within this many per-request time-outs (a body dripping
#: one byte at a time never trips the per-read time-out).
TOTAL_TIMEOUT_FACTOR = 3


# ---------------------------------------------------------------- client


class ComfyClient:
    """One ComfyUI server (one instance) reached through a shared ``httpx.AsyncClient``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        sleep: Sleep = asyncio.sleep,
        limits: ComfyLimits | None = None,
        tls: ssl.SSLContext | None = None,
        allow_http: bool = True,
    ) -> None:
        self._http = http
        #: The TLS context the HTTP client verifies with; the websocket uses the same.
        self.tls = tls
        #: False: an ``http://`` base URL is refused before anything (the token) is sent.
        self.allow_http = allow_http
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self.attempts = attempts
        self._sleep = sleep
        self.limits = limits or ComfyLimits()

    async def sleep(self, seconds: float) -> None:
        """The client's sleep (injected: tests make backoff and polling instant)."""
        await self._sleep(seconds)

    @property
    def _headers(self) -> dict[str, str]:
        # identity: no compressed body whose expansion would have to be counted
        headers = {"Accept-Encoding": "identity"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    async def _request(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> bytes:
        """The chokepoint: time-out, byte cap, status → error, retries of idempotent calls.
        Returns the body (at most ``limits.json`` bytes, read within
        :data:`TOTAL_TIMEOUT_FACTOR` time-outs)."""
        endpoint = f"{method} {path.split('?')[0]}"
        self._check_channel(endpoint)

        async def once() -> bytes:
            request = self._http.build_request(
                method, self.base_url + path, headers=self._headers, timeout=self.timeout,
                **kwargs,
            )  # fmt: skip
            try:
                async with asyncio.timeout(self.timeout * TOTAL_TIMEOUT_FACTOR):
                    response = await self._http.send(request, stream=True)
                    try:
                        body: bytes = await read_capped(response, endpoint, self.limits.json)
                    finally:
                        await response.aclose()
            except (httpx.TimeoutException, TimeoutError) as exc:
                raise errors.ComfyTimedOutError(f"{endpoint}: timed out") from exc
            except httpx.TransportError as exc:
                raise _transport_error(endpoint, exc) from exc
            logger.debug("%s → %s", endpoint, response.status_code)
            _raise_for_status(endpoint, response.status_code, body)
            return body

        attempts = self.attempts if retry else 1
        if attempts == 1:  # (POST /prompt: never retried; no retry machinery to set up)
            return await once()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=2.0),
            retry=retry_if_exception_type(errors.ComfyUnavailableError),
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await once()
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_channel(self, endpoint: str) -> None:
        if not self.allow_http and not self.base_url.startswith("https://"):
            raise errors.ComfyInsecureChannelError(
                f"{endpoint}: plain HTTP refused (WARMPOOL_COMFY_ALLOW_PLAIN_HTTP is off); "
                "nothing was sent"
            )

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        body = await self._request(method, path, **kwargs)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise errors.ComfyMalformedResponseError(f"{method} {path}: not JSON") from exc

    # ------------------------------------------------------------- calls
    async def system_stats(self, *, retry: bool = True) -> dict[str, Any]:
        data = await self._json("GET", "/system_stats", retry=retry)
        stats: dict[str, Any] = answers.parse(dict[str, Any], data, "GET /system_stats")
        return stats

    async def object_info(self, node_class: str | None = None) -> dict[str, Any]:
        path = "/object_info" + (f"/{node_class}" if node_class else "")
        data = await self._json("GET", path)
        info: dict[str, Any] = answers.parse(dict[str, dict[str, Any]], data, f"GET {path}")
        return info

    async def list_models(self, folder: str, *, retry: bool = True) -> list[str]:
        data = await self._json("GET", f"/models/{folder}", retry=retry)
        names: list[str] = answers.parse(list[str], data, "GET /models/{folder}")
        return names

    async def submit_prompt(
        self,
        graph: Mapping[str, Any],
        client_id: str,
        *,
        prompt_id: str | None = None,
        number: float | None = None,
        extra_data: Mapping[str, Any] | None = None,
    ) -> Submitted:
        """``POST /prompt`` (never retried: a lost answer may still have queued it).

        ``prompt_id``: chosen by the client (a canonical UUID; servers before mid-2025
        ignore it: the answer's id is the one). ``number``: its place in the queue (lowest
        runs first; the server's counter when None)."""
        body: dict[str, Any] = {"prompt": graph, "client_id": client_id}
        if prompt_id:
            body["prompt_id"] = prompt_id
        if number is not None:
            body["number"] = number
        if extra_data:
            body["extra_data"] = dict(extra_data)
        try:
            data = await self._json("POST", "/prompt", retry=False, json=body)
        except errors.ComfyBadRequestError as exc:
            raise validation_error(exc.body) from None
        answer = answers.parse(answers.PromptAnswer, data, "POST /prompt")
        # A 200 with a prompt_id AND node_errors: the server queued the outputs that
        # validated and runs them; the id must be kept so it can be followed or
        # interrupted (raising here would orphan a running prompt).
        return Submitted(answer.prompt_id, answer.number, dict(answer.node_errors))

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The history entry of a finished prompt (its shape checked), or None while it is
        not there."""
        data = await self._json("GET", f"/history/{prompt_id}")
        entry = data.get(prompt_id) if isinstance(data, dict) else None
        if entry is None:
            return None
        answers.parse(answers.HistoryEntry, entry, "GET /history/{prompt_id}")
        checked: dict[str, Any] = entry
        return checked

    async def queue_state(self) -> QueueState:
        data = answers.parse(answers.QueueAnswer, await self._json("GET", "/queue"), "GET /queue")
        try:
            running = tuple(str(i[1]) for i in data.queue_running)
            pending = tuple(str(i[1]) for i in sorted(data.queue_pending, key=lambda i: i[0]))
        except (IndexError, TypeError) as exc:
            raise errors.ComfyMalformedResponseError("GET /queue: wrong shape") from exc
        return QueueState(running, pending)

    async def interrupt(self, prompt_id: str | None = None) -> None:
        """Stop the running prompt (only ``prompt_id``, when given)."""
        body = {"prompt_id": prompt_id} if prompt_id else {}
        await self._request("POST", "/interrupt", json=body)

    async def delete_queued(self, prompt_ids: Iterable[str]) -> None:
        """``POST /queue {"delete": [...]}``: drop pending prompts (unknown ids and the
        running one are left alone: only :meth:`interrupt` stops a running prompt)."""
        await self._request("POST", "/queue", json={"delete": list(prompt_ids)})

    async def cancel(self, prompt_id: str) -> None:
        """Whatever its state: drop it from the pending queue, interrupt it if running."""
        await self.delete_queued([prompt_id])
        await self.interrupt(prompt_id)

    async def upload_image(
        self, data: bytes, filename: str, *, subfolder: str = "", overwrite: bool = True
    ) -> str:
        """Upload into ``input/``; returns the name to put in ``LoadImage.image``."""
        files = {"image": (filename, data, "application/octet-stream")}
        form = {"subfolder": subfolder, "type": "input", "overwrite": str(overwrite).lower()}
        data = await self._json("POST", "/upload/image", files=files, data=form)
        answer = answers.parse(answers.UploadAnswer, data, "POST /upload/image")
        sub = answer.subfolder or ""
        return f"{sub}/{answer.name}" if sub else answer.name

    async def fetch_output(
        self, output: OutputFile, *, limit: int | None = None, chunk_size: int = 65536
    ) -> AsyncIterator[bytes]:
        """The bytes of one output from ``/view``, streamed; use with ``contextlib.aclosing``.

        At most ``limit`` bytes (default ``limits.image``): past it the stream stops with
        :class:`errors.ComfyAnswerTooLargeError` (a declared ``Content-Length`` above it is
        refused before the first byte)."""
        cap = self.limits.image if limit is None else limit
        self._check_channel("GET /view")
        params = {"filename": output.filename, "subfolder": output.subfolder, "type": output.type}
        request = self._http.build_request(
            "GET", self.base_url + "/view", params=params, headers=self._headers,
            timeout=self.timeout,
        )  # fmt: skip
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise _transport_error("GET /view", exc) from exc
        try:
            if response.status_code >= 400:
                body = await read_capped(response, "GET /view", self.limits.json)
                _raise_for_status("GET /view", response.status_code, body)
            try:
                async for chunk in capped_chunks(response, "GET /view", cap, chunk_size=chunk_size):
                    yield chunk
            except httpx.TimeoutException as exc:
                raise errors.ComfyTimedOutError("GET /view: timed out") from exc
            except httpx.TransportError as exc:
                raise errors.ComfyRefusedError(f"GET /view: {type(exc).__name__}") from exc
        finally:
            await response.aclose()

    # ------------------------------------------------------------- following a prompt
    def _ws_url(self, client_id: str) -> str:
        scheme = "wss" if self.base_url.startswith("https") else "ws"
        return f"{scheme}{self.base_url[self.base_url.index(':') :]}/ws?clientId={client_id}"

    def connect(self, client_id: str) -> connect:
        """An (unopened) websocket connection to ``/ws`` for ``client_id``."""
        self._check_channel("GET /ws")
        return connect(
            self._ws_url(client_id), additional_headers=self._headers,
            max_size=self.limits.json, open_timeout=self.timeout, ping_interval=20,
            ping_timeout=20, ssl=self.tls if self.base_url.startswith("https") else None,
        )  # fmt: skip

    async def run_prompt(
        self,
        graph: Mapping[str, Any],
        *,
        client_id: str | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: float = 3600.0,
        poll_interval: float = 1.0,
    ) -> PromptResult:
        """Open the socket, submit, follow to the end: no event can be missed."""
        client_id = client_id or uuid.uuid4().hex
        follower = Follower(self, client_id, on_progress, deadline, poll_interval)
        return await follower.run(graph=graph)

    async def follow_prompt(
        self,
        prompt_id: str,
        client_id: str,
        *,
        on_progress: ProgressCallback | None = None,
        deadline: float = 3600.0,
        poll_interval: float = 1.0,
    ) -> PromptResult:
        """Follow an already submitted prompt to its end (success → result, else raise)."""
        follower = Follower(self, client_id, on_progress, deadline, poll_interval)
        return await follower.run(prompt_id=prompt_id)


def _transport_error(endpoint: str, exc: httpx.TransportError) -> errors.ComfyError:
    """A transport failure: a TLS verification failure is a refused channel (permanent for
    this URL: the machine does not hold the certificate pinned for it), the rest refused."""
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text.lower():
        return errors.ComfyInsecureChannelError(f"{endpoint}: TLS certificate not verified")
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text.lower():
        return errors.ComfyInsecureChannelError(f"{endpoint}: the machine does not speak TLS")
    if isinstance(exc, httpx.ConnectError):
        return errors.ComfyRefusedError(f"{endpoint}: connection refused")
    return errors.ComfyRefusedError(f"{endpoint}: {type(exc).__name__}")


def _raise_for_status(endpoint: str, code: int, content: bytes) -> None:
    if code < 400:
        return
    if code in (401, 403):
        raise errors.ComfyAuthError(f"{endpoint}: {code}, token refused")
    if code == 400:
        try:
            body = json.loads(content)
        except ValueError:
            body = {}
        raise errors.ComfyBadRequestError(
            f"{endpoint}: 400", body=body if isinstance(body, dict) else {}
        )
    if code >= 500 or code in (408, 429):
        raise errors.ComfyServerError(f"{endpoint}: HTTP {code}")
    raise errors.ComfyError(f"{endpoint}: HTTP {code}")


# ---------------------------------------------------------------- readiness probe


async def probe(
    http: httpx.AsyncClient,
    base_url: str,
    token: str | None,
    *,
    required_models: Iterable[tuple[str, str]] = (),
    deadline: float = 60.0,
    initial_backoff: float = 0.5,
    max_backoff: float = 15.0,
    attempt_timeout: float = 5.0,
    sleep: Sleep = asyncio.sleep,
    limits: ComfyLimits | None = None,
    allow_http: bool = True,
) -> ProbeResult:
    """Probe one server until ready or ``deadline`` seconds passed (see :mod:`.comfy_probe`)."""
    client = ComfyClient(http, base_url, token, timeout=attempt_timeout, attempts=1, limits=limits,
                         allow_http=allow_http)  # fmt: skip
    return await probe_with(client, required_models=required_models, deadline=deadline,
                            initial_backoff=initial_backoff, max_backoff=max_backoff,
                            sleep=sleep)  # fmt: skip
