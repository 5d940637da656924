"""ComfyUI client: node catalogue, models, prompts, progress, outputs; the readiness
probe lives in :mod:`.comfy_probe` (re-exported here, ``comfy.probe`` builds the client).

Wire protocol: ``contracts/comfyui-api.md``. HTTP goes through one chokepoint,
:meth:`ComfyClient._request`, on an injected shared ``httpx.AsyncClient``: time-out,
the status-to-error table, a few retries with jittered exponential backoff for
idempotent calls. The per-instance token travels as ``Authorization: Bearer`` on
every request, the websocket handshake included, never in a URL.

The websocket (``/ws``) uses the ``websockets`` library rather than ``httpx-ws``:
its keepalive pings notice a machine that vanished without closing the socket, it
bounds the frame size (previews can be MBs), and a long-lived socket does not hold
a connection of the shared HTTP pool. When the socket drops, :meth:`follow_prompt`
falls back to polling ``/history/{id}`` and ``/queue``.

Every answer is read with a byte cap (:mod:`.comfy_limits`) and JSON answers are checked
against pydantic shapes (:mod:`.comfy_answers`) before use: a rented machine is not trusted.

One piece of about 670 lines on purpose: the HTTP chokepoint, the websocket follower with
its polling fallback and the output fetcher share one client's state (URL, token, time-outs,
caps); the readiness probe (:mod:`.comfy_probe`), the per-URL HTTP pools
(:mod:`.comfy_clients`), the caps and the answer shapes are split out.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.frames import CloseCode

from warmpool.operator import errors
from warmpool.operator.adapters import comfy_answers as answers
from warmpool.operator.adapters.comfy_limits import (
    ComfyLimits,
    capped_chunks,
    read_capped,
    too_large,
)
from warmpool.operator.adapters.comfy_probe import (
    ProbeReason,
    ProbeResult,
    ProbeTarget,
    probe_once,
    probe_with,
)

__all__ = [
    "ComfyClient", "ComfyLimits", "OutputFile", "ProbeReason", "ProbeResult", "ProbeTarget",
    "ProgressCallback", "ProgressEvent", "PromptResult", "QueueState", "Submitted",
    "execution_error", "is_out_of_memory", "outputs_from", "probe", "probe_once", "probe_with",
    "validation_error",
]  # fmt: skip

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
OOM_TIPS = "This error means you ran out of memory on your GPU."
HOST_OOM = "DefaultCPUAllocator: can't allocate memory"
WS_GREETING_TIMEOUT = 5.0  # for the first status, sent once the server registered the socket
#: A JSON answer must arrive whole within this many per-request time-outs (a body dripping
#: one byte at a time never trips the per-read time-out).
TOTAL_TIMEOUT_FACTOR = 3


# ---------------------------------------------------------------- values


@dataclass(frozen=True)
class OutputFile:
    """One file a prompt produced (an entry of ``history[id].outputs[node][key]``)."""

    filename: str
    subfolder: str
    type: str
    node_id: str
    animated: bool = False


@dataclass(frozen=True)
class ProgressEvent:
    """What :meth:`ComfyClient.follow_prompt` reports to ``on_progress``.

    ``kind``: ``queued`` (``queue_remaining``), ``started``, ``cached`` (``nodes``),
    ``executing`` (``node``), ``progress`` (``value``/``max``), ``executed``
    (``node``, ``output``), ``success``, ``error``, ``interrupted``.
    """

    kind: str
    prompt_id: str
    node: str | None = None
    value: int = 0
    max: int = 0
    nodes: tuple[str, ...] = ()
    output: Mapping[str, Any] | None = None
    queue_remaining: int | None = None


ProgressCallback = Callable[[ProgressEvent], Awaitable[None] | None]


@dataclass(frozen=True)
class Submitted:
    """A queued prompt. ``node_errors`` is non-empty when the server queued it although
    some outputs failed validation (it runs the outputs that validated)."""

    prompt_id: str
    number: float
    node_errors: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PromptResult:
    prompt_id: str
    outputs: tuple[OutputFile, ...]
    via: str = "websocket"  # or "history" when the socket dropped


@dataclass(frozen=True)
class QueueState:
    running: tuple[str, ...]
    pending: tuple[str, ...]

    @property
    def remaining(self) -> int:
        return len(self.running) + len(self.pending)


def outputs_from(entry_outputs: Mapping[str, Any]) -> tuple[OutputFile, ...]:
    """Every ``{filename, subfolder, type}`` of a history entry's (or event's) outputs."""
    files: list[OutputFile] = []
    for node_id, ui in entry_outputs.items():
        if not isinstance(ui, Mapping):
            continue
        animated = bool(ui.get("animated") and any(ui["animated"]))
        for value in ui.values():
            for item in value if isinstance(value, list) else []:
                if isinstance(item, Mapping) and "filename" in item:
                    files.append(OutputFile(str(item["filename"]), str(item.get("subfolder", "")),
                                            str(item.get("type", "output")), str(node_id),
                                            animated))  # fmt: skip
    return tuple(files)


def is_out_of_memory(exception_type: str, message: str) -> bool:
    """Contract §14.6: the type ends with OutOfMemoryError, or the message says so.

    Host memory counts too: torch on CPU (or pinned host memory) raises a plain
    ``RuntimeError: [enforce fail at alloc_cpu.cpp] ... DefaultCPUAllocator: can't
    allocate memory``.
    """
    text = message.lower()
    return (
        exception_type.endswith("OutOfMemoryError")
        or "out of memory" in text
        or HOST_OOM.lower() in text
        or OOM_TIPS.lower() in text
    )


def execution_error(data: Mapping[str, Any]) -> errors.ComfyExecutionError:
    """The typed error for an ``execution_error`` payload."""
    kind = str(data.get("exception_type", ""))
    message = str(data.get("exception_message", "")).strip() or "execution failed"
    cls: type[errors.ComfyExecutionError] = (
        errors.ComfyOutOfMemoryError
        if is_out_of_memory(kind, message)
        else errors.ComfyExecutionError
    )
    return cls(message, node_id=str(data.get("node_id", "")),
               node_type=str(data.get("node_type", "")), exception_type=kind)  # fmt: skip


def validation_error(body: Mapping[str, Any]) -> errors.ComfyValidationError:
    """The typed error for a ``POST /prompt`` refusal, naming the first bad node and input."""
    error = body.get("error") or {}
    if isinstance(error, str):
        error = {"message": error}
    for node_id, entry in (body.get("node_errors") or {}).items():
        for e in entry.get("errors", []):
            name = str((e.get("extra_info") or {}).get("input_name", ""))
            cls = str(entry.get("class_type", ""))
            text = f"node {node_id} ({cls}) input {name!r}: {e.get('message')}: {e.get('details')}"
            return errors.ComfyValidationError(text, node_id=str(node_id), node_type=cls,
                                               input_name=name)  # fmt: skip
    text = f"{error.get('type', 'invalid')}: {error.get('message', '')} {error.get('details', '')}"
    return errors.ComfyValidationError(text.strip())


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
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts if retry else 1),
            wait=wait_exponential_jitter(multiplier=0.2, max=2.0),
            retry=retry_if_exception_type(errors.ComfyUnavailableError),
            sleep=self._sleep,
            reraise=True,
        )
        endpoint = f"{method} {path.split('?')[0]}"
        self._check_channel(endpoint)
        async for attempt in retrying:
            with attempt:
                request = self._http.build_request(
                    method, self.base_url + path, headers=self._headers, timeout=self.timeout,
                    **kwargs,
                )  # fmt: skip
                try:
                    async with asyncio.timeout(self.timeout * TOTAL_TIMEOUT_FACTOR):
                        response = await self._http.send(request, stream=True)
                        try:
                            body = await read_capped(response, endpoint, self.limits.json)
                        finally:
                            await response.aclose()
                except (httpx.TimeoutException, TimeoutError) as exc:
                    raise errors.ComfyTimedOutError(f"{endpoint}: timed out") from exc
                except httpx.TransportError as exc:
                    raise _transport_error(endpoint, exc) from exc
                logger.debug("%s → %s", endpoint, response.status_code)
                _raise_for_status(endpoint, response.status_code, body)
                return body
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
        extra_data: Mapping[str, Any] | None = None,
    ) -> Submitted:
        """``POST /prompt`` (never retried: a lost answer may still have queued it)."""
        body: dict[str, Any] = {"prompt": graph, "client_id": client_id}
        if prompt_id:
            body["prompt_id"] = prompt_id
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

    async def cancel(self, prompt_id: str) -> None:
        """Whatever its state: drop it from the pending queue, interrupt it if running."""
        await self._request("POST", "/queue", json={"delete": [prompt_id]})
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
        follower = _Follower(self, client_id, on_progress, deadline, poll_interval)
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
        follower = _Follower(self, client_id, on_progress, deadline, poll_interval)
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


def _message(raw: str) -> answers.WsMessage:
    """One websocket text frame, its envelope checked."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise errors.ComfyMalformedResponseError("GET /ws: a frame is not JSON") from exc
    message: answers.WsMessage = answers.parse(answers.WsMessage, data, "GET /ws")
    return message


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


