"""The checked-in CRD YAML is exactly what the models generate, and it is valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from warmpool.crds import schema

KUBERNETES_VERSION = "1.33"


@pytest.mark.parametrize("kind", schema.KINDS, ids=lambda k: k.kind)
def test_checked_in_yaml_is_up_to_date(kind: schema.Kind) -> None:
    path = schema.CRD_DIR / kind.file_name
    assert path.exists(), f"{path} missing: run `make crds`"
    assert path.read_text() == schema.render(kind), f"{path} is stale: run `make crds`"


@pytest.mark.parametrize("kind", schema.KINDS, ids=lambda k: k.kind)
def test_crd_passes_strict_kubernetes_validation(kind: schema.Kind) -> None:
    data = yaml.safe_load((schema.CRD_DIR / kind.file_name).read_text())
    kubernetes_validate.validate(data, KUBERNETES_VERSION, strict=True)


def test_no_stray_crd_files() -> None:
    expected = {schema.CRD_DIR / k.file_name for k in schema.KINDS}
    assert set(Path(schema.CRD_DIR).glob("*.yaml")) == expected


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key in ("properties",):
            for name, child in node.get(key, {}).items():
                found.extend(_walk(child, f"{path}.{name}"))
        if isinstance(node.get("items"), dict):
            found.extend(_walk(node["items"], f"{path}[]"))
        if isinstance(node.get("additionalProperties"), dict):
            found.extend(_walk(node["additionalProperties"], f"{path}{{}}"))
    return found


@pytest.mark.parametrize("kind", schema.KINDS, ids=lambda k: k.kind)
def test_schema_is_structural_and_documented(kind: schema.Kind) -> None:
    root = schema.openapi_schema(kind)
    for path, node in _walk(root["properties"]["spec"], "spec") + _walk(
        root["properties"]["status"], "status"
    ):
        assert "type" in node, f"{path} has no type (not structural)"
        assert not {"anyOf", "oneOf", "allOf", "$ref"} & node.keys(), f"{path} not structural"
        if path.count(".") == 1 and path.startswith("spec.") and "[" not in path:
            assert node.get("description"), f"{path} has no description"


def test_names_columns_and_subresources() -> None:
    by_kind = {k.kind: schema.crd(k) for k in schema.KINDS}
    pool = by_kind["GpuPool"]["spec"]
    assert pool["names"]["shortNames"] == ["gpool"]
    assert pool["versions"][0]["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    columns = {
        k: [c["name"] for c in v["spec"]["versions"][0]["additionalPrinterColumns"]]
        for k, v in by_kind.items()
    }
    assert columns == {
        "GpuPool": ["Desired", "Ready", "Cold", "Queued", "$/hr", "Paused", "Age"],
        "GpuInstance": ["Pool", "Phase", "GPU", "$/hr", "Contract", "Age"],
        "GenerationJob": ["Pool", "Kind", "Phase", "Progress", "Instance", "References", "Age"],
        "Muse": ["Display name", "Age"],
    }
    for crd in by_kind.values():
        assert crd["spec"]["names"]["categories"] == ["warmpool"]
        assert "status" in crd["spec"]["versions"][0]["subresources"]


def test_cel_rules_are_in_the_schema() -> None:
    pool = schema.openapi_schema(schema.KINDS[0])
    rules = [r["rule"] for r in pool["properties"]["spec"]["x-kubernetes-validations"]]
    assert "!has(self.maxReplicas) || self.maxReplicas >= self.replicas" in rules
    budget = pool["properties"]["spec"]["properties"]["budget"]
    assert "maxDailySpend >= self.maxHourlySpend" in budget["x-kubernetes-validations"][0]["rule"]
