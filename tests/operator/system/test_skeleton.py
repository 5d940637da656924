"""The real operator over HTTP acknowledges every GpuPool it sees (issue 2 skeleton)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from waiting import eventually

from warmpool.sim.cluster import RunningCluster


async def test_operator_sets_observed_generation_and_a_condition(
    cluster: RunningCluster, run_operator: Any
) -> None:
    cluster.create({
        "apiVersion": "warmpool.dev/v1alpha1", "kind": "GpuPool",
        "metadata": {"name": "idle", "namespace": "default"},
        "spec": {"replicas": 0},
    })  # fmt: skip

    def observed() -> dict[str, Any] | None:
        pool = cluster.get("warmpool.dev/v1alpha1", "GpuPool", "idle", namespace="default")
        status = (pool or {}).get("status") or {}
        return (
            status if status.get("observedGeneration") == 1 and status.get("conditions") else None
        )

    async with run_operator():
        status = await eventually(observed, what="pool status")
    types = {c["type"]: c["status"] for c in status["conditions"]}
    assert types["Ready"] == "True"  # nothing wanted, nothing missing
    assert status["replicas"] == 0
    assert status["selector"] == "warmpool.dev/pool=idle"


def _exec_kubeconfig(cluster: RunningCluster, tmp_path: Path) -> Path:
    """A kubeconfig whose user is an exec credential plugin printing ``tok-<run>``."""
    plugin = tmp_path / "credential-plugin"
    plugin.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib\n"
        f"runs = pathlib.Path({str(tmp_path / 'plugin-runs')!r})\n"
        "n = int(runs.read_text()) + 1 if runs.exists() else 1\n"
        "runs.write_text(str(n))\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'kind':\n"
        "    'ExecCredential', 'status': {'token': f'tok-{n}'}}))\n"
    )
    plugin.chmod(0o755)
    path = tmp_path / "exec-kubeconfig"
    path.write_text(
        yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "sim",
            "clusters": [{"name": "sim", "cluster": {"server": cluster.url}}],
            "users": [{"name": "sim", "user": {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                "interactiveMode": "Never"}}}],
            "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "sim"}}],
        })
    )  # fmt: skip
    return path


async def test_operator_logs_in_through_an_exec_credential_plugin(
    cluster: RunningCluster,
    run_operator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kopf's watches and the operator's own client both carry the plugin's token (the
    emulated API refuses any other), and a revoked token is replaced by a fresh one."""
    monkeypatch.setenv("KUBECONFIG", str(_exec_kubeconfig(cluster, tmp_path)))
    cluster.emulator.bearer_tokens = {"tok-1"}
    pool = {
        "apiVersion": "warmpool.dev/v1alpha1", "kind": "GpuPool",
        "metadata": {"name": "idle", "namespace": "default"}, "spec": {"replicas": 0},
    }  # fmt: skip

    def observed(name: str) -> dict[str, Any] | None:
        got = cluster.get("warmpool.dev/v1alpha1", "GpuPool", name, namespace="default")
        status = (got or {}).get("status") or {}
        return status if status.get("conditions") else None

    async with run_operator():
        cluster.create(pool)
        await eventually(lambda: observed("idle"), what="pool status with tok-1")
        cluster.emulator.bearer_tokens = {"tok-2"}  # revoked: Kopf and the client re-login
        cluster.create({**pool, "metadata": {"name": "second", "namespace": "default"}})
        await eventually(lambda: observed("second"), what="pool status with tok-2", timeout=30)
    assert int((tmp_path / "plugin-runs").read_text()) >= 2
