"""The studio application: ``create_app()`` builds the FastAPI app and its lifespan.

The lifespan opens the Kubernetes client and the artifact store (unless given),
starts the progress hub's single GenerationJob watch, and closes them on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from warmpool.api import jobs, metrics, problems, streams
from warmpool.api.accounts import credit_routes, spend_routes
from warmpool.api.accounts import routes as account_routes
from warmpool.api.accounts.credits import InsufficientCreditError
from warmpool.api.accounts.limits import SpendLimitError
from warmpool.api.accounts.service import Accounts
from warmpool.api.auth import Authenticator
from warmpool.api.blocklist import Blocklist
from warmpool.api.fanout import Fanout, encode_with
from warmpool.api.gallery_ops import retention_loop
from warmpool.api.guards import Guard
from warmpool.api.hub import Hub
from warmpool.api.limits import RateLimiter
from warmpool.api.records.curation import Curation
from warmpool.api.records.service import Records
from warmpool.api.records.shared import stores
from warmpool.api.routes import (
    admin,
    curation,
    generations,
    health,
    library,
    live,
    muses,
    session,
    shares,
)
from warmpool.api.settings import StudioSettings
from warmpool.api.state import Studio
from warmpool.api.uploads import Uploads
from warmpool.operator import errors
from warmpool.operator.adapters import artifacts
from warmpool.operator.adapters import kube as kube_adapter


class StudioApp(FastAPI):
    """FastAPI with the server's ``send`` kept in the scope for the event streams
    (:mod:`streams`: their chunks skip the per-message middleware wrappers)."""

    def build_middleware_stack(self) -> ASGIApp:
        return streams.KeepServerSend(super().build_middleware_stack())


def create_app(
    settings: StudioSettings | None = None,
    *,
    kube: kube_adapter.KubeClient | None = None,
    store: artifacts.ArtifactStore | None = None,
) -> FastAPI:
    """The studio. ``kube`` and ``store`` are made from the settings when not given
    (given ones are not closed by the app)."""
    settings = settings or StudioSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = kube or kube_adapter.KubeClient.from_config(settings.kubeconfig)
        artifact_store = store or artifacts.open_store(settings.artifacts_url)
        auth = Authenticator(settings, client)
        await auth.start()  # refuses weak tokens (before anything else is opened)
        records = app.state.records = await Records.open(settings, client)
        # The limits' counts, queue slots and revoked sessions: in the records database
        # when it is PostgreSQL (several replicas), in this process with SQLite (one).
        shared = stores(records.db)
        auth.failures.counters = shared.counters
        auth.sessions.revocations = shared.revocations
        accounts = app.state.accounts = Accounts(settings, records.db)
        auth.accounts = accounts  # oidc mode: server-side sessions
        # Every job change: to the usage ledger, then (payments on) to the credit ledger.
        hub = Hub(client, settings.studio_namespace, on_change=accounts.after(records.on_job))
        app.state.studio = Studio(
            settings=settings,
            kube=client,
            uploads=Uploads(
                artifact_store,
                max_bytes=settings.studio_upload_max_bytes,
                thumb_size=settings.studio_thumbnail_size,
                namespace=settings.studio_namespace,
                max_pixels=settings.studio_max_image_pixels,
            ),
            hub=hub,
            auth=auth,
            limiter=RateLimiter(settings.studio_requests_per_minute, shared.counters),
            blocklist=Blocklist(settings.studio_blocklist),
            slots=shared.slots,
            fanout=Fanout(hub, encode_with(jobs.progress_of)),
            pools=records.pools,
        )
        hub.start()
        records.start()
        app.state.curation = Curation(records.db)
        retention = asyncio.create_task(
            retention_loop(app.state.studio, app.state.curation), name="warmpool-gallery-retention"
        )
        accounts.start()
        try:
            yield
        finally:
            retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retention
            await app.state.studio.fanout.close()
            await hub.stop()
            await accounts.close()
            await records.close()
            if kube is None:
                await client.close()

    app = StudioApp(
        title="warmpool studio",
        version="0.1.0",
        description="Prompts, muses, estimates, live progress and a gallery, on GPU pools.",
        lifespan=lifespan,
        # /docs and /redoc load scripts from a CDN into the studio's origin: not served
        # (the OpenAPI document stays at /openapi.json).
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(metrics.Measure)
    app.add_middleware(Guard, settings=settings)  # outermost: before anything reads a body
    handlers: dict[Any, Any] = {
        errors.KubeError: problems.on_kube_error,
        errors.ArtifactError: problems.on_artifact_error,
        SpendLimitError: spend_routes.on_limit,
        InsufficientCreditError: credit_routes.on_insufficient,
    }
    for exc, handler in handlers.items():
        app.add_exception_handler(exc, handler)
    for module in (generations, live, muses, library, curation, shares, session, health, admin):
        app.include_router(module.router)
    app.include_router(account_routes.router)
    app.include_router(spend_routes.router)
    app.include_router(credit_routes.router)
    static = resources.files("warmpool.api") / "static"
    app.mount("/", StaticFiles(directory=str(static), html=True), name="static")
    return app
