"""The ComfyUI adapter's values: what a prompt produced, progress events, the queue, and
the typed errors of an ``execution_error`` payload or a ``POST /prompt`` refusal.

Shared by the HTTP client (:mod:`.comfy`), the per-prompt follower (:mod:`.comfy_follow`)
and the per-instance websocket session (:mod:`.comfy_session`); ``comfy`` re-exports them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from warmpool.operator import errors

OOM_TIPS = "This error means you ran out of memory on your GPU."
HOST_OOM = "DefaultCPUAllocator: can't allocate memory"


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