@dataclass
class _Follower:
    client: ComfyClient
    client_id: str
    on_progress: ProgressCallback | None
    deadline: float
    poll_interval: float
    prompt_id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    started: bool = False

    async def emit(self, event: ProgressEvent) -> None:
        if self.on_progress is not None:
            result = self.on_progress(event)
            if inspect.isawaitable(result):
                await result

    async def run(
        self, *, graph: Mapping[str, Any] | None = None, prompt_id: str | None = None
    ) -> PromptResult:
        end = time.monotonic() + self.deadline
        try:
            async with asyncio.timeout(self.deadline):
                try:
                    async with self.client.connect(self.client_id) as ws:
                        early = await self._registered(ws)
                        if graph is not None:
                            sub = await self.client.submit_prompt(graph, self.client_id)
                            self.prompt_id = sub.prompt_id
                        else:
                            self.prompt_id = str(prompt_id)
                            entry = await self.client.history(self.prompt_id)
                            if entry is not None:
                                return await self._from_history(entry)
                        return await self._listen(ws, early)
                except InvalidStatus as exc:
                    if exc.response.status_code in (401, 403):
                        raise errors.ComfyAuthError("GET /ws: token refused") from exc
                    logger.info("websocket refused (%s); polling", exc.response.status_code)
                except ConnectionClosed as exc:
                    if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                        raise too_large("GET /ws", self.client.limits.json, "a frame") from exc
                    logger.info("websocket closed (%s); polling history", exc)
                except (WebSocketException, OSError) as exc:
                    logger.info("websocket lost (%s); polling history", type(exc).__name__)
                if not self.prompt_id:
                    raise errors.ComfyRefusedError("websocket unavailable")
                return await self._poll(end)
        except TimeoutError as exc:
            raise errors.ComfyDeadlineError(
                f"prompt {self.prompt_id} did not finish within {self.deadline:g}s"
            ) from exc

    async def _registered(self, ws: ClientConnection) -> list[str]:
        """Wait (briefly) for the first ``status``: ComfyUI registers a socket only after
        the handshake, then greets it (``sid``); an end announced before goes to nobody.
        Messages arriving before the greeting are returned for :meth:`_listen`."""
        early: list[str] = []
        try:
            async with asyncio.timeout(WS_GREETING_TIMEOUT):
                async for raw in ws:
                    if isinstance(raw, bytes):
                        continue
                    if _message(raw).type == "status":
                        return early
                    early.append(raw)
        except TimeoutError:
            logger.info("no status greeting within %gs; going on", WS_GREETING_TIMEOUT)
            return early
        raise WebSocketException("socket closed")

    async def _listen(self, ws: ClientConnection, early: Iterable[str] = ()) -> PromptResult:
        for text in early:
            if (result := await self._on_message(text)) is not None:
                return result
        async for raw in ws:
            if isinstance(raw, bytes):
                continue  # previews
            if (result := await self._on_message(raw)) is not None:
                return result
        raise WebSocketException("socket closed")

    async def _on_message(self, raw: str) -> PromptResult | None:
        """Handle one text message; the result once the prompt ended, else None."""
        pid = self.prompt_id
        message = _message(raw)
        kind, data = message.type, message.data or {}
        if kind == "status" and not self.started:
            remaining = data.get("status", {}).get("exec_info", {}).get("queue_remaining")
            await self.emit(ProgressEvent("queued", pid, queue_remaining=remaining))
            return None
        if data.get("prompt_id") != pid:
            return None
        if kind == "execution_start":
            self.started = True
            await self.emit(ProgressEvent("started", pid))
        elif kind == "execution_cached":
            nodes = tuple(str(n) for n in data.get("nodes", []))
            await self.emit(ProgressEvent("cached", pid, nodes=nodes))
        elif kind == "executing" and data.get("node") is None:
            entry = await self._history_after_end()
            if entry is not None:
                return await self._from_history(entry)
            return PromptResult(pid, outputs_from(self.outputs))
        elif kind == "executing":
            await self.emit(ProgressEvent("executing", pid, node=str(data["node"])))
        elif kind == "progress":
            await self.emit(ProgressEvent("progress", pid, node=data.get("node"),
                                          value=int(data.get("value", 0)),
                                          max=int(data.get("max", 0))))  # fmt: skip
        elif kind == "executed":
            node = str(data.get("node"))
            if data.get("output") is not None:
                self.outputs[node] = data["output"]
            await self.emit(ProgressEvent("executed", pid, node=node, output=data.get("output")))
        elif kind == "execution_success":
            await self.emit(ProgressEvent("success", pid))
        elif kind == "execution_error":
            await self.emit(ProgressEvent("error", pid, node=data.get("node_id")))
            raise execution_error(data)
        elif kind == "execution_interrupted":
            await self.emit(ProgressEvent("interrupted", pid, node=data.get("node_id")))
            raise errors.ComfyInterruptedError(f"prompt {pid} was interrupted")
        return None

    async def _history_after_end(self) -> dict[str, Any] | None:
        """History is written before the end marker, but be lenient (contract §14.1)."""
        for delay in (0.0, 0.2, 0.5, 1.0, 2.0):
            if delay:
                await self.client._sleep(delay)
            entry = await self.client.history(self.prompt_id)
            if entry is not None:
                return entry
        return None

    async def _from_history(self, entry: Mapping[str, Any], via: str = "websocket") -> PromptResult:
        status = entry.get("status") or {}
        messages = status.get("messages") or []
        for kind, data in messages:
            if kind == "execution_error":
                await self.emit(ProgressEvent("error", self.prompt_id, node=data.get("node_id")))
                raise execution_error(data)
            if kind == "execution_interrupted":
                await self.emit(ProgressEvent("interrupted", self.prompt_id))
                raise errors.ComfyInterruptedError(f"prompt {self.prompt_id} was interrupted")
        if status and status.get("status_str") not in (None, "success"):
            raise errors.ComfyExecutionError(f"prompt {self.prompt_id} failed")
        if via == "history":
            await self.emit(ProgressEvent("success", self.prompt_id))
        return PromptResult(self.prompt_id, outputs_from(entry.get("outputs") or {}), via)

    async def _poll(self, end: float) -> PromptResult:
        """No socket: poll history, and the queue to notice a prompt that was lost."""
        missing_since: float | None = None
        while True:
            try:
                entry = await self.client.history(self.prompt_id)
                if entry is not None:
                    return await self._from_history(entry, via="history")
                queue = await self.client.queue_state()
                if self.prompt_id in queue.running or self.prompt_id in queue.pending:
                    missing_since = None
                else:
                    missing_since = missing_since or time.monotonic()
                    if time.monotonic() - missing_since > max(5 * self.poll_interval, 5.0):
                        raise errors.ComfyPromptLostError(
                            f"prompt {self.prompt_id} is neither queued nor in history"
                        )
            except errors.ComfyUnavailableError as exc:
                if (
                    isinstance(exc, errors.ComfyPromptLostError)
                    or time.monotonic() + self.poll_interval > end
                ):
                    raise
                logger.info("polling prompt %s: %s", self.prompt_id, exc)
            await self.client._sleep(self.poll_interval)


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
