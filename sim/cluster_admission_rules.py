"""Which validating webhooks a request goes to, and the review they get (pure).

Kubernetes' rule matcher (``operations``, ``apiGroups``, ``apiVersions``, ``resources``
with ``*``, ``res/*``, ``*/sub``, ``scope``), label selectors (``matchLabels``,
``matchExpressions``) for ``namespaceSelector`` and ``objectSelector``, and the
``admission.k8s.io/v1`` ``AdmissionReview`` request. The calls themselves are in
:mod:`warmpool.sim.cluster_admission`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from warmpool.sim.cluster_resources import ResourceType

__all__ = [
    "USER",
    "Attributes",
    "review_request",
    "rule_matches",
    "selector_matches",
    "webhook_matches",
]

USER = {"username": "warmpool-sim", "groups": ["system:masters", "system:authenticated"]}


@dataclass(frozen=True)
class Attributes:
    """One request under admission, as the API server describes it to webhooks."""

    rt: ResourceType
    operation: str  # CREATE, UPDATE, DELETE
    namespace: str | None
    name: str
    obj: dict[str, Any] | None
    old: dict[str, Any] | None
    subresource: str | None = None
    dry_run: bool = False
    options: dict[str, Any] = field(default_factory=dict)


# --- matching (pure) --------------------------------------------------------------------


def _split_resource(resource: str) -> tuple[str, str]:
    res, _, sub = resource.partition("/")
    return res, sub


def rule_matches(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    """One ``rules[]`` entry against a request (Kubernetes' rule matcher)."""
    rt = attrs.rt

    def listed(key: str, value: str) -> bool:
        values = rule.get(key) or []
        return "*" in values or value in values

    if not (
        listed("operations", attrs.operation)
        and listed("apiGroups", rt.group)
        and listed("apiVersions", rt.version)
    ):
        return False
    sub = attrs.subresource or ""
    for entry in rule.get("resources") or []:
        res, res_sub = _split_resource(str(entry))
        if (res in ("*", rt.plural)) and (res_sub in ("*", sub)):
            break
    else:
        return False
    scope = rule.get("scope") or "*"
    if scope == "Cluster":
        return not attrs.namespace
    if scope == "Namespaced":
        return bool(attrs.namespace)
    return True


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A ``metav1.LabelSelector`` (``matchLabels``, ``matchExpressions``); empty matches all."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def labels_of(obj: Mapping[str, Any] | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})


def webhook_matches(
    hook: Mapping[str, Any], attrs: Attributes, namespace_labels: Mapping[str, str] | None
) -> bool:
    """One ``webhooks[]`` entry: a rule matches, and both selectors do."""
    if not any(rule_matches(rule, attrs) for rule in hook.get("rules") or []):
        return False
    if namespace_labels is not None and not selector_matches(
        hook.get("namespaceSelector"), namespace_labels
    ):
        return False
    object_selector = hook.get("objectSelector")
    if object_selector:
        candidates = [o for o in (attrs.obj, attrs.old) if o is not None]
        if not any(selector_matches(object_selector, labels_of(o)) for o in candidates):
            return False
    return True


def review_request(attrs: Attributes, uid: str) -> dict[str, Any]:
    """The ``AdmissionReview`` a real API server sends (``admission.k8s.io/v1``)."""
    rt = attrs.rt
    kind = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    resource = {"group": rt.group, "version": rt.version, "resource": rt.plural}
    options_kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions"}.get(
        attrs.operation, "DeleteOptions"
    )
    request: dict[str, Any] = {
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": attrs.name,
        "operation": attrs.operation,
        "userInfo": USER,
        "object": attrs.obj,
        "oldObject": attrs.old,
        "dryRun": attrs.dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": options_kind, **attrs.options},
    }
    if attrs.namespace:
        request["namespace"] = attrs.namespace
    if attrs.subresource:
        request["subResource"] = attrs.subresource
        request["requestSubResource"] = attrs.subresource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
