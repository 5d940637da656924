"""Liveness, readiness and metrics (no authentication, no rate limit)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from warmpool.api.deps import StudioDep
from warmpool.operator import errors
from warmpool.operator.adapters import kube

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the Kubernetes API answers")
async def readyz(studio: StudioDep, response: Response) -> dict[str, str]:
    try:
        await studio.kube.get(kube.NAMESPACES, studio.settings.studio_namespace)
    except errors.KubeError:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"status": "kubernetes API unreachable"}
    return {"status": "ok"}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
