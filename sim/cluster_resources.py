"""Resource types served by the emulated Kubernetes API: built-in kinds and CRD-defined ones.

Also builds the discovery documents (``/api``, ``/api/v1``, ``/apis``, ``/apis/<g>``,
``/apis/<g>/<v>``) and the ``Table`` rendering ``kubectl get`` asks for (printer columns).
"""

from __future__ import annotations

import copy
import datetime
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from warmpool.sim.schema_validation import StructuralSchema

__all__ = [
    "BUILTINS",
    "PrinterColumn",
    "ResourceType",
    "ScaleSpec",
    "load_crd_dir",
    "types_from_crd",
]

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ScaleSpec:
    """The scale subresource of a CRD version."""

    spec_replicas_path: str
    status_replicas_path: str
    label_selector_path: str | None = None


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass
class ResourceType:
    """One served group/version/plural."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    scale: ScaleSpec | None = None
    schema: StructuralSchema | None = None
    printer_columns: tuple[PrinterColumn, ...] = ()
    custom: bool = False  # a CRD-defined kind (generation, no unconditional PUT)
    storage: bool = True
    crd_name: str | None = field(default=None, compare=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)

    @property
    def qualified(self) -> str:
        """``plural.group`` as in error messages (``gpupools.warmpool.dev``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery_entries(self) -> list[dict[str, Any]]:
        main: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": VERBS,
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.categories:
            main["categories"] = list(self.categories)
        entries = [main]
        if self.status_subresource:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if self.scale is not None:
            entries.append(
                {
                    "name": f"{self.plural}/scale",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }
            )
        return entries


BUILTINS: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", False, "namespace", ("ns",)),
    ResourceType("", "v1", "events", "Event", True, "event", ("ev",)),
    ResourceType("", "v1", "secrets", "Secret", True, "secret"),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, "configmap", ("cm",)),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, "event", ("ev",)),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True, "lease"),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        False,
        "validatingwebhookconfiguration",
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        "customresourcedefinition",
        ("crd", "crds"),
    ),
)


def types_from_crd(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The served versions of a CRD manifest (``apiextensions.k8s.io/v1``)."""
    spec = crd["spec"]
    names = spec["names"]
    result: list[ResourceType] = []
    for version in spec.get("versions") or ():
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        scale = subresources.get("scale")
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        result.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or names["kind"].lower(),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status_subresource="status" in subresources,
                scale=ScaleSpec(
                    spec_replicas_path=scale["specReplicasPath"],
                    status_replicas_path=scale["statusReplicasPath"],
                    label_selector_path=scale.get("labelSelectorPath"),
                )
                if scale
                else None,
                schema=_compiled_schema(schema) if schema else None,
                printer_columns=tuple(
                    PrinterColumn(
                        name=c["name"],
                        type=c.get("type", "string"),
                        json_path=c["jsonPath"],
                        description=c.get("description", ""),
                        priority=int(c.get("priority", 0)),
                        format=c.get("format", ""),
                    )
                    for c in version.get("additionalPrinterColumns") or ()
                ),
                custom=True,
                storage=bool(version.get("storage", True)),
                crd_name=crd["metadata"]["name"],
            )
        )
    return result


CRD_KIND = "CustomResourceDefinition"
_CRD_CACHE: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
_SCHEMA_CACHE: dict[str, StructuralSchema] = {}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compiled_schema(schema: Mapping[str, Any]) -> StructuralSchema:
    """Compile a schema once per distinct content (CRDs are re-installed by every cluster)."""
    key = json.dumps(schema, sort_keys=True)
    compiled = _SCHEMA_CACHE.get(key)
    if compiled is None:
        compiled = _SCHEMA_CACHE[key] = StructuralSchema(schema)
    return compiled


def load_crd_dir(directory: Path) -> list[dict[str, Any]]:
    """Read every CRD manifest (``*.yaml``, possibly multi-document) of a directory."""
    crds: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in _CRD_CACHE:
            docs = yaml.load_all(path.read_text(), Loader=_Loader)
            _CRD_CACHE[key] = [
                d
                for d in docs
                if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"
            ]
        crds.extend(copy.deepcopy(_CRD_CACHE[key]))
    return crds


# --- discovery ------------------------------------------------------------------------------


def api_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }


def resource_list(group_version: str, types: Iterable[ResourceType]) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [entry for t in types for entry in t.discovery_entries()],
    }


def _group_doc(name: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


def group_list(types: Iterable[ResourceType]) -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for t in types:
        if t.group and t.version not in groups.setdefault(t.group, []):
            groups[t.group].append(t.version)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(g, vs) for g, vs in groups.items()],
    }


def group_doc(group: str, types: Iterable[ResourceType]) -> dict[str, Any] | None:
    versions: list[str] = []
    for t in types:
        if t.group == group and t.version not in versions:
            versions.append(t.version)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, versions)}


# --- tables (kubectl get) -------------------------------------------------------------------

_JSONPATH_STEP = re.compile(r"\.([A-Za-z0-9_\-$]+)|\[(\d+)\]|\['([^']+)'\]")


def jsonpath_get(obj: Any, path: str) -> Any:
    """Evaluate the simple JSONPath of a printer column (``.status.conditions[0].type``)."""
    value = obj
    for m in _JSONPATH_STEP.finditer(path.strip().strip("{}")):
        key, index, quoted = m.groups()
        if index is not None:
            if not isinstance(value, list) or int(index) >= len(value):
                return None
            value = value[int(index)]
        else:
            if not isinstance(value, dict):
                return None
            value = value.get(key if key is not None else quoted)
        if value is None:
            return None
    return value


def human_age(timestamp: str | None, now: datetime.datetime) -> str:
    if not timestamp:
        return "<unknown>"
    then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _cell(column: PrinterColumn, value: Any, now: datetime.datetime) -> Any:
    if value is None:
        return None
    if column.type == "date":
        return human_age(str(value), now)
    if column.type == "integer" and isinstance(value, (int, float)):
        return int(value)
    if column.type in ("string",) and not isinstance(value, str):
        return str(value)
    return value


def table(
    rt: ResourceType, objects: list[dict[str, Any]], list_meta: dict[str, Any]
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` ``Table`` of the objects with the CRD's printer columns."""
    now = datetime.datetime.now(datetime.UTC)
    columns = [c for c in rt.printer_columns]
    if not any(c.json_path == ".metadata.creationTimestamp" for c in columns):
        columns.append(PrinterColumn("Age", "date", ".metadata.creationTimestamp"))
    definitions = [
        {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}
    ] + [
        {
            "name": c.name,
            "type": c.type,
            "format": c.format,
            "description": c.description,
            "priority": c.priority,
        }
        for c in columns
    ]
    rows = []
    for obj in objects:
        cells = [obj["metadata"]["name"]]
        cells += [_cell(c, jsonpath_get(obj, c.json_path), now) for c in columns]
        partial = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"],
        }
        rows.append({"cells": cells, "object": partial})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": list_meta.get("resourceVersion", "")},
        "columnDefinitions": definitions,
        "rows": rows,
    }


