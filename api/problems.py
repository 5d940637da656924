"""Error answers in FastAPI's own 422 shape, so every refusal names its field.

``{"detail": [{"type": ..., "loc": ["body", "prompt"], "msg": ...}]}`` — the same
body FastAPI gives for a schema violation, also for the rules the schema cannot
express (blocklist, unknown pool or model, upload type) and for refusals by the
Kubernetes API server (its ``causes`` are mapped back onto request fields).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import HTTPException, Request, status
from fastapi.responses import JSONResponse

from warmpool.operator import errors


class FieldError(HTTPException):
    """A 422 naming one field."""

    def __init__(self, loc: Sequence[str | int], msg: str, *, type: str = "value_error") -> None:
        super().__init__(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"type": type, "loc": list(loc), "msg": msg}],
        )


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} not found")


def _loc(field: str) -> list[str | int]:
    """``spec.appearance.hair`` → ``["body", "appearance", "hair"]``."""
    parts: list[str | int] = ["body"]
    for part in field.split(".")[1 if field.startswith("spec.") else 0 :]:
        name, _, index = part.partition("[")
        if name:
            parts.append(name)
        if index.rstrip("]").isdigit():
            parts.append(int(index.rstrip("]")))
    return parts


async def on_kube_error(request: Request, exc: Exception) -> JSONResponse:
    """Translate adapter errors that escape a route into HTTP answers."""
    if isinstance(exc, errors.KubeInvalidError):
        detail = [
            {
                "type": "kubernetes_invalid",
                "loc": _loc(c.get("field", "")),
                "msg": c.get("message", "invalid"),
            }
            for c in exc.causes
        ] or [{"type": "kubernetes_invalid", "loc": ["body"], "msg": str(exc)}]
        return JSONResponse({"detail": detail}, status_code=422)
    if isinstance(exc, errors.KubeNotFoundError):
        return JSONResponse({"detail": "not found"}, status_code=404)
    if isinstance(exc, errors.KubeConflictError):
        return JSONResponse({"detail": "conflict: changed meanwhile or exists"}, status_code=409)
    return JSONResponse(
        {"detail": "the Kubernetes API is unavailable"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def on_artifact_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, errors.ArtifactNotFoundError):
        return JSONResponse({"detail": "artifact not found"}, status_code=404)
    return JSONResponse({"detail": "the artifact store is unavailable"}, status_code=503)
