"""Kopf's login handler: the ConnectionInfo comes from the operator's own KubeClient
configuration (one credential source), created on the first login."""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kopf
import pytest
import yaml

from warmpool.operator.adapters import kube
from warmpool.operator.handlers import startup
from warmpool.operator.settings import OperatorSettings

TOKEN = "login-SECRET-token-0123456789"
CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nnot parsed here\n").decode()


def _write(path: Path) -> Path:
    path.write_text(
        yaml.safe_dump({
            "current-context": "main",
            "contexts": [{"name": "main", "context": {"cluster": "c", "user": "u",
                                                      "namespace": "team"}}],
            "clusters": [{"name": "c", "cluster": {"server": "http://k:6443",
                                                   "certificate-authority-data": CA,
                                                   "proxy-url": "http://proxy:3128"}}],
            "users": [{"name": "u", "user": {"token": TOKEN}}],
        })
    )  # fmt: skip
    return path


async def test_login_uses_the_clients_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(_write(tmp_path / "config")))
    settings = OperatorSettings(pod_id="replica-0")
    memo: Any = SimpleNamespace(opened_kube=None, settings=settings)
    info = await startup.on_login_cluster(memo=memo)
    assert isinstance(info, kopf.ConnectionInfo)
    assert isinstance(memo.opened_kube, kube.KubeClient), "the client is created once, here"
    assert (info.server, info.token, info.default_namespace) == ("http://k:6443", TOKEN, "team")
    assert (info.ca_data, info.proxy_url, info.expiration) == (CA, "http://proxy:3128", None)
    client = memo.opened_kube
    assert client.user_agent.endswith(" (replica-0)"), "the audit log names the replica"
    assert await startup.on_login_cluster(memo=memo) == info
    assert memo.opened_kube is client
    await client.close()
