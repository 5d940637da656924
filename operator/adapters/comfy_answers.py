"""The shapes of ComfyUI's JSON answers, checked with pydantic before anything is used.

A rented machine may answer anything; the ComfyUI adapter validates each answer it reads
against these models (extra keys are kept or ignored, a wrong type is
:class:`errors.ComfyMalformedResponseError`), so no ``AttributeError``/``KeyError`` from a
hostile answer reaches a controller. Shapes: ``contracts/comfyui-api.md``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from warmpool.operator import errors

T = TypeVar("T")


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PromptAnswer(_Answer):
    """``POST /prompt`` (200)."""

    prompt_id: str = Field(min_length=1, max_length=256)
    number: float = 0
    node_errors: dict[str, Any] = Field(default_factory=dict)


class QueueAnswer(_Answer):
    """``GET /queue``: items are ``[number, prompt_id, prompt, extra, outputs]``."""

    queue_running: list[list[Any]]
    queue_pending: list[list[Any]]


class HistoryStatus(_Answer):
    status_str: str | None = None
    completed: bool | None = None
    messages: list[tuple[str, dict[str, Any]]] = Field(default_factory=list)


class HistoryEntry(_Answer):
    """One entry of ``GET /history/{id}``."""

    outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    status: HistoryStatus | None = None


class UploadAnswer(_Answer):
    """``POST /upload/image``."""

    name: str = Field(min_length=1, max_length=1024)
    subfolder: str | None = None


class WsMessage(_Answer):
    """One text frame of ``/ws``: ``{"type": ..., "data": {...}}``."""

    type: str = ""
    data: dict[str, Any] | None = None


_ADAPTERS: dict[object, TypeAdapter[Any]] = {}


def parse(shape: type[T], data: object, endpoint: str) -> T:
    """``data`` as ``shape`` (a model or a type such as ``dict[str, Any]``), or
    :class:`errors.ComfyMalformedResponseError` naming the endpoint and the first bad field."""
    adapter = _ADAPTERS.get(shape)
    if adapter is None:
        adapter = _ADAPTERS[shape] = TypeAdapter(shape)
    try:
        result: T = adapter.validate_python(data)
    except ValidationError as exc:
        problems = exc.errors()
        where = ".".join(str(p) for p in problems[0]["loc"]) if problems else ""
        what = problems[0]["msg"] if problems else "invalid"
        raise errors.ComfyMalformedResponseError(
            f"{endpoint}: wrong shape at {where or 'the top'}: {what}"
        ) from None
    return result
