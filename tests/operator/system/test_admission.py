"""The validating admission webhook, end to end (T3, issue 15).

The real Kopf operator serves it over HTTPS with the certificate the chart generates; the
chart's own ValidatingWebhookConfiguration is registered in the emulated API, which calls
it as a real API server does (``<service>.<namespace>.svc`` verified against the chart's
caBundle). A kubectl-style create of a job whose composed prompt breaks the minors policy
is refused with the webhook's message and nothing is stored; the real ``kubectl`` prints it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import webhook
import yaml
from waiting import eventually

from warmpool.sim.cluster import RunningCluster

API = "warmpool.dev/v1alpha1"
NS_PATH = "/apis/warmpool.dev/v1alpha1/namespaces/default"
DENIED = 'admission webhook "generationjobs.warmpool.dev" denied the request: spec.prompt: '


def job(name: str, prompt: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "GenerationJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"pool": "sdxl", "prompt": prompt, **spec},
    }


def stored(cluster: RunningCluster, name: str) -> dict[str, Any] | None:
    return cluster.get(API, "GenerationJob", name, "default")


async def listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


@pytest.fixture
def hook(cluster: RunningCluster, tmp_path: Path) -> webhook.Webhook:
    return webhook.install(cluster, tmp_path / "webhook-tls")


@contextlib.asynccontextmanager
async def serving(run_operator: Any, hook: webhook.Webhook) -> AsyncIterator[None]:
    """The operator with its webhook on (in the test's own task: Kopf is stopped there)."""
    async with run_operator(
        webhook_port=hook.port, webhook_addr="127.0.0.1", webhook_cert_dir=str(hook.cert_dir)
    ):
        await eventually(lambda: listening(hook.port), what="the webhook listening")
        yield


@pytest.fixture
async def http(cluster: RunningCluster) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cluster.url, timeout=30) as client:
        yield client


async def test_policy_is_enforced_before_storing(
    cluster: RunningCluster, http: httpx.AsyncClient, run_operator: Any, hook: webhook.Webhook
) -> None:
    async with serving(run_operator, hook):
        await check_policy(cluster, http)


