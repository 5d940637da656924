"""One websocket per ComfyUI server, shared by every prompt the operator runs there.

ComfyUI sends a prompt's events to the socket whose ``clientId`` the prompt was submitted
with (contract §13.2), and one socket may carry any number of prompts. A
:class:`ComfySession` keeps that socket open for an instance: each prompt's follower
subscribes under its prompt id (chosen by the client, a canonical UUID, before the
``POST /prompt``: no event can come before the subscription), and a reader task routes
every frame by its ``prompt_id``. A job's dispatch then costs one ``POST /prompt`` —
no socket, TLS handshake or greeting per job — and a prompt queued behind the running
one (queue-ahead) is followed on the same socket.

The socket is opened on first use and closed after :attr:`ComfySession.linger` seconds
without a subscriber. When it drops, the reader reconnects with backoff; events sent in
between are lost (ComfyUI keeps no replay), so every follower is told, looks its prompt
up in the history and the queue (:meth:`.Follower.check`) and goes on listening; while
the socket is down the followers poll. A refused token or an oversized frame fails every
follower (the token is wrong for all prompts; a machine that sends frames past the cap is
not trusted). A server that ignores a client-chosen ``prompt_id`` (before mid-2025)
answers another one: the subscription moves to it, with the frames that came for it first.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import inspect
import logging
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.frames import CloseCode

from warmpool.operator import errors
from warmpool.operator.adapters import comfy_answers as answers
from warmpool.operator.adapters.comfy_follow import WS_GREETING_TIMEOUT, Follower, greeting, message
from warmpool.operator.adapters.comfy_limits import too_large
from warmpool.operator.adapters.comfy_values import (
    ProgressCallback,
    ProgressEvent,
    PromptResult,
    Submitted,
)

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from warmpool.operator.adapters.comfy import ComfyClient

logger = logging.getLogger(__name__)

#: Seconds the socket stays open without a subscriber.
LINGER = 30.0
#: Reconnection backoff: first delay, ceiling (seconds).
BACKOFF = (0.2, 5.0)
#: Frames kept for prompt ids nobody follows yet (an old server's own ids): ids, frames each.
EARLY_IDS, EARLY_FRAMES = 32, 256


class Signal(enum.Enum):
    """What the reader tells every follower besides frames."""

    DOWN = "down"  # the socket dropped: poll until it is back
    RECONNECTED = "reconnected"  # back, but what was sent meanwhile is lost: look it up


Item = answers.WsMessage | Signal | Exception


class ComfySession:
    """The shared websocket of one ComfyUI server (see the module docstring)."""

    def __init__(
        self, client: ComfyClient, *, client_id: str | None = None, linger: float = LINGER
    ) -> None:
        self.client = client
        self.client_id = client_id or f"warmpool-{uuid.uuid4().hex}"
        self.linger = linger
        #: Connections made so far (1 once up; more after reconnections).
        self.connections = 0
        self._subs: dict[str, asyncio.Queue[Item]] = {}
        self._early: OrderedDict[str, list[answers.WsMessage]] = OrderedDict()
        self._up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._failure: Exception | None = None
        self._posts: dict[str, asyncio.Future[Submitted]] = {}  # POST /prompt in flight

    @property
    def up(self) -> bool:
        """The socket is open and greeted."""
        return self._up.is_set()

    @property
    def failed(self) -> bool:
        """The token was refused: this session is useless (a new token makes a new one)."""
        return isinstance(self._failure, errors.ComfyAuthError)

    @property
    def following(self) -> tuple[str, ...]:
        """The prompt ids followed now."""
        return tuple(self._subs)

    # ------------------------------------------------------------- following prompts
    async def run_prompt(
        self,
        graph: Mapping[str, Any],
        *,
        prompt_id: str | None = None,
        number: float | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: float = 3600.0,
        queue_wait: float | None = None,
        poll_interval: float = 1.0,
    ) -> PromptResult:
        """Submit ``graph`` under ``prompt_id`` (a new UUID when None) and queue ``number``
        on this session's client id and follow it to its end. ``queued`` is reported once
        ComfyUI accepted it, ``started`` when it begins to run (it may wait behind others).

        ``deadline``: seconds from the submission to the end; with ``queue_wait``, seconds
        from the prompt's start instead, and ``queue_wait`` bounds the time before the start
        (:class:`errors.ComfyQueueWaitError`). The ``POST /prompt`` is never cut off half
        way: when this is cancelled meanwhile, :meth:`settle` waits for ComfyUI's answer (a
        request ComfyUI received is queued however the client went away)."""
        pid = prompt_id or str(uuid.uuid4())
        bounds = _Bounds(deadline, queue_wait, on_progress)
        follower = Follower(self.client, self.client_id, bounds.emit, deadline, poll_interval,
                            prompt_id=pid)  # fmt: skip
        queue = self._subscribe(pid)
        try:
            async with asyncio.timeout(None) as scope:
                bounds.arm(scope)
                await self._ready()
                post = asyncio.ensure_future(self.client.submit_prompt(
                    graph, self.client_id, prompt_id=pid, number=number
                ))  # fmt: skip
                self._posts[pid] = post
                post.add_done_callback(functools.partial(self._posted, pid))
                submitted = await asyncio.shield(post)
                if submitted.prompt_id != pid:
                    queue = self._rekey(pid, submitted.prompt_id)
                    follower.prompt_id = pid = submitted.prompt_id
                await follower.emit(ProgressEvent("queued", pid))
                return await self._listen(follower, queue)
        except TimeoutError as exc:
            raise bounds.error(pid) from exc
        finally:
            self._unsubscribe(follower.prompt_id, queue)

    def _posted(self, prompt_id: str, post: asyncio.Future[Submitted]) -> None:
        if self._posts.get(prompt_id) is post:
            del self._posts[prompt_id]
        if not post.cancelled():
            post.exception()  # retrieved here: the follower may have gone (cancelled)

    async def settle(self, prompt_id: str, *, timeout: float) -> str | None:
        """Wait (at most ``timeout`` seconds) for ComfyUI's answer to a ``POST /prompt`` of
        ``prompt_id`` still in flight; the id it was accepted under (None: refused, no
        answer, or none in flight). Before a cancelled prompt is taken out of the queue."""
        post = self._posts.get(prompt_id)
        if post is None:
            return None
        try:
            async with asyncio.timeout(timeout):
                submitted = await asyncio.shield(post)
        except (errors.ComfyError, TimeoutError):
            return None
        return submitted.prompt_id

    async def follow_prompt(
        self,
        prompt_id: str,
        *,
        on_progress: ProgressCallback | None = None,
        deadline: float = 3600.0,
        queue_wait: float | None = None,
        poll_interval: float = 1.0,
    ) -> PromptResult:
        """Follow a prompt submitted before (by this session's client id) to its end
        (``deadline`` and ``queue_wait`` as in :meth:`run_prompt`)."""
        bounds = _Bounds(deadline, queue_wait, on_progress)
        follower = Follower(self.client, self.client_id, bounds.emit, deadline, poll_interval,
                            prompt_id=prompt_id)  # fmt: skip
        queue = self._subscribe(prompt_id)
        try:
            async with asyncio.timeout(None) as scope:
                bounds.arm(scope)
                await self._ready()
                result = await follower.check()  # finished (or started) while unwatched?
                if result is not None:
                    return result
                return await self._listen(follower, queue)
        except TimeoutError as exc:
            raise bounds.error(prompt_id) from exc
        finally:
            self._unsubscribe(prompt_id, queue)

    async def _listen(self, follower: Follower, queue: asyncio.Queue[Item]) -> PromptResult:
        """Frames and signals until the prompt ends. While the socket is down, or until a
        reconnection showed the prompt still queued, the follower looks it up every
        ``poll_interval`` instead."""
        verifying = False
        while True:
            item: Item | None
            if self.up and not verifying:
                item = await queue.get()
            else:
                try:
                    item = await asyncio.wait_for(queue.get(), follower.poll_interval)
                except TimeoutError:
                    item = None
            if isinstance(item, Exception):
                raise item
            if item is None or isinstance(item, Signal):
                verifying = True
                try:
                    result = await follower.check()
                except errors.ComfyPromptLostError:
                    raise
                except errors.ComfyUnavailableError as exc:  # the deadline bounds this
                    logger.info("looking up prompt %s: %s", follower.prompt_id, exc)
                    continue
                if result is not None:
                    return result
                verifying = follower.missing_since is not None
                continue
            result = await follower.on_message(item)
            if result is not None:
                return result

    # ------------------------------------------------------------- subscriptions
    def _subscribe(self, prompt_id: str) -> asyncio.Queue[Item]:
        queue: asyncio.Queue[Item] = asyncio.Queue()
        self._subs[prompt_id] = queue
        for frame in self._early.pop(prompt_id, ()):
            queue.put_nowait(frame)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"comfy-ws/{self.client_id}")
        return queue

    def _rekey(self, old: str, new: str) -> asyncio.Queue[Item]:
        queue = self._subs.pop(old)
        self._subs[new] = queue
        for frame in self._early.pop(new, ()):
            queue.put_nowait(frame)
        return queue

    def _unsubscribe(self, prompt_id: str, queue: asyncio.Queue[Item]) -> None:
        if self._subs.get(prompt_id) is queue:
            del self._subs[prompt_id]
        if not self._subs and self._idle is None:
            self._idle = asyncio.get_running_loop().call_later(self.linger, self._close_idle)

    def _close_idle(self) -> None:
        self._idle = None
        if not self._subs and self._task is not None:
            self._task.cancel()

    def _tell(self, item: Item) -> None:
        for queue in self._subs.values():
            queue.put_nowait(item)

    async def _ready(self) -> None:
        """Wait for the socket (the first prompt of an instance; at most the greeting's
        time-out: without it the prompt is still followed, by looking it up)."""
        if self._failure is not None and self.failed:
            raise self._failure
        if not self.up and self._task is not None:
            greeted = asyncio.ensure_future(self._up.wait())
            try:  # the reader ends early when the token is refused
                await asyncio.wait({greeted, self._task}, timeout=WS_GREETING_TIMEOUT,
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            finally:
                greeted.cancel()
        if self._failure is not None and self.failed:
            raise self._failure

    # ------------------------------------------------------------- the reader
    async def _run(self) -> None:
        delay = BACKOFF[0]
        greeted = False  # by this reader: a later greeting is a reconnection
        try:
            while self._subs:
                try:
                    async with self.client.connect(self.client_id) as ws:
                        self._ws = ws
                        early = await greeting(ws)
                        self.connections += 1
                        self._up.set()
                        delay = BACKOFF[0]
                        if greeted:
                            self._tell(Signal.RECONNECTED)
                        greeted = True
                        for text in early:
                            self._route(text)
                        async for frame in ws:
                            if isinstance(frame, str):  # (bytes: previews)
                                self._route(frame)
                except InvalidStatus as exc:
                    if exc.response.status_code in (401, 403):
                        self._failure = errors.ComfyAuthError("GET /ws: token refused")
                        self._tell(self._failure)
                        return
                    logger.info("%s: websocket refused (%s)", self.client.base_url,
                                exc.response.status_code)  # fmt: skip
                except ConnectionClosed as exc:
                    if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                        self._tell(too_large("GET /ws", self.client.limits.json, "a frame"))
                    logger.info("%s: websocket closed (%s)", self.client.base_url, exc)
                except errors.ComfyError as exc:  # a malformed frame, or a refused channel
                    self._tell(exc)
                    logger.info("%s: websocket dropped: %s", self.client.base_url, exc)
                except (WebSocketException, OSError, TimeoutError) as exc:
                    logger.info("%s: websocket lost (%s)", self.client.base_url,
                                type(exc).__name__)  # fmt: skip
                finally:
                    self._ws = None
                if self._up.is_set():
                    self._up.clear()
                    self._tell(Signal.DOWN)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF[1])
        finally:
            self._up.clear()

    def _route(self, raw: str) -> None:
        """One text frame to the follower of its prompt (kept a while when none yet)."""
        msg = message(raw)
        pid = (msg.data or {}).get("prompt_id")
        if not isinstance(pid, str) or not pid:
            return  # status broadcasts, a reconnection's executing{node} without an id
        queue = self._subs.get(pid)
        if queue is not None:
            queue.put_nowait(msg)
            return
        frames = self._early.setdefault(pid, [])
        if len(frames) < EARLY_FRAMES:
            frames.append(msg)
        while len(self._early) > EARLY_IDS:
            self._early.popitem(last=False)

    async def aclose(self) -> None:
        """Close the socket and stop the reader (operator shutdown)."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        for post in list(self._posts.values()):
            post.cancel()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class _Bounds:
    """The time-out scope of one followed prompt: ``deadline`` from the submission, or,
    with a ``queue_wait``, that until the prompt begins (its first event past ``queued``)
    and ``deadline`` from then on."""

    def __init__(
        self, deadline: float, queue_wait: float | None, on_progress: ProgressCallback | None
    ) -> None:
        self.deadline, self.queue_wait, self.on_progress = deadline, queue_wait, on_progress
        self.waiting = queue_wait is not None
        self.scope: asyncio.Timeout | None = None

    def arm(self, scope: asyncio.Timeout) -> None:
        self.scope = scope
        first = self.queue_wait if self.queue_wait is not None else self.deadline
        scope.reschedule(asyncio.get_running_loop().time() + first)

    async def emit(self, event: ProgressEvent) -> None:
        if self.waiting and event.kind != "queued" and self.scope is not None:
            self.waiting = False  # it began: the run's own deadline from now
            self.scope.reschedule(asyncio.get_running_loop().time() + self.deadline)
        if self.on_progress is not None:
            result = self.on_progress(event)
            if inspect.isawaitable(result):
                await result

    def error(self, prompt_id: str) -> errors.ComfyDeadlineError:
        if self.waiting:
            return errors.ComfyQueueWaitError(
                f"prompt {prompt_id} did not begin within {self.queue_wait:g}s in the queue"
            )
        return errors.ComfyDeadlineError(
            f"prompt {prompt_id} did not finish within {self.deadline:g}s"
        )
