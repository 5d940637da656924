"""The validating admission webhook's facts: the body under review and what it refers to.

One concern: gather what :mod:`..decisions.admission` needs (the Muse a GenerationJob
names, read through the Kubernetes adapter) and return its verdict. The Kopf
registrations live in :mod:`..handlers.admission`; the webhook server and its
certificate are configured at start-up (:func:`webhook_server`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import kopf

from warmpool.operator.adapters import kube
from warmpool.operator.decisions import admission
from warmpool.operator.deps import Deps
from warmpool.operator.settings import OperatorSettings


async def review_job(
    deps: Deps, body: Mapping[str, Any], old: Mapping[str, Any] | None, warnings: list[str]
) -> admission.Denial | None:  # fmt: skip
    """A GenerationJob create/update: its composed prompt (with its muse, when it names
    one that exists) and its model. A muse that does not exist yet is a warning."""
    if not admission.needs_review(old, body):
        return None
    muse = None
    muse_ref = (body.get("spec") or {}).get("museRef")
    namespace = (body.get("metadata") or {}).get("namespace") or "default"
    if isinstance(muse_ref, str) and muse_ref:
        muse = await deps.kube.get(kube.MUSES, muse_ref, namespace)
        if muse is None:
            warnings.append(admission.missing_muse_warning(muse_ref))
    return admission.check_job(body, muse)


def review_muse(body: Mapping[str, Any], old: Mapping[str, Any] | None) -> admission.Denial | None:
    if not admission.needs_review(old, body):
        return None
    return admission.check_muse(body)


def review_pool(body: Mapping[str, Any], old: Mapping[str, Any] | None) -> admission.Denial | None:
    if not admission.needs_review(old, body):
        return None
    return admission.check_pool(body)


async def _no_webhook_server(_fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
    """The admission "server" when the webhook is off: serves nothing, forever.

    Kopf refuses to start with admission handlers and no server; the chart then
    registers no ValidatingWebhookConfiguration either."""
    await asyncio.Event().wait()
    yield kopf.WebhookClientConfig()  # pragma: no cover - never reached


def webhook_server(settings: OperatorSettings) -> kopf.WebhookServerProtocol:
    """Kopf's ``settings.admission.server``: HTTPS with the mounted certificate, or none.

    Kopf reloads the files when they change (cert-manager renews them in place)."""
    if settings.webhook_port is None or settings.webhook_cert_dir is None:
        return _no_webhook_server
    folder = Path(settings.webhook_cert_dir)
    return kopf.WebhookServer(
        addr=settings.webhook_addr,
        port=settings.webhook_port,
        certfile=folder / "tls.crt",
        pkeyfile=folder / "tls.key",
    )
