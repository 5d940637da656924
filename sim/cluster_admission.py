"""Validating admission webhooks in the emulated Kubernetes API, called as an API server does.

On a create, update or delete that a stored ``ValidatingWebhookConfiguration``
(``admissionregistration.k8s.io/v1``) matches, :class:`WebhookDispatcher` POSTs an
``admission.k8s.io/v1`` ``AdmissionReview`` over HTTPS to each matching webhook, in
parallel, after defaulting and schema validation and before the object is stored:

- matching (:mod:`warmpool.sim.cluster_admission_rules`): ``rules`` (``operations``,
  ``apiGroups``, ``apiVersions``, ``resources`` with ``*``, ``res/*``, ``*/sub``,
  ``scope``), ``namespaceSelector`` (against the namespace's labels,
  ``kubernetes.io/metadata.name`` included; not applied to cluster-scoped objects) and
  ``objectSelector`` (the new or the old object's labels);
  ``matchPolicy: Equivalent`` and ``matchConditions`` are not emulated;
- ``clientConfig.url``, or ``clientConfig.service`` resolved through
  :attr:`WebhookDispatcher.services` (``(namespace, name)`` → a loopback address, the
  emulator's stand-in for the Service's endpoints) with the certificate verified for
  ``<name>.<namespace>.svc`` as a real API server does; ``caBundle`` is the trust root
  (the system's when absent); ``?timeout=<timeoutSeconds>s`` is appended to the URL;
- ``timeoutSeconds`` (default 10) bounds the call; ``failurePolicy`` (default ``Fail``):
  a webhook that cannot be called, times out or answers malformed refuses the request
  with 500 ``Internal error occurred: failed calling webhook "<name>": ...``, or, with
  ``Ignore``, is skipped;
- a denial becomes the real server's Status: the webhook's code (at least 400),
  ``admission webhook "<name>" denied the request: <message>``.

Configurations of webhooks are never themselves sent to webhooks (as in Kubernetes).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import json
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from warmpool.sim.cluster_admission_rules import (
    Attributes,
    labels_of,
    review_request,
    rule_matches,
    selector_matches,
    webhook_matches,
)
from warmpool.sim.cluster_resources import ResourceType
from warmpool.sim.cluster_store import NS_KEY, ApiError, Store

__all__ = [
    "VWC_KEY",
    "WARNINGS",
    "Attributes",
    "WebhookCallError",
    "WebhookDispatcher",
    "rule_matches",
    "selector_matches",
    "warning_header",
    "webhook_matches",
]

VWC_KEY = ("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")
ADMISSION_GROUP = "admissionregistration.k8s.io"
#: The warnings webhooks returned for the request being served (the HTTP face sets a list
#: per request and sends each as a ``Warning: 299 - "..."`` header, as a real server does).
WARNINGS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "admission_warnings", default=None
)


def warning_header(text: str) -> str:
    """RFC 7234 warn-value as the API server writes it (kubectl prints ``Warning: text``)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


class WebhookCallError(Exception):
    """A webhook could not be called or answered malformed (``failurePolicy`` decides)."""


def _denied(name: str, result: Mapping[str, Any] | None) -> ApiError:
    """Kubernetes' ``ToStatusErr``: the webhook's Status, code ≥ 400, message prefixed."""
    result = result or {}
    denied_by = f'admission webhook "{name}" denied the request'
    if result.get("message"):
        message = f"{denied_by}: {result['message']}"
    elif result.get("reason"):
        message = f"{denied_by}: {result['reason']}"
    else:
        message = f"{denied_by} without explanation"
    code = int(result.get("code") or 0)
    return ApiError(max(code, 400), str(result.get("reason") or ""), message)


def _call_failed(name: str, error: str) -> ApiError:
    text = f'failed calling webhook "{name}": failed to call webhook: {error}'
    return ApiError(
        500, "InternalError", f"Internal error occurred: {text}", {"causes": [{"message": text}]}
    )


# --- calling ----------------------------------------------------------------------------


