"""The Kubernetes client: status→error table (respx), configuration loading, and a
round trip against the emulated Kubernetes API."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from warmpool.operator import errors
from warmpool.operator.adapters import kube, kubeconfig

SERVER = "https://kube.test"
TOKEN = "eyJhbGciOi-SECRET-token-0123456789"


pytestmark = pytest.mark.usefixtures("close_stray_loop")


@pytest.fixture
async def client() -> AsyncIterator[kube.KubeClient]:
    # respx answers every request: verify=False only skips loading CA certificates (0.2 s).
    async with httpx.AsyncClient(verify=False) as http:
        yield kube.KubeClient(SERVER, client=http, read_attempts=1)


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=SERVER, assert_all_called=False) as router:
        yield router


# ---------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("res", "args", "path"),
    [
        (kube.GPUPOOLS, ("ns", None, None), "/apis/warmpool.dev/v1alpha1/namespaces/ns/gpupools"),
        (kube.GPUPOOLS, (None, None, None), "/apis/warmpool.dev/v1alpha1/gpupools"),
        (
            kube.GENERATIONJOBS,
            ("ns", "j1", "status"),
            "/apis/warmpool.dev/v1alpha1/namespaces/ns/generationjobs/j1/status",
        ),
        (kube.SECRETS, ("ns", "s", None), "/api/v1/namespaces/ns/secrets/s"),
        (kube.NAMESPACES, ("ignored", "ns", None), "/api/v1/namespaces/ns"),
        (kube.LEASES, ("ns", None, None), "/apis/coordination.k8s.io/v1/namespaces/ns/leases"),
    ],
    ids=["ns-list", "all-ns", "status", "core", "cluster-scoped", "leases"],
)
def test_paths(res: kube.Resource, args: tuple[Any, Any, Any], path: str) -> None:
    assert res.path(*args) == path


def test_custom_resource_constants() -> None:
    assert [
        r.kind for r in (kube.GPUPOOLS, kube.GPUINSTANCES, kube.GENERATIONJOBS, kube.MUSES)
    ] == [
        "GpuPool",
        "GpuInstance",
        "GenerationJob",
        "Muse",
    ]
    assert kube.MUSES.api_version == "warmpool.dev/v1alpha1"
    assert kube.EVENTS.api_version == "v1"


# ---------------------------------------------------------------- error table


def _status(code: int, reason: str, **extra: Any) -> httpx.Response:
    body = {"kind": "Status", "status": "Failure", "code": code, "reason": reason, **extra}
    body.setdefault("message", f"{reason} happened")
    return httpx.Response(code, json=body)


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (401, "Unauthorized", errors.KubeForbiddenError),
        (403, "Forbidden", errors.KubeForbiddenError),
        (404, "NotFound", errors.KubeNotFoundError),
        (409, "Conflict", errors.KubeConflictError),
        (410, "Gone", errors.KubeGoneError),
        (422, "Invalid", errors.KubeInvalidError),
        (429, "TooManyRequests", errors.KubeUnavailableError),
        (500, "InternalError", errors.KubeUnavailableError),
        (503, "ServiceUnavailable", errors.KubeUnavailableError),
        (400, "BadRequest", errors.KubeError),
    ],
    ids=lambda v: str(v) if isinstance(v, int) else None,
)
async def test_status_error_table(
    client: kube.KubeClient,
    mock: respx.MockRouter,
    code: int,
    reason: str,
    cls: type[errors.KubeError],
) -> None:
    mock.patch(kube.GPUPOOLS.path("ns", "p")).mock(return_value=_status(code, reason))
    with pytest.raises(cls) as info:
        await client.patch(kube.GPUPOOLS, "p", "ns", {"spec": {"paused": True}})
    assert type(info.value) is cls
    assert info.value.status == code
    assert info.value.reason == reason
    assert f"{reason} happened" in str(info.value)


def test_retry_meaning() -> None:
    assert isinstance(errors.KubeUnavailableError("x"), errors.TemporaryError)
    assert isinstance(errors.KubeForbiddenError("x"), errors.PermanentError)
    assert isinstance(errors.KubeInvalidError("x"), errors.PermanentError)


async def test_invalid_carries_causes(client: kube.KubeClient, mock: respx.MockRouter) -> None:
    causes = [{"reason": "FieldValueInvalid", "message": "must be >= 0", "field": "spec.replicas"}]
    mock.post(kube.GPUPOOLS.path("ns")).mock(
        return_value=_status(422, "Invalid", details={"name": "p", "causes": causes})
    )
    with pytest.raises(errors.KubeInvalidError) as info:
        await client.create(kube.GPUPOOLS, {"metadata": {"name": "p"}}, "ns")
    assert info.value.causes == causes


async def test_connection_error_is_unavailable(
    client: kube.KubeClient, mock: respx.MockRouter
) -> None:
    mock.get(kube.GPUPOOLS.path("ns", "p")).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(errors.KubeUnavailableError):
        await client.get(kube.GPUPOOLS, "p", "ns")


async def test_reads_are_retried_on_transient_errors(mock: respx.MockRouter) -> None:
    route = mock.get(kube.GPUPOOLS.path("ns", "p")).mock(
        side_effect=[_status(503, "ServiceUnavailable"), httpx.Response(200, json={"a": 1})]
    )
    async with httpx.AsyncClient(verify=False) as http:
        c = kube.KubeClient(SERVER, client=http, read_attempts=3)
        assert await c.get(kube.GPUPOOLS, "p", "ns") == {"a": 1}
    assert route.call_count == 2


async def test_writes_are_not_retried(client: kube.KubeClient, mock: respx.MockRouter) -> None:
    route = mock.post(kube.GPUPOOLS.path("ns")).mock(return_value=_status(503, "X"))
    async with httpx.AsyncClient(verify=False) as http:
        c = kube.KubeClient(SERVER, client=http, read_attempts=3)
        with pytest.raises(errors.KubeUnavailableError):
            await c.create(kube.GPUPOOLS, {"metadata": {"name": "p"}}, "ns")
    assert route.call_count == 1


async def test_get_none_and_delete_false_on_404(
    client: kube.KubeClient, mock: respx.MockRouter
) -> None:
    mock.get(kube.MUSES.path("ns", "m")).mock(return_value=_status(404, "NotFound"))
    mock.delete(kube.MUSES.path("ns", "m")).mock(return_value=_status(404, "NotFound"))
    assert await client.get(kube.MUSES, "m", "ns") is None
    assert await client.delete(kube.MUSES, "m", "ns") is False


async def test_patch_kinds_and_delete_options(
    client: kube.KubeClient, mock: respx.MockRouter
) -> None:
    status = mock.patch(kube.GENERATIONJOBS.path("ns", "j", "status")).mock(
        return_value=httpx.Response(200, json={"ok": 1})
    )
    delete = mock.delete(kube.GENERATIONJOBS.path("ns", "j")).mock(
        return_value=httpx.Response(200, json={"kind": "Status"})
    )
    await client.patch(
        kube.GENERATIONJOBS, "j", "ns", {"status": {"phase": "Running"}}, subresource="status"
    )
    await client.patch(
        kube.GENERATIONJOBS, "j", "ns", [{"op": "remove", "path": "/x"}], subresource="status"
    )
    assert await client.delete(kube.GENERATIONJOBS, "j", "ns", propagation="Foreground") is True
    kinds = [c.request.headers["content-type"] for c in status.calls]
    assert kinds == [kube.MERGE_PATCH, kube.JSON_PATCH]
    assert json.loads(delete.calls[0].request.content)["propagationPolicy"] == "Foreground"


async def test_list_follows_pages_and_fills_kind(
    client: kube.KubeClient, mock: respx.MockRouter
) -> None:
    route = mock.get(kube.GPUINSTANCES.path("ns")).mock(
        side_effect=[
            httpx.Response(
                200, json={"items": [{"metadata": {"name": "a"}}], "metadata": {"continue": "t1"}}
            ),
            httpx.Response(
                200,
                json={"items": [{"metadata": {"name": "b"}}], "metadata": {"resourceVersion": "7"}},
            ),
        ]
    )
    items, version = await client.list_with_version(
        kube.GPUINSTANCES, "ns", label_selector="warmpool.dev/pool=p"
    )
    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert {i["kind"] for i in items} == {"GpuInstance"}
    assert version == "7"
    second = route.calls[1].request.url.params
    assert second["continue"] == "t1"
    assert second["labelSelector"] == "warmpool.dev/pool=p"


async def test_watch_yields_events_and_raises_gone(
    client: kube.KubeClient, mock: respx.MockRouter
) -> None:
    lines = [
        {"type": "ADDED", "object": {"metadata": {"name": "a"}}},
        {"type": "MODIFIED", "object": {"metadata": {"name": "a"}}},
        {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}},
    ]
    body = "\n".join(json.dumps(x) for x in lines) + "\n"
    route = mock.get(kube.GPUPOOLS.path("ns")).mock(return_value=httpx.Response(200, text=body))
    seen: list[kube.WatchEvent] = []

    async def consume() -> None:
        async for event in client.watch(kube.GPUPOOLS, "ns", resource_version="5"):
            seen.append(event)

    with pytest.raises(errors.KubeGoneError):
        await consume()
    assert [e.type for e in seen] == ["ADDED", "MODIFIED"]
    params = route.calls[0].request.url.params
    assert (params["watch"], params["resourceVersion"]) == ("true", "5")


async def test_post_event_is_best_effort(
    client: kube.KubeClient, mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    involved = {
        "apiVersion": "warmpool.dev/v1alpha1",
        "kind": "GpuPool",
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
    }
    route = mock.post(kube.EVENTS.path("ns")).mock(
        side_effect=[httpx.Response(201, json={"ok": True}), _status(403, "Forbidden")]
    )
    assert await client.post_event(involved, reason="Rented", message="m") == {"ok": True}
    sent = json.loads(route.calls[0].request.content)
    assert sent["involvedObject"]["uid"] == "u1"
    assert (sent["reason"], sent["type"], sent["kind"]) == ("Rented", "Normal", "Event")
    with caplog.at_level(logging.WARNING):
        assert await client.post_event(involved, reason="X", message="m", type="Warning") is None
    assert "could not post event" in caplog.text


# ---------------------------------------------------------------- configuration


def _pem_pair() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "warmpool-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _kubeconfig(path: Path, *, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "main",
        "contexts": [
            {"name": "other", "context": {"cluster": "nope", "user": "nope"}},
            {"name": "main", "context": {"cluster": "c", "user": "u", "namespace": "team"}},
        ],
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_kubeconfig_with_token_sends_bearer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _kubeconfig(
        tmp_path / "config",
        cluster={"server": "http://127.0.0.1:1/"},
        user={"token": TOKEN},
    )
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{path}")
    config = kube.load_config()
    assert (config.server, config.namespace, config.bearer()) == (
        "http://127.0.0.1:1",
        "team",
        TOKEN,
    )
    assert TOKEN not in repr(config)
    with respx.mock(base_url="http://127.0.0.1:1") as router:
        route = router.get(kube.MUSES.path("team", "m")).mock(
            return_value=httpx.Response(200, json={})
        )
        async with kube.KubeClient.from_config() as client:
            await client.get(kube.MUSES, "m", client.namespace)
    assert route.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_kubeconfig_with_certificate_data(tmp_path: Path) -> None:
    cert, key = _pem_pair()
    path = _kubeconfig(
        tmp_path / "config",
        cluster={"server": "https://k:6443", "certificate-authority-data": _b64(cert)},
        user={"client-certificate-data": _b64(cert), "client-key-data": _b64(key)},
    )
    config = kube.load_config(path)
    assert config.cert_data == cert
    assert config.ca_data == cert.decode()
    ctx = config.verify()
    assert not isinstance(ctx, bool)
    assert ctx.get_ca_certs()[0]["subject"] == ((("commonName", "warmpool-test"),),)
    assert b"PRIVATE KEY" not in repr(config).encode()


def test_kubeconfig_with_certificate_files_relative(tmp_path: Path) -> None:
    cert, key = _pem_pair()
    (tmp_path / "ca.crt").write_bytes(cert)
    (tmp_path / "client.crt").write_bytes(cert)
    (tmp_path / "client.key").write_bytes(key)
    path = _kubeconfig(
        tmp_path / "config",
        cluster={"server": "https://k:6443", "certificate-authority": "ca.crt"},
        user={"client-certificate": "client.crt", "client-key": "client.key"},
    )
    config = kube.load_config(path)
    assert config.ca_file == tmp_path / "ca.crt"
    assert config.key_file == tmp_path / "client.key"
    assert not isinstance(config.verify(), bool)


def test_kubeconfig_insecure(tmp_path: Path) -> None:
    path = _kubeconfig(
        tmp_path / "config",
        cluster={"server": "https://k:6443", "insecure-skip-tls-verify": True},
        user={},
    )
    ctx = kube.load_config(path).verify()
    assert not isinstance(ctx, bool)
    assert not ctx.check_hostname


@pytest.mark.parametrize(
    "doc",
    [
        {"contexts": []},
        {"current-context": "x", "contexts": []},
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://k"}}],
            "users": [{"name": "u", "user": {"exec": {"command": "aws"}}}],
        },
    ],
    ids=["no-current-context", "unknown-context", "exec-user"],
)
def test_kubeconfig_refused(tmp_path: Path, doc: dict[str, Any]) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(errors.ConfigurationError):
        kube.load_config(path)


def test_in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, _ = _pem_pair()
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "ca.crt").write_bytes(cert)
    (tmp_path / "namespace").write_text("warmpool-system")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "8443")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", tmp_path)
    config = kube.load_config()
    assert config.server == "https://10.0.0.1:8443"
    assert config.namespace == "warmpool-system"
    assert config.bearer() == TOKEN
    (tmp_path / "token").write_text("rotated")
    assert config.bearer() == "rotated"
    assert not isinstance(config.verify(), bool)


def test_nothing_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(errors.ConfigurationError):
        kube.load_config()


# ---------------------------------------------------------------- the emulated API


def _pool(name: str, replicas: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"team": "a"}}, "spec": {"replicas": replicas}}


async def _first(events: AsyncIterator[kube.WatchEvent]) -> kube.WatchEvent:
    async for event in events:
        return event
    raise AssertionError("the watch ended without an event")


async def test_round_trip_against_emulated_api(cluster: Any, tmp_path: Path) -> None:
    path = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    async with kube.KubeClient.from_config(path) as client:
        created = await client.create(kube.GPUPOOLS, _pool("sdxl"), "default")
        assert created["metadata"]["name"] == "sdxl"
        assert created["spec"]["idleTimeout"] == "4m", "the CRD default was not applied"
        await client.create(kube.GPUPOOLS, _pool("flux"), "default")
        with pytest.raises(errors.KubeConflictError):
            await client.create(kube.GPUPOOLS, _pool("sdxl"), "default")
        with pytest.raises(errors.KubeInvalidError) as info:
            await client.create(kube.GPUPOOLS, _pool("bad", replicas=-1), "default")
        assert "replicas" in str(info.value) + json.dumps(info.value.causes)

        items, version = await client.list_with_version(
            kube.GPUPOOLS, "default", label_selector="team=a"
        )
        assert sorted(i["metadata"]["name"] for i in items) == ["flux", "sdxl"]
        assert {i["kind"] for i in items} == {"GpuPool"}

        patched = await client.patch(kube.GPUPOOLS, "sdxl", "default", {"spec": {"paused": True}})
        assert patched["spec"]["paused"] is True
        status = await client.patch(
            kube.GPUPOOLS, "sdxl", "default", {"status": {"readyReplicas": 1}}, subresource="status"
        )
        assert status["status"]["readyReplicas"] == 1
        stale = dict(created)  # the resourceVersion of before the patches
        with pytest.raises(errors.KubeConflictError):
            await client.replace(kube.GPUPOOLS, "sdxl", "default", stale)

        events = client.watch(kube.GPUPOOLS, "default", resource_version=version)
        await client.patch(kube.GPUPOOLS, "flux", "default", {"spec": {"replicas": 3}})
        event = await asyncio.wait_for(_first(events), timeout=10)
        await events.aclose()  # type: ignore[attr-defined]
        assert (event.type, event.object["metadata"]["name"]) in {
            ("MODIFIED", "sdxl"),
            ("MODIFIED", "flux"),
        }

        posted = await client.post_event(patched, reason="Paused", message="paused by test")
        assert posted is not None
        assert posted["involvedObject"]["name"] == "sdxl"

        assert await client.delete(kube.GPUPOOLS, "flux", "default") is True
        assert await client.get(kube.GPUPOOLS, "flux", "default") is None
        assert await client.delete(kube.GPUPOOLS, "flux", "default") is False
        secret = {"metadata": {"name": "tok"}, "type": "Opaque", "data": {"t": "eA=="}}
        await client.create(kube.SECRETS, secret, "default")
        got = await client.get(kube.SECRETS, "tok", "default")
        assert got is not None
        assert got["data"] == {"t": "eA=="}
