"""Prometheus metrics of the studio (prefix ``warmpool_studio_``).

Labels are bounded: route templates (``/api/v1/generations/{name}``) and status
codes, never user names, object names, keys or tokens.
"""

from __future__ import annotations

import time

from fastapi import Request
from fastapi.staticfiles import StaticFiles
from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from warmpool.operator import build

BUILD_INFO = build.BUILD_INFO  # warmpool_build_info{version, commit}, shared with the operator

REQUESTS = Counter(
    "warmpool_studio_requests_total",
    "Studio HTTP requests by route template and status code.",
    ["route", "code"],
)
REQUEST_SECONDS = Histogram(
    "warmpool_studio_request_seconds",
    "Studio request latency by route template, seconds (until the response starts).",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SSE_LISTENERS = Gauge(
    "warmpool_studio_sse_listeners",
    "Open Server-Sent Events progress streams.",
)


def route_template(request: Request) -> str:
    """The matched API route's path template (FastAPI records the route in the scope once
    routing has happened), ``static`` for the page's files (the mount at ``/`` records only
    its endpoint, the StaticFiles app), or ``unmatched`` — never the raw path."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    if isinstance(request.scope.get("endpoint"), StaticFiles) or route is not None:
        return "static"
    return "unmatched"


class Measure:
    """ASGI middleware counting requests and timing them by route template, until the
    response starts (a pure ASGI middleware: no extra task and stream per request, as
    Starlette's ``BaseHTTPMiddleware`` costs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        counted = False

        def count(code: str) -> None:
            nonlocal counted
            counted = True
            route = route_template(Request(scope))
            REQUESTS.labels(route=route, code=code).inc()
            REQUEST_SECONDS.labels(route=route).observe(time.perf_counter() - started)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and not counted:
                count(str(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if not counted:
                count("500")
