"""Fixtures of the chart tests: the ``helm`` binary and rendering the chart.

``helm`` comes from the virtualenv's ``bin`` (``python -m warmpool.sim.tools --dest .venv/bin``,
run by ``make tools``); the tests fail with that instruction when it is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "warmpool"

Manifest = dict[str, Any]

# Every optional part of the chart turned on (and the non-default modes of the operator).
ALL_ON: dict[str, Any] = {
    "operator": {"replicas": 2, "peering": {"enabled": True, "name": "warmpool"}},
    "studio": {
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "hosts": [
                {"host": "studio.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}
            ],
            "tls": [{"secretName": "studio-tls", "hosts": ["studio.example.com"]}],
        },
    },
    "artifacts": {
        "url": "s3://warmpool-outputs/prod",
        "s3": {
            "endpoint": "https://minio.example.com",
            "region": "eu-west-1",
            "credentialsSecret": "warmpool-s3",
        },
    },
    "metrics": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "dashboards": {"enabled": True},
    },
    "samplePool": {"enabled": True},
    "imagePullSecrets": [{"name": "registry"}],
}


def helm_binary() -> str:
    """The ``helm`` next to the running interpreter (the virtualenv's bin), else on PATH."""
    found = shutil.which("helm", path=str(Path(sys.executable).parent)) or shutil.which("helm")
    if found is None:
        pytest.fail(
            "helm is not installed: run `make tools` "
            "(python -m warmpool.sim.tools --dest .venv/bin)",
            pytrace=False,
        )
    return found


def run_helm(
    *args: str, values: Mapping[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run helm on the chart with ``values`` given as a JSON values file on stdin."""
    command = [helm_binary(), *args]
    if values is not None:
        command += ["--values", "-"]
    return subprocess.run(
        command,
        input=json.dumps(values or {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def render_chart(
    values: Mapping[str, Any] | None = None, *, namespace: str = "warmpool"
) -> list[Manifest]:
    """``helm template`` the chart (CRDs included) and return every manifest."""
    result = run_helm(
        "template",
        "wp",
        str(CHART),
        "--namespace",
        namespace,
        "--include-crds",
        values=values or {},
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


class Chart:
    """The chart under test, for the test modules (conftest is not importable from them)."""

    path = CHART
    repo = REPO
    all_on = ALL_ON

    @staticmethod
    def helm(
        *args: str, values: Mapping[str, Any] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_helm(*args, values=values)

    @staticmethod
    def render(
        values: Mapping[str, Any] | None = None, *, namespace: str = "warmpool"
    ) -> list[Manifest]:
        return render_chart(values, namespace=namespace)

    @staticmethod
    def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
        return [m for m in manifests if m["kind"] == kind]

    @staticmethod
    def one(manifests: list[Manifest], kind: str, name_suffix: str = "") -> Manifest:
        found = [
            m
            for m in manifests
            if m["kind"] == kind and m["metadata"]["name"].endswith(name_suffix)
        ]
        assert len(found) == 1, f"{kind} *{name_suffix}: {[m['metadata']['name'] for m in found]}"
        return found[0]


@pytest.fixture(scope="session")
def chart() -> type[Chart]:
    return Chart


@pytest.fixture(scope="session")
def default_manifests() -> list[Manifest]:
    return render_chart()


@pytest.fixture(scope="session")
def all_on_manifests() -> list[Manifest]:
    return render_chart(ALL_ON)
