"""Start-up and clean-up: Kopf settings, login, the adapters in the memo."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import kopf

from warmpool.operator import deps
from warmpool.operator.adapters import kube
from warmpool.operator.controllers import admission, shards
from warmpool.operator.deps import Deps
from warmpool.operator.handlers.boundary import kopf_errors
from warmpool.operator.handlers.registry import registry

logger = logging.getLogger(__name__)


@kopf.on.login(registry=registry, id="login")
async def on_login_cluster(memo: Deps, **_: Any) -> kopf.ConnectionInfo:
    """Kopf connects with the credentials of the operator's own client (one source:
    ``kubeconfig.load_config``); called again by Kopf on a 401 or when they expire."""
    if memo.opened_kube is None:
        memo.opened_kube = kube.KubeClient.from_config(user_agent=deps.user_agent(memo.settings))
    fields = dataclasses.asdict(await memo.opened_kube.login_info())
    fields["default_namespace"] = fields.pop("namespace")
    return kopf.ConnectionInfo(**fields)


@kopf.on.startup(registry=registry, id="startup")
async def on_startup_operator(settings: kopf.OperatorSettings, memo: Deps, **_: Any) -> None:
    """Configure Kopf and open every adapter once for all handlers."""
    # Progress and diff-base in annotations: the status schemas are structural and
    # would prune Kopf's own bookkeeping.
    # A label shard has names of its own: shards see each other's objects, and Kopf removes
    # its finalizer from an object that none of its handlers match (controllers/shards.py).
    prefix, finalizer = shards.persistence_names(memo.settings.shard_key)
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    settings.persistence.diffbase_storage = shards.DiffBase(
        prefix=prefix, key="last-handled-configuration"
    )
    settings.persistence.finalizer = finalizer
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = memo.settings.watch_timeout
    settings.watching.client_timeout = memo.settings.watch_timeout + 30
    settings.networking.request_timeout = 30
    settings.background.cancellation_polling = 1
    # The validating admission webhook (handlers/admission.py): served here, registered by
    # the chart's ValidatingWebhookConfiguration; Kopf never manages one itself.
    settings.admission.server = admission.webhook_server(memo.settings)
    settings.admission.managed = None
    settings.peering.lifetime = memo.settings.peering_lifetime
    with kopf_errors():
        await deps.open_deps(memo)