@dataclass
class WebhookDispatcher:
    """Calls the validating webhooks registered in ``store`` for a request."""

    store: Store
    #: ``(namespace, service name)`` → ``(host, port)`` where that Service's endpoint listens.
    services: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    #: One HTTPS client per trust root, kept alive across calls as an API server does.
    _clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    def _client(self, hook: Mapping[str, Any]) -> httpx.AsyncClient:
        bundle = str((hook.get("clientConfig") or {}).get("caBundle") or "")
        client = self._clients.get(bundle)
        if client is None:
            client = httpx.AsyncClient(verify=self._ssl(hook))
            self._clients[bundle] = client
        return client

    def configurations(self) -> list[dict[str, Any]]:
        if VWC_KEY not in self.store.types:
            return []
        return self.store.list(self.store.types[VWC_KEY], None)

    def _namespace_labels(self, namespace: str | None) -> dict[str, str] | None:
        if not namespace:
            return None  # namespaceSelector does not apply to cluster-scoped objects
        ns = self.store.objects[NS_KEY].get((None, namespace))
        labels = labels_of(ns)
        labels.setdefault("kubernetes.io/metadata.name", namespace)
        return labels

    def may_match(
        self, rt: ResourceType, operation: str, namespace: str | None, subresource: str | None
    ) -> bool:
        """Whether some webhook's rules match, selectors aside (no dry run needed if not)."""
        if rt.group == ADMISSION_GROUP:
            return False
        attrs = Attributes(rt, operation, namespace, "", None, None, subresource=subresource)
        return any(
            rule_matches(rule, attrs)
            for config in self.configurations()
            for hook in config.get("webhooks") or []
            for rule in hook.get("rules") or []
        )

    def matching(self, attrs: Attributes) -> list[dict[str, Any]]:
        """The webhooks (of every configuration, in order) that this request goes to."""
        if attrs.rt.group == ADMISSION_GROUP:
            return []
        configs = self.configurations()
        if not configs:
            return []
        labels = self._namespace_labels(attrs.namespace)
        return [
            hook
            for config in configs
            for hook in config.get("webhooks") or []
            if webhook_matches(hook, attrs, labels)
        ]

    async def validate(self, attrs: Attributes) -> None:
        """Raise the API server's :class:`ApiError` when a matching webhook refuses."""
        hooks = self.matching(attrs)
        if not hooks:
            return
        results = await asyncio.gather(*(self._one(hook, attrs) for hook in hooks))
        for error in results:
            if error is not None:
                raise error

    async def _one(self, hook: Mapping[str, Any], attrs: Attributes) -> ApiError | None:
        name = str(hook.get("name") or "")
        try:
            response = await self.call(hook, review_request(attrs, str(uuid.uuid4())))
        except WebhookCallError as exc:
            if (hook.get("failurePolicy") or "Fail") == "Ignore":
                return None
            return _call_failed(name, str(exc))
        collected = WARNINGS.get()
        if collected is not None:
            collected.extend(str(w) for w in response.get("warnings") or [])
        if response.get("allowed") is True:
            return None
        return _denied(name, response.get("status"))

    def _target(self, hook: Mapping[str, Any], timeout: int) -> tuple[str, str | None, str]:
        """(URL to connect to, TLS server name when it differs, URL as the server names it)."""
        config = hook.get("clientConfig") or {}
        query = f"?timeout={timeout}s"
        if config.get("url"):
            url = str(config["url"])
            return url + query, None, url + query
        service = config.get("service") or {}
        namespace, svc = str(service.get("namespace") or ""), str(service.get("name") or "")
        port = int(service.get("port") or 443)
        path = str(service.get("path") or "/")
        host = f"{svc}.{namespace}.svc"
        shown = f"https://{host}:{port}{path}{query}"
        endpoint = self.services.get((namespace, svc))
        if endpoint is None:
            raise WebhookCallError(f'Post "{shown}": no endpoints available for service "{svc}"')
        ip, target_port = endpoint
        return f"https://{ip}:{target_port}{path}{query}", host, shown

    @staticmethod
    def _ssl(hook: Mapping[str, Any]) -> ssl.SSLContext:
        bundle = (hook.get("clientConfig") or {}).get("caBundle")
        if not bundle:
            return ssl.create_default_context()
        try:
            pem = base64.b64decode(str(bundle), validate=True).decode("ascii")
            return ssl.create_default_context(cadata=pem)
        except (binascii.Error, UnicodeDecodeError, ssl.SSLError) as exc:
            raise WebhookCallError(f"invalid caBundle: {exc}") from exc

    async def call(self, hook: Mapping[str, Any], review: dict[str, Any]) -> dict[str, Any]:
        """POST the review; the ``response`` payload, or :class:`WebhookCallError`."""
        timeout = int(hook.get("timeoutSeconds") or 10)
        url, server_name, shown = self._target(hook, timeout)
        if not url.startswith("https://"):
            raise WebhookCallError(f'Post "{shown}": webhooks are called over https only')
        extensions = {"sni_hostname": server_name} if server_name else None
        client = self._client(hook)
        try:
            answer = await client.post(url, json=review, extensions=extensions, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise WebhookCallError(f'Post "{shown}": context deadline exceeded') from exc
        except httpx.HTTPError as exc:
            raise WebhookCallError(f'Post "{shown}": {exc or type(exc).__name__}') from exc
        return _response_payload(answer, review, shown)


def _response_payload(
    answer: httpx.Response, review: Mapping[str, Any], shown: str
) -> dict[str, Any]:
    if answer.status_code != 200:
        raise WebhookCallError(f'Post "{shown}": the server answered {answer.status_code}')
    try:
        body = answer.json()
    except json.JSONDecodeError as exc:
        raise WebhookCallError(f"the webhook's answer is not JSON: {exc}") from exc
    if not isinstance(body, dict) or (body.get("apiVersion"), body.get("kind")) != (
        "admission.k8s.io/v1",
        "AdmissionReview",
    ):
        raise WebhookCallError(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview"
        )
    response = body.get("response")
    expected_uid = review["request"]["uid"]
    if not isinstance(response, dict) or response.get("uid") != expected_uid:
        got = response.get("uid") if isinstance(response, dict) else None
        raise WebhookCallError(f"expected response.uid={expected_uid!r}, got {got!r}")
    return dict(response)


# --- the admitted writes (what the HTTP face calls instead of the store) -----------------


@dataclass
class AdmittedWrites:
    """The store's writes with validating admission in between (and ``dryRun=All``)."""

    store: Store
    webhooks: WebhookDispatcher

    async def create(
        self,
        rt: ResourceType,
        body: Any,
        namespace: str | None,
        *,
        field_validation: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        meta = body.get("metadata") if isinstance(body, dict) else None
        ns = namespace or (meta.get("namespace") if isinstance(meta, dict) else None) or "default"
        if dry_run or self.webhooks.may_match(rt, "CREATE", ns if rt.namespaced else None, None):
            candidate = self.store.create(
                rt, body, namespace, field_validation=field_validation, dry_run=True
            )
            meta = candidate["metadata"]
            attrs = Attributes(
                rt, "CREATE", meta.get("namespace"), meta["name"], candidate, None, dry_run=dry_run
            )
            await self.webhooks.validate(attrs)
            if dry_run:
                return candidate
        return self.store.create(rt, body, namespace, field_validation=field_validation)

    async def update(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        new: Any,
        *,
        subresource: str | None = None,
        require_rv: bool = False,
        field_validation: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        options: dict[str, Any] = {
            "subresource": subresource,
            "require_rv": require_rv,
            "field_validation": field_validation,
        }
        namespace = old["metadata"].get("namespace")
        if dry_run or self.webhooks.may_match(rt, "UPDATE", namespace, subresource):
            candidate = self.store.update(rt, old, new, **options, dry_run=True)
            if candidate is not old:  # a no-op write is not sent to webhooks
                meta = old["metadata"]
                attrs = Attributes(
                    rt,
                    "UPDATE",
                    meta.get("namespace"),
                    meta["name"],
                    candidate,
                    old,
                    subresource=subresource,
                    dry_run=dry_run,
                )
                await self.webhooks.validate(attrs)
            if dry_run:
                return candidate
        return self.store.update(rt, old, new, **options)

    async def check_delete(self, rt: ResourceType, obj: dict[str, Any], *, dry_run: bool) -> None:
        meta = obj["metadata"]
        attrs = Attributes(rt, "DELETE", meta.get("namespace"), meta["name"], None, obj)
        await self.webhooks.validate(attrs if not dry_run else _dry(attrs))


def _dry(attrs: Attributes) -> Attributes:
    return Attributes(
        attrs.rt, attrs.operation, attrs.namespace, attrs.name, attrs.obj, attrs.old, dry_run=True
    )
