"""``warmpool-operator``: runs the Kopf operator embedded, with health and metrics.

Against the current kubeconfig (``KUBECONFIG`` or ``~/.kube/config``) or the
in-cluster service account. Never run as ``kopf run operator/main.py``: the
handlers would be imported twice under two names.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Sequence
from importlib.metadata import version

import httpx
import kopf
import uvloop
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from warmpool.operator.adapters import heap
from warmpool.operator.controllers import activity, balance
from warmpool.operator.controllers.instance import garbage
from warmpool.operator.deps import Deps, close_deps, open_deps
from warmpool.operator.handlers import admission, instances, jobs, muses, pools, startup  # noqa: F401
from warmpool.operator.handlers.registry import registry
from warmpool.operator.settings import OperatorSettings

logger = logging.getLogger("warmpool.operator")


def configure_logging(settings: OperatorSettings) -> None:
    """Text or JSON logs; the httpx logger stays at WARNING (it logs URLs)."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        # Kopf's per-object loggers put their OperatorSettings (not serialisable: the JSON
        # formatter failed on every such record) and k8s_skip into each record's extras;
        # k8s_ref (the object's kind, namespace and name) stays in the line.
        reserved = [*RESERVED_ATTRS, "settings", "k8s_skip"]
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                timestamp=True,
                reserved_attrs=reserved,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("httpx", "httpcore", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def serve_health(deps: Deps, operator_task: asyncio.Task[None]) -> web.AppRunner:
    """``/healthz`` (the operator task is alive) and ``/metrics`` on the health port."""

    async def healthz(_: web.Request) -> web.Response:
        if operator_task.done():
            return web.json_response({"status": "stopped"}, status=503)
        return web.json_response({"status": "ok"})

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    if deps.settings.health_fd is not None:
        listening = socket.socket(fileno=deps.settings.health_fd)
        await web.SockSite(runner, listening).start()
    else:
        await web.TCPSite(runner, "0.0.0.0", deps.settings.health_port).start()
    return runner


def make_deps(settings: OperatorSettings) -> Deps:
    """The memo before start-up: settings and the shared HTTP client."""
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.vastai_timeout),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
    )
    return Deps(settings=settings, http=http)


async def run(
    settings: OperatorSettings,
    *,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
    health: bool = True,
    deps: Deps | None = None,
) -> None:
    """Run the operator until ``stop_flag`` is set (or forever)."""
    deps = deps or make_deps(settings)
    await open_deps(deps)
    priority = peering_priority(settings)
    if settings.peering:
        deps.tasks["peering"] = asyncio.create_task(activity.follow(deps, priority))
    deps.tasks["orphans"] = asyncio.create_task(garbage.sweep_forever(deps))
    deps.tasks["balance"] = asyncio.create_task(balance.check_forever(deps))
    namespaces = settings.served_namespaces
    operator_task = asyncio.create_task(
        kopf_operator(
            settings,
            deps,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            namespaces=namespaces,
            priority=priority,
        )
    )
    runner = await serve_health(deps, operator_task) if health else None
    try:
        await operator_task
    finally:
        if runner is not None:
            await runner.cleanup()
        await close_deps(deps)


def peering_priority(settings: OperatorSettings) -> int:
    """This replica's peering priority. With peering, replicas must differ in priority:
    Kopf pauses every operator that sees a peer of equal priority, so two replicas of one
    priority both stand still. Unless set, a random one: the highest runs, the others
    stand by until it is gone."""
    if not settings.peering:
        return 0
    if settings.peering_priority is not None:
        return settings.peering_priority
    return secrets.randbelow(2**31)


async def kopf_operator(
    settings: OperatorSettings,
    deps: Deps,
    *,
    stop_flag: asyncio.Event | None,
    ready_flag: asyncio.Event | None,
    namespaces: Sequence[str],
    priority: int,
) -> None:
    # Kopf names this replica in the peering object by POD_ID (its documented way); the
    # activity loop looks for the same name (settings.pod_id, from POD_ID when set).
    os.environ.setdefault("POD_ID", settings.pod_id)
    await kopf.operator(
        registry=registry,
        memo=deps,
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=settings.peering is None,
        peering_name=settings.peering,
        priority=priority,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="warmpool-operator",
        description="Keep warm pools of Vast.ai GPU machines running ComfyUI. "
        "Configured by WARMPOOL_* environment variables.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    args = parser.parse_args(argv)
    if args.version:
        print(version("warmpool"))
        return 0
    settings = OperatorSettings()
    configure_logging(settings)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await run(settings, stop_flag=stop)

    heap.freeze()  # start-up's objects are there for good: no full collection walks them
    # uvloop (libuv): the event loop's own share of the operator's CPU per job, ~15 % on
    # asyncio's loop, mostly goes (bench/jobs.py).
    uvloop.run(_main())
    return 0


if __name__ == "__main__":
    sys.exit(main())
