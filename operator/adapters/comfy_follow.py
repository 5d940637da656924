"""Following one prompt to its end: its events, the history entry, polling without a socket.

:class:`Follower` turns ComfyUI's websocket events of one prompt into
:class:`ProgressEvent` callbacks and, at the end marker (``executing`` with ``node: null``
and the prompt's id, contract §14.1), into a :class:`PromptResult` read from the history;
an ``execution_error`` or ``execution_interrupted`` becomes the typed error. Where the
events come from is the caller's: :meth:`Follower.run` opens a socket of its own for one
prompt (the canary, tools), :mod:`.comfy_session` feeds it from the instance's one shared
socket. After an ``execution_success`` on the socket, the outputs are those the
``executed`` events carried (cached output nodes replay theirs: 0.3.64 recording
``04-run-cached-resubmission``), without a history read. Without a socket,
:meth:`Follower.check` polls ``/history/{id}`` and ``/queue``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.frames import CloseCode

from warmpool.operator import errors
from warmpool.operator.adapters import comfy_answers as answers
from warmpool.operator.adapters.comfy_limits import ComfyLimits, too_large
from warmpool.operator.adapters.comfy_values import (
    ProgressCallback,
    ProgressEvent,
    PromptResult,
    QueueState,
    Submitted,
    execution_error,
    outputs_from,
)

logger = logging.getLogger(__name__)

WS_GREETING_TIMEOUT = 5.0  # for the first status, sent once the server registered the socket
#: A prompt in neither queue nor history for this long (at least) is lost.
LOST_AFTER = 5.0


def message(raw: str) -> answers.WsMessage:
    """One websocket text frame, its envelope checked."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise errors.ComfyMalformedResponseError("GET /ws: a frame is not JSON") from exc
    parsed: answers.WsMessage = answers.parse(answers.WsMessage, data, "GET /ws")
    return parsed


async def greeting(ws: ClientConnection) -> list[str]:
    """Wait (briefly) for the first ``status``: ComfyUI registers a socket only after the
    handshake, then greets it (``sid``); an end announced before goes to nobody. Frames
    arriving before the greeting are returned (to be handled after it)."""
    early: list[str] = []
    try:
        async with asyncio.timeout(WS_GREETING_TIMEOUT):
            async for raw in ws:
                if isinstance(raw, bytes):
                    continue
                if message(raw).type == "status":
                    return early
                early.append(raw)
    except TimeoutError:
        logger.info("no status greeting within %gs; going on", WS_GREETING_TIMEOUT)
        return early
    raise WebSocketException("socket closed")


class PromptClient(Protocol):
    """What a follower uses of :class:`.comfy.ComfyClient`."""

    limits: ComfyLimits

    async def sleep(self, seconds: float) -> None: ...
    def connect(self, client_id: str) -> connect: ...
    async def submit_prompt(
        self, graph: Mapping[str, Any], client_id: str, *, prompt_id: str | None = None,
        number: float | None = None, extra_data: Mapping[str, Any] | None = None,
    ) -> Submitted: ...  # fmt: skip
    async def history(self, prompt_id: str) -> dict[str, Any] | None: ...
    async def queue_state(self) -> QueueState: ...


