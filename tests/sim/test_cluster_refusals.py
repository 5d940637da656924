"""The emulated API refuses invalid warmpool objects with 422, as a real API server does.

These run over HTTP against the real CRDs (``crds/*.warmpool.dev.yaml``) and start from the
valid samples of ``crds/examples/``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from warmpool.sim.cluster import RunningCluster, default_crd_dir

EXAMPLES = default_crd_dir() / "examples"
PLURALS = {
    "GpuPool": "gpupools",
    "GenerationJob": "generationjobs",
    "Muse": "muses",
    "GpuInstance": "gpuinstances",
}


def example(kind: str) -> dict[str, Any]:
    for path in sorted(Path(EXAMPLES).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == kind:
                return dict(doc)
    raise LookupError(kind)


def url(kind: str) -> str:
    return f"/apis/warmpool.dev/v1alpha1/namespaces/default/{PLURALS[kind]}"


def with_spec(kind: str, **changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(example(kind))
    for dotted, value in changes.items():
        target = obj["spec"]
        *parents, leaf = dotted.split("__")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value
    return obj


@pytest.mark.parametrize("kind", sorted(PLURALS))
async def test_examples_are_accepted(cluster_http: httpx.AsyncClient, kind: str) -> None:
    response = await cluster_http.post(url(kind), json=example(kind))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("kind", "changes", "field", "fragment"),
    [
        pytest.param(
            "GpuPool",
            {"replicas": -1},
            "spec.replicas",
            "spec.replicas: Invalid value: -1: spec.replicas in body should be greater "
            "than or equal to 0",
            id="negative-replicas",
        ),
        pytest.param(
            "GpuPool",
            {"replicas": 5, "maxReplicas": 2},
            "spec.maxReplicas",
            "maxReplicas must be >= replicas",
            id="max-below-replicas",
        ),
        pytest.param(
            "GenerationJob",
            {"quality": "insane"},
            "spec.quality",
            'Unsupported value: "insane"',
            id="quality-not-in-enum",
        ),
        pytest.param(
            "Muse",
            {"age": 17},
            "spec.age",
            "spec.age in body should be greater than or equal to 18",
            id="muse-aged-17",
        ),
        pytest.param(
            "GenerationJob",
            {"prompt": ""},
            "spec.prompt",
            "should be at least 1 chars long",
            id="empty-prompt",
        ),
        pytest.param(
            "GenerationJob",
            {"prompt": "x" * 4001},
            "spec.prompt",
            "may not be more than 4000",
            id="prompt-over-4000",
        ),
        pytest.param(
            "GenerationJob",
            {"width": 1000},
            "spec.width",
            "spec.width in body should be a multiple of",
            id="width-not-multiple",
        ),
        pytest.param(
            "GenerationJob",
            {"width": 8192},
            "spec.width",
            "spec.width in body should be less than or equal to 4096",
            id="width-8192",
        ),
        pytest.param(
            "GpuPool",
            {"budget__maxHourlySpend": -1},
            "spec.budget.maxHourlySpend",
            "greater than or equal to 0",
            id="negative-budget",
        ),
        pytest.param(
            "GpuPool",
            {
                "template__diskGb": 20,
                "template__models": [
                    {"folder": "checkpoints", "file": "a.safetensors", "sizeBytes": 7_000_000_000},
                    {"folder": "vae", "file": "v.safetensors", "sizeBytes": 3_000_000_000},
                ],
            },
            "spec.template.diskGb",
            "models[].sizeBytes plus 10% and 10 GB for the image must fit diskGb",
            id="models-do-not-fit-the-disk",
        ),
        pytest.param(
            "GpuPool",
            {"template__models": [{"folder": "vae", "file": "v", "sha256": "ABC"}]},
            "spec.template.models[0].sha256",
            "should match",
            id="sha256-not-hex-64",
        ),
    ],
)
async def test_invalid_objects_are_refused(
    cluster: RunningCluster,
    cluster_http: httpx.AsyncClient,
    kind: str,
    changes: dict[str, Any],
    field: str,
    fragment: str,
) -> None:
    obj = with_spec(kind, **changes)
    response = await cluster_http.post(url(kind), json=obj)
    assert response.status_code == 422, response.text
    status = response.json()
    assert status["kind"] == "Status"
    assert status["status"] == "Failure"
    assert status["reason"] == "Invalid"
    assert field in [cause["field"] for cause in status["details"]["causes"]]
    assert fragment in status["message"]
    assert field in status["message"]
    assert cluster.get("warmpool.dev/v1alpha1", kind, obj["metadata"]["name"], "default") is None


async def test_invalid_patch_is_refused_and_changes_nothing(
    cluster: RunningCluster, cluster_http: httpx.AsyncClient
) -> None:
    created = (await cluster_http.post(url("GpuPool"), json=example("GpuPool"))).json()
    response = await cluster_http.patch(
        f"{url('GpuPool')}/{created['metadata']['name']}",
        json={"spec": {"replicas": -1}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 422
    stored = cluster.get("warmpool.dev/v1alpha1", "GpuPool", created["metadata"]["name"], "default")
    assert stored == created


async def test_unknown_spec_field_is_pruned_not_stored(cluster_http: httpx.AsyncClient) -> None:
    obj = with_spec("GpuPool", bogusField="x")
    response = await cluster_http.post(url("GpuPool"), json=obj)
    assert response.status_code == 201, response.text
    assert "bogusField" not in response.json()["spec"]
    fetched = await cluster_http.get(f"{url('GpuPool')}/{obj['metadata']['name']}")
    assert "bogusField" not in fetched.json()["spec"]


async def test_strict_field_validation_refuses_unknown_fields(
    cluster_http: httpx.AsyncClient,
) -> None:
    """kubectl sends fieldValidation=Strict: then unknown fields are an error, not pruned."""
    obj = with_spec("GpuPool", bogusField="x")
    response = await cluster_http.post(
        url("GpuPool"), json=obj, params={"fieldValidation": "Strict"}
    )
    assert response.status_code == 400
    assert 'unknown field "spec.bogusField"' in response.json()["message"]


async def test_defaults_are_applied(cluster_http: httpx.AsyncClient) -> None:
    obj = example("GpuPool")
    obj["spec"] = {}
    response = await cluster_http.post(url("GpuPool"), json=obj)
    assert response.status_code == 201, response.text
    spec = response.json()["spec"]
    assert spec["replicas"] == 1
    assert spec["paused"] is False
    assert spec["idleTimeout"] == "4m"