# --- OpenAPI v3 (kubectl checks field-validation support and reads schemas) ----------------


def _gv_path(t: ResourceType) -> str:
    return f"api/{t.version}" if not t.group else f"apis/{t.group}/{t.version}"


def openapi_index(types: Iterable[ResourceType]) -> dict[str, Any]:
    paths = {_gv_path(t): {"serverRelativeURL": f"/openapi/v3/{_gv_path(t)}"} for t in types}
    return {"paths": paths}


def _definition_name(t: ResourceType) -> str:
    group = ".".join(reversed(t.group.split("."))) if t.group else "io.k8s.api.core"
    return f"{group}.{t.version}.{t.kind}"


def openapi_document(types: list[ResourceType]) -> dict[str, Any]:
    """A minimal OpenAPI v3 document of one group/version: PATCH operations that accept
    ``fieldValidation`` (so kubectl validates on the server) and the kinds' schemas."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    params = [
        {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for name in ("dryRun", "fieldManager", "fieldValidation")
    ]
    for t in types:
        gvk = {"group": t.group, "version": t.version, "kind": t.kind}
        prefix = f"/{_gv_path(t)}" + ("/namespaces/{namespace}" if t.namespaced else "")
        ref = {"$ref": f"#/components/schemas/{_definition_name(t)}"}
        content = {"application/json": {"schema": ref}}
        operation = {
            "x-kubernetes-group-version-kind": gvk,
            "parameters": params,
            "responses": {"200": {"description": "OK", "content": content}},
        }
        paths[f"{prefix}/{t.plural}/{{name}}"] = {
            "get": {**operation, "parameters": []},
            "put": operation,
            "patch": operation,
        }
        paths[f"{prefix}/{t.plural}"] = {"post": operation}
        schema: dict[str, Any] = dict(t.schema.raw) if t.schema is not None else {"type": "object"}
        schema["x-kubernetes-group-version-kind"] = [gvk]
        schemas[_definition_name(t)] = schema
    return {
        "openapi": "3.0.0",
        "info": {"title": "warmpool-sim", "version": "v1"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
