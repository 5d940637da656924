"""From pydantic models to CustomResourceDefinitions.

The pydantic JSON schema is turned into a *structural* ``openAPIV3Schema``:
references inlined, ``Optional`` turned into ``nullable``, titles dropped, a
``default: {}`` on nested objects so the API server defaults their fields too,
CEL rules kept as ``x-kubernetes-validations``. Per-kind metadata (names, short
names, printer columns, subresources) is declared in :data:`KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from warmpool.crds.common import CATEGORY, GROUP, VERSION
from warmpool.crds.generationjob import GenerationJobSpec, GenerationJobStatus
from warmpool.crds.gpuinstance import GpuInstanceSpec, GpuInstanceStatus
from warmpool.crds.gpupool import GpuPoolSpec, GpuPoolStatus
from warmpool.crds.muse import MuseSpec, MuseStatus

CRD_DIR = Path(__file__).parent

_DROP = {"title", "x-warmpool-duration"}


@dataclass(frozen=True)
class Kind:
    """How one custom resource is exposed by the API server."""

    kind: str
    plural: str
    singular: str
    short_names: list[str]
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    columns: list[dict[str, Any]]
    scale: dict[str, str] | None = None
    spec_required: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def file_name(self) -> str:
        return f"{self.crd_name}.yaml"


def _col(name: str, path: str, typ: str = "string", **kw: Any) -> dict[str, Any]:
    return {"name": name, "type": typ, "jsonPath": path, **kw}


_AGE = _col("Age", ".metadata.creationTimestamp", "date")

KINDS: list[Kind] = [
    Kind(
        kind="GpuPool",
        plural="gpupools",
        singular="gpupool",
        short_names=["gpool"],
        spec=GpuPoolSpec,
        status=GpuPoolStatus,
        description="A warm pool of rented Vast.ai GPU machines running ComfyUI.",
        columns=[
            _col("Desired", ".spec.replicas", "integer"),
            _col("Ready", ".status.readyReplicas", "integer"),
            _col("Cold", ".status.coldReplicas", "integer"),
            _col("Queued", ".status.queuedJobs", "integer"),
            _col("$/hr", ".status.pricePerHour", "number"),
            _col("Paused", ".spec.paused", "boolean"),
            _AGE,
        ],
        scale={
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
        spec_required=False,
    ),
    Kind(
        kind="GpuInstance",
        plural="gpuinstances",
        singular="gpuinstance",
        short_names=["ginst"],
        spec=GpuInstanceSpec,
        status=GpuInstanceStatus,
        description="One Vast.ai rental owned by a GpuPool; deleting it destroys the rental.",
        columns=[
            _col("Pool", ".spec.pool"),
            _col("Phase", ".status.phase"),
            _col("GPU", ".status.gpuName"),
            _col("$/hr", ".status.pricePerHour", "number"),
            _col("Contract", ".status.contractId", "integer"),
            _AGE,
        ],
    ),
    Kind(
        kind="GenerationJob",
        plural="generationjobs",
        singular="generationjob",
        short_names=["genjob"],
        spec=GenerationJobSpec,
        status=GenerationJobStatus,
        description="A request for images or a video from a GpuPool.",
        columns=[
            _col("Pool", ".spec.pool"),
            _col("Kind", ".spec.kind"),
            _col("Phase", ".status.phase"),
            _col("Progress", ".status.progress.percent", "integer"),
            _col("Instance", ".status.instance"),
            _col("References", ".status.references.mode", priority=1),  # -o wide
            _AGE,
        ],
    ),
    Kind(
        kind="Muse",
        plural="muses",
        singular="muse",
        short_names=["muse"],
        spec=MuseSpec,
        status=MuseStatus,
        description="A saved adult character for consistent generations.",
        columns=[_col("Display name", ".spec.displayName"), _AGE],
    ),
]


def structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Turn one pydantic JSON-schema node into a structural OpenAPI v3 node."""
    if "$ref" in schema:
        target = defs[schema["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return structural(merged, defs)
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        nullable = len(options) < len(schema["anyOf"])
        if len(options) != 1:
            raise ValueError(f"cannot express a union as a structural schema: {schema}")
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        node = structural({**options[0], **rest}, defs)
        if nullable:
            node["nullable"] = True
        return node
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROP:
            continue
        if key == "default" and value is None:
            continue
        if key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            # JSON Schema gives the bound; OpenAPI v3.0 wants the bound plus a flag.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "properties":
            out["properties"] = {k: structural(v, defs) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = structural(value, defs)
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" in out:
        for prop in out["properties"].values():
            if (
                prop.get("type") == "object"
                and "properties" in prop
                and "default" not in prop
                and not prop.get("nullable")
            ):
                prop["default"] = {}
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural schema of one model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return structural(raw, defs)


def openapi_schema(kind: Kind) -> dict[str, Any]:
    """The whole ``openAPIV3Schema`` of a kind."""
    spec = model_schema(kind.spec)
    status = model_schema(kind.status)
    if not kind.spec_required:
        spec["default"] = {}
    schema: dict[str, Any] = {
        "type": "object",
        "description": kind.description,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if kind.spec_required:
        schema["required"] = ["spec"]
    return schema


def crd(kind: Kind) -> dict[str, Any]:
    """The CustomResourceDefinition of a kind."""
    subresources: dict[str, Any] = {"status": {}}
    if kind.scale:
        subresources["scale"] = dict(kind.scale)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema(kind)},
                    "subresources": subresources,
                    "additionalPrinterColumns": kind.columns,
                }
            ],
        },
    }


def render(kind: Kind) -> str:
    """The YAML text written to ``crds/<plural>.warmpool.dev.yaml``."""
    import yaml

    header = "# Generated by `python -m warmpool.crds` from the pydantic models. Do not edit.\n"
    return header + yaml.safe_dump(crd(kind), sort_keys=False, width=100)


def crd_files() -> dict[Path, str]:
    """Every CRD file and its expected content."""
    return {CRD_DIR / kind.file_name: render(kind) for kind in KINDS}
