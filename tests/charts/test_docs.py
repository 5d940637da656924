"""The deployment guide's KEDA example and commands.

KEDA's own CRD is not available offline, so the ScaledObject is validated against a JSON
schema written here after KEDA's v1alpha1 API reference (the fields the example uses, with
unknown fields refused), plus the facts it depends on: the target kind has a scale
subresource, and the query is PromQL over a metric the operator exports.
"""

from __future__ import annotations

import importlib
from typing import Any

import jsonschema
import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY

STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
HPA_POLICY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type", "value", "periodSeconds"],
    "properties": {
        "type": {"enum": ["Pods", "Percent"]},
        "value": {"type": "integer", "minimum": 1},
        "periodSeconds": {"type": "integer", "minimum": 1, "maximum": 1800},
    },
}
HPA_RULES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "stabilizationWindowSeconds": {"type": "integer", "minimum": 0, "maximum": 3600},
        "selectPolicy": {"enum": ["Max", "Min", "Disabled"]},
        "policies": {"type": "array", "items": HPA_POLICY},
    },
}
SCALED_OBJECT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string"},
                        "envSourceContainerName": {"type": "string"},
                    },
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "idleReplicaCount": {"type": "integer", "minimum": 0},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "advanced": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string"},
                                "behavior": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {"scaleUp": HPA_RULES, "scaleDown": HPA_RULES},
                                },
                            },
                        },
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "metadata": STRINGS,
                            "authenticationRef": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "kind": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
# Required metadata of KEDA's prometheus scaler.
PROMETHEUS_TRIGGER = {
    "type": "object",
    "required": ["serverAddress", "query", "threshold"],
    "properties": {
        "serverAddress": {"type": "string", "pattern": "^https?://"},
        "threshold": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
        "activationThreshold": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
    },
}


@pytest.fixture(scope="module")
def scaled_object(chart: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (chart.repo / "docs" / "examples" / "keda-scaledobject.yaml").read_text()
    )
    return loaded


def test_scaled_object_is_valid(scaled_object: dict[str, Any]) -> None:
    jsonschema.validate(scaled_object, SCALED_OBJECT)
    spec = scaled_object["spec"]
    assert spec["minReplicaCount"] <= spec["maxReplicaCount"]
    for trigger in spec["triggers"]:
        assert trigger["type"] == "prometheus"
        jsonschema.validate(trigger["metadata"], PROMETHEUS_TRIGGER)


def test_schema_refuses_a_misspelt_field(scaled_object: dict[str, Any]) -> None:
    broken = {**scaled_object, "spec": {**scaled_object["spec"], "maxReplicas": 4}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCALED_OBJECT)


def test_scaled_object_targets_the_pool_scale_subresource(
    chart: Any, scaled_object: dict[str, Any]
) -> None:
    target = scaled_object["spec"]["scaleTargetRef"]
    crd = yaml.safe_load((chart.repo / "crds" / "gpupools.warmpool.dev.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    assert target["apiVersion"] == f"{crd['spec']['group']}/{version['name']}"
    assert target["kind"] == crd["spec"]["names"]["kind"]
    scale = version["subresources"]["scale"]
    assert scale["specReplicasPath"] == ".spec.replicas"
    assert "labelSelectorPath" in scale, "KEDA's HPA needs the pool's selector"
    example = yaml.safe_load((chart.repo / "crds" / "examples" / "gpupool.yaml").read_text())
    assert target["name"] == example["metadata"]["name"]
    assert scaled_object["metadata"]["namespace"] == example["metadata"]["namespace"]


def test_scaled_object_query_reads_the_queue_length(scaled_object: dict[str, Any]) -> None:
    importlib.import_module("warmpool.operator.metrics")
    gauges = {f.name for f in REGISTRY.collect() if f.type == "gauge"}
    (trigger,) = scaled_object["spec"]["triggers"]
    selectors: list[Any] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            selectors.append(node)

    promql_parser.walk(promql_parser.parse(trigger["metadata"]["query"]), visit)
    (selector,) = selectors
    assert selector.name == "warmpool_jobs"
    assert selector.name in gauges
    assert 'phase="Queued"' in trigger["metadata"]["query"]


def test_the_guide_shows_the_operations(chart: Any) -> None:
    guide = (chart.repo / "docs" / "deploy.md").read_text()
    for command in (
        "kubectl create secret generic warmpool-vastai",
        "helm install",
        "kubectl apply -f crds/examples/gpupool.yaml",
        "kubectl get warmpool",
        "kubectl scale gpupool/sdxl --replicas=2",
        """kubectl patch gpupool/sdxl --type=merge -p '{"spec":{"paused":true}}'""",
        "kubectl delete gpuinstance/",
        "docs/examples/keda-scaledobject.yaml",
    ):
        assert command in guide, command