@dataclass
class Follower:
    """One prompt followed to its end (see the module docstring)."""

    client: PromptClient
    client_id: str
    on_progress: ProgressCallback | None
    deadline: float
    poll_interval: float
    prompt_id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    started: bool = False
    succeeded: bool = False  # execution_success came over the socket
    missing_since: float | None = None

    async def emit(self, event: ProgressEvent) -> None:
        if self.on_progress is not None:
            result = self.on_progress(event)
            if inspect.isawaitable(result):
                await result

    # ------------------------------------------------------------- a socket of its own
    async def run(
        self, *, graph: Mapping[str, Any] | None = None, prompt_id: str | None = None
    ) -> PromptResult:
        """Open a socket for this prompt, submit ``graph`` (or follow ``prompt_id``), follow
        it to the end; poll when the socket is refused or drops."""
        end = time.monotonic() + self.deadline
        try:
            async with asyncio.timeout(self.deadline):
                try:
                    async with self.client.connect(self.client_id) as ws:
                        early = await greeting(ws)
                        if graph is not None:
                            sub = await self.client.submit_prompt(graph, self.client_id)
                            self.prompt_id = sub.prompt_id
                        else:
                            self.prompt_id = str(prompt_id)
                            entry = await self.client.history(self.prompt_id)
                            if entry is not None:
                                return await self.from_history(entry)
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

    async def _listen(self, ws: ClientConnection, early: Iterable[str] = ()) -> PromptResult:
        for text in early:
            if (result := await self.on_message(message(text))) is not None:
                return result
        async for raw in ws:
            if isinstance(raw, bytes):
                continue  # previews
            if (result := await self.on_message(message(raw))) is not None:
                return result
        raise WebSocketException("socket closed")

    async def _poll(self, end: float) -> PromptResult:
        """No socket: poll history, and the queue to notice a prompt that was lost."""
        while True:
            try:
                result = await self.check()
                if result is not None:
                    return result
            except errors.ComfyUnavailableError as exc:
                if (
                    isinstance(exc, errors.ComfyPromptLostError)
                    or time.monotonic() + self.poll_interval > end
                ):
                    raise
                logger.info("polling prompt %s: %s", self.prompt_id, exc)
            await self.client.sleep(self.poll_interval)

    # ------------------------------------------------------------- events
    async def on_message(self, msg: answers.WsMessage) -> PromptResult | None:
        """Handle one text message; the result once the prompt ended, else None."""
        pid = self.prompt_id
        kind, data = msg.type, msg.data or {}
        if kind == "status" and not self.started:
            remaining = data.get("status", {}).get("exec_info", {}).get("queue_remaining")
            await self.emit(ProgressEvent("queued", pid, queue_remaining=remaining))
            return None
        if data.get("prompt_id") != pid:
            return None
        if kind == "execution_start":
            await self.mark_started()
        elif kind == "execution_cached":
            nodes = tuple(str(n) for n in data.get("nodes", []))
            await self.emit(ProgressEvent("cached", pid, nodes=nodes))
        elif kind == "executing" and data.get("node") is None:
            if self.succeeded and self.outputs:
                # Every output node's UI came with ``executed`` (cached ones replayed): the
                # same dict the history holds, so no GET /history is needed.
                return PromptResult(pid, outputs_from(self.outputs))
            entry = await self._history_after_end()
            if entry is not None:
                return await self.from_history(entry)
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
            self.succeeded = True
            await self.emit(ProgressEvent("success", pid))
        elif kind == "execution_error":
            await self.emit(ProgressEvent("error", pid, node=data.get("node_id")))
            raise execution_error(data)
        elif kind == "execution_interrupted":
            await self.emit(ProgressEvent("interrupted", pid, node=data.get("node_id")))
            raise errors.ComfyInterruptedError(f"prompt {pid} was interrupted")
        return None

    async def mark_started(self) -> None:
        if not self.started:
            self.started = True
            await self.emit(ProgressEvent("started", self.prompt_id))

    # ------------------------------------------------------------- history and queue
    async def _history_after_end(self) -> dict[str, Any] | None:
        """History is written before the end marker, but be lenient (contract §14.1)."""
        for delay in (0.0, 0.2, 0.5, 1.0, 2.0):
            if delay:
                await self.client.sleep(delay)
            entry = await self.client.history(self.prompt_id)
            if entry is not None:
                return entry
        return None

    async def from_history(self, entry: Mapping[str, Any], via: str = "websocket") -> PromptResult:
        """The result of a finished prompt's history entry (or its typed error)."""
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

    async def check(self) -> PromptResult | None:
        """One look without the socket: the result when the prompt is in the history; None
        while it is queued or running (``started`` reported when it runs); a prompt in
        neither for :data:`LOST_AFTER` seconds (a restart lost it) raises
        :class:`errors.ComfyPromptLostError`. Returns whether it was seen queued through
        :attr:`missing_since` (None: seen)."""
        entry = await self.client.history(self.prompt_id)
        if entry is not None:
            return await self.from_history(entry, via="history")
        queue = await self.client.queue_state()
        if self.prompt_id in queue.running:
            self.missing_since = None
            await self.mark_started()
        elif self.prompt_id in queue.pending:
            self.missing_since = None
        else:
            # It may have ended between the two reads: the history tells next time.
            self.missing_since = self.missing_since or time.monotonic()
            if time.monotonic() - self.missing_since > max(5 * self.poll_interval, LOST_AFTER):
                raise errors.ComfyPromptLostError(
                    f"prompt {self.prompt_id} is neither queued nor in history"
                )
        return None