async def check_policy(cluster: RunningCluster, http: httpx.AsyncClient) -> None:
    # A clean job is accepted.
    answer = await http.post(f"{NS_PATH}/generationjobs", json=job("clean", "a lighthouse"))
    assert answer.status_code == 201, answer.text
    # A violating prompt is refused with the webhook's message, and nothing is stored.
    answer = await http.post(f"{NS_PATH}/generationjobs", json=job("bad", "a child on a swing"))
    assert answer.status_code == 403, answer.text
    assert answer.json()["message"].startswith(DENIED)
    assert "content policy" in answer.json()["message"]
    assert stored(cluster, "bad") is None
    # The composed prompt is checked: each piece passes, the muse's template makes "12-year-old".
    muse = {
        "apiVersion": API,
        "kind": "Muse",
        "metadata": {"name": "ada"},
        "spec": {"displayName": "Ada", "age": 30, "promptTemplate": "{prompt}-year-old {name}"},
    }
    answer = await http.post(f"{NS_PATH}/muses", json=muse)
    assert answer.status_code == 201, answer.text
    answer = await http.post(f"{NS_PATH}/generationjobs", json=job("composed", "12", museRef="ada"))
    assert answer.status_code == 403, answer.text
    assert answer.json()["message"].startswith(DENIED)
    assert "composed with muse 'ada'" in answer.json()["message"]
    assert stored(cluster, "composed") is None
    # An update that introduces a violation is refused; the stored spec is unchanged.
    answer = await http.patch(
        f"{NS_PATH}/generationjobs/clean",
        content=json.dumps({"spec": {"prompt": "a teen at school"}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert answer.status_code == 403, answer.text
    assert answer.json()["message"].startswith(DENIED)
    clean = stored(cluster, "clean")
    assert clean is not None and clean["spec"]["prompt"] == "a lighthouse"
    # A muse breaking the policy is refused by its own webhook, naming the field.
    bad_muse = {**muse, "metadata": {"name": "kid"}, "spec": {**muse["spec"], "style": "toddler"}}
    answer = await http.post(f"{NS_PATH}/muses", json=bad_muse)
    assert answer.status_code == 403, answer.text
    assert answer.json()["message"].startswith(
        'admission webhook "muses.warmpool.dev" denied the request: spec.style: '
    )
    # A pool the schema lets through but its model refuses (a model file named "..").
    models = [{"folder": "checkpoints", "file": "..", "url": "https://example.com/a"}]
    pool = {
        "apiVersion": API,
        "kind": "GpuPool",
        "metadata": {"name": "bad-pool"},
        "spec": {"replicas": 0, "template": {"models": models}},
    }
    answer = await http.post(f"{NS_PATH}/gpupools", json=pool)
    assert answer.status_code == 422, answer.text
    assert answer.json()["message"] == (
        'admission webhook "gpupools.warmpool.dev" denied the request: '
        "spec.template.models[0]: models[].file must be a file name"
    )
    assert cluster.get(API, "GpuPool", "bad-pool", "default") is None
    # An object stored before the webhook existed (straight into the store) can still be
    # labelled, its finalizers removed, deleted: metadata-only updates are not refused.
    cluster.create(job("legacy", "a child"))
    answer = await http.patch(
        f"{NS_PATH}/generationjobs/legacy",
        content=json.dumps({"metadata": {"labels": {"reviewed": "yes"}}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert answer.status_code == 200, answer.text
    assert (await http.delete(f"{NS_PATH}/generationjobs/legacy")).status_code == 200
    # The chart owns the configuration: the operator registered none of its own.
    configs = cluster.list("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")
    assert [c["metadata"]["name"] for c in configs] == ["wp-warmpool"]


async def test_kubectl_prints_the_denial(
    cluster: RunningCluster, run_operator: Any, hook: webhook.Webhook
) -> None:
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent))
    if kubectl is None:
        pytest.skip("kubectl is not installed (make tools)")
    async with serving(run_operator, hook):
        await check_kubectl(cluster, kubectl)


async def check_kubectl(cluster: RunningCluster, kubectl: str) -> None:
    process = await asyncio.create_subprocess_exec(
        kubectl, "create", "-f", "-",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(
        process.communicate(yaml.safe_dump(job("kubectl-bad", "a little girl")).encode()), 60
    )
    assert process.returncode != 0, out.decode()
    assert "Error from server" in err.decode()
    assert DENIED in err.decode(), err.decode()
    assert stored(cluster, "kubectl-bad") is None
    # A job naming a muse that does not exist yet is stored, with the webhook's warning.
    process = await asyncio.create_subprocess_exec(
        kubectl, "create", "-f", "-",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    body = yaml.safe_dump(job("kubectl-later", "a portrait", museRef="not-yet"))
    out, err = await asyncio.wait_for(process.communicate(body.encode()), 60)
    assert process.returncode == 0, err.decode()
    assert "Warning: spec.museRef: muse 'not-yet' does not exist (yet)" in err.decode()
    assert stored(cluster, "kubectl-later") is not None


@pytest.mark.parametrize(("policy", "created"), [("Fail", False), ("Ignore", True)])
async def test_webhook_down_follows_the_failure_policy(
    cluster: RunningCluster,
    http: httpx.AsyncClient,
    hook: webhook.Webhook,
    policy: str,
    created: bool,
) -> None:
    """No operator runs: the Service has no one behind it."""
    webhook.set_failure_policy(cluster, policy)
    answer = await http.post(f"{NS_PATH}/generationjobs", json=job("while-down", "a lighthouse"))
    if created:
        assert answer.status_code == 201, answer.text
        assert stored(cluster, "while-down") is not None
    else:
        assert answer.status_code == 500, answer.text
        assert answer.json()["message"].startswith(
            'Internal error occurred: failed calling webhook "generationjobs.warmpool.dev": '
        )
        assert stored(cluster, "while-down") is None
