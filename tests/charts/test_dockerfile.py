"""The Dockerfile, checked by reading it: there is no Docker engine on the test machines, so
the image is not built here. The checks are the properties the chart relies on."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Instruction:
    keyword: str
    arguments: str


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """Instructions grouped by stage (continuation lines joined, comments dropped)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[Instruction]] = [[]]
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        instruction = Instruction(keyword.upper(), arguments.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def args(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.arguments for i in stage if i.keyword == keyword]


def test_dockerfile(chart: Any) -> None:
    text = (chart.repo / "Dockerfile").read_text()
    preamble, build, runtime = parse_dockerfile(text)
    (base_arg,) = args(preamble, "ARG")
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim(-\w+)?", base_arg)
    assert args(build, "FROM") == ["${PYTHON_IMAGE} AS build"]
    assert args(runtime, "FROM")[0].startswith("${PYTHON_IMAGE}")

    # The build stage makes a wheel from the sources the package is made of.
    assert any("build --wheel" in r for r in args(build, "RUN"))
    pyproject = tomllib.loads((chart.repo / "pyproject.toml").read_text())
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    needed |= set(pyproject["tool"]["setuptools"]["package-dir"].values())
    copied = {src for c in args(build, "COPY") for src in c.split()[:-1]}
    assert needed <= copied

    # The runtime stage installs that wheel (not editable) and runs as uid 10001.
    runs = " ".join(args(runtime, "RUN"))
    assert re.search(r"from=build", runs)
    assert re.search(r"pip install \S*\.whl", runs)
    assert "-e " not in runs
    assert "--editable" not in runs
    assert "--uid 10001" in runs
    assert args(runtime, "USER") == ["10001:10001"]
    assert not args(runtime, "COPY"), "the runtime stage holds nothing but the installed wheel"
    (cmd,) = args(runtime, "CMD")
    assert json.loads(cmd) == ["warmpool-operator"]
    assert not args(runtime, "ENTRYPOINT"), "the studio must be runnable from the same image"
    scripts = pyproject["project"]["scripts"]
    assert {"warmpool-operator", "warmpool-studio"} <= scripts.keys()


def test_dockerignore_keeps_the_build_inputs(chart: Any) -> None:
    patterns = [
        line.strip()
        for line in (chart.repo / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(
            fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns
        )

    for kept in ("pyproject.toml", "README.md", "crds/gpupool.py", "operator/metrics.py"):
        assert not ignored(kept), kept
    for dropped in (".venv", ".git", "tests/conftest.py", "charts/warmpool/Chart.yaml"):
        assert ignored(dropped), dropped
    assert Path(chart.repo / ".dockerignore").is_file()
