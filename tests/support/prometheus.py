"""Debian's ``prometheus`` and ``promtool`` for the observability tests.

``make test`` installs the Debian package when it runs as root (``make prometheus``, like
Chromium for the browser tests). The tests skip with a reason only when a binary is absent
and the tests do not run as root; as root (CI) a missing binary is a failure, since
``make test`` should have installed it.

Also here: the alert and recording rules as the chart renders them (the single source of the
rules: ``helm template`` of ``charts/warmpool``, never a copy), written as a Prometheus rule
file.
"""

from __future__ import annotations

import json
import os
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
#: Values that render the PrometheusRule (and everything else the rules refer to).
RULE_VALUES: dict[str, Any] = {"metrics": {"prometheusRule": {"enabled": True}}}
RELEASE, NAMESPACE = "wp", "warmpool"


def binary(name: str) -> str:
    """``/usr/bin/<name>`` (or one on PATH); skip when absent and not root, else fail."""
    found = shutil.which(name, path="/usr/bin") or shutil.which(name)
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip(f"{name} is missing (Debian package prometheus; make test installs it as root)")
    pytest.fail(f"{name} is missing although running as root: run `make prometheus`", pytrace=False)


def helm() -> str:
    found = shutil.which("helm", path=str(Path(sys.executable).parent)) or shutil.which("helm")
    if found is None:
        pytest.fail("helm is not installed: run `make tools`", pytrace=False)
    return found


def rendered_rule_groups(values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The ``spec.groups`` of the chart's PrometheusRule, rendered by ``helm template``."""
    merged = json.loads(json.dumps(RULE_VALUES))
    for key, value in (values or {}).get("metrics", {}).get("prometheusRule", {}).items():
        merged["metrics"]["prometheusRule"][key] = value
    result = subprocess.run(
        [helm(), "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--values", "-"],
        input=json.dumps(merged),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (rule,) = [
        doc
        for doc in yaml.safe_load_all(result.stdout)
        if doc and doc.get("kind") == "PrometheusRule"
    ]
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def write_rule_file(path: Path, values: Mapping[str, Any] | None = None) -> Path:
    """The rendered rules as a Prometheus rule file (what the Prometheus Operator loads)."""
    path.write_text(yaml.safe_dump({"groups": rendered_rule_groups(values)}, sort_keys=False))
    return path
