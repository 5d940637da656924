"""The Kubernetes client: status→error table, user agent, field manager, 429 (respx);
configuration (merged kubeconfig, in-cluster, exec plugins, TLS); and round trips against
the emulated Kubernetes API, one through an exec credential plugin."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
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
    with respx.mock(using="httpx", base_url=SERVER, assert_all_called=False) as router:
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


def _kubeconfig(
    path: Path, *, cluster: dict[str, Any], user: dict[str, Any], current: str | None = "main"
) -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "contexts": [
            {"name": "other", "context": {"cluster": "nope", "user": "nope"}},
            {"name": "main", "context": {"cluster": "c", "user": "u", "namespace": "team"}},
        ],
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
    }
    if current:
        doc["current-context"] = current
    path.write_text(yaml.safe_dump(doc))
    return path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _plugin(tmp_path: Path, *, expires_in: float | None = 3600, code: int = 0) -> Path:
    """An exec credential plugin: prints ``tok-<n>`` (n counts its runs) and, when
    ``expires_in`` is set, an expiry that far from now."""
    script = tmp_path / "plugin.py"
    script.write_text(
        f"#!{sys.executable}\n"
        "import datetime, json, os, pathlib, sys\n"
        f"runs = pathlib.Path({str(tmp_path / 'runs')!r})\n"
        "n = int(runs.read_text()) + 1 if runs.exists() else 1\n"
        "runs.write_text(str(n))\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "assert info['kind'] == 'ExecCredential', info\n"
        f"expires_in = {expires_in!r}\n"
        "status = {'token': f'tok-{n}'}\n"
        "if expires_in is not None:\n"
        "    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=expires_in)\n"
        "    status['expirationTimestamp'] = at.strftime('%Y-%m-%dT%H:%M:%SZ')\n"
        "print(json.dumps({'apiVersion': info['apiVersion'], 'kind': 'ExecCredential',\n"
        "                  'status': status}))\n"
        f"sys.exit({code})\n"
    )
    script.chmod(0o755)
    return script


def _exec_user(script: Path) -> dict[str, Any]:
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": str(script),
            "env": [{"name": "PLUGIN_MODE", "value": "test"}],
            "interactiveMode": "Never",
        }
    }


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
    assert (config.server, config.namespace) == ("http://127.0.0.1:1", "team")
    assert TOKEN not in repr(config)
    with respx.mock(using="httpx", base_url="http://127.0.0.1:1") as router:
        route = router.get(kube.MUSES.path("team", "m")).mock(
            return_value=httpx.Response(200, json={})
        )
        async with kube.KubeClient.from_config() as client:
            await client.get(kube.MUSES, "m", client.namespace)
            info = await client.login_info()
    assert route.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert (info.server, info.token, info.namespace) == ("http://127.0.0.1:1", TOKEN, "team")
    assert TOKEN not in repr(info)


def test_merged_kubeconfig_first_file_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, _ = _pem_pair()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "ca.crt").write_bytes(cert)
    first = tmp_path / "a.yaml"
    first.write_text(
        yaml.safe_dump({
            "current-context": "second",
            "users": [{"name": "u", "user": {"token": "from-a"}}],
        })
    )  # fmt: skip
    second = tmp_path / "b" / "config"
    second.write_text(
        yaml.safe_dump({
            "current-context": "ignored",
            "contexts": [{"name": "second", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [
                {"name": "c", "cluster": {"server": "https://b:6443",
                                          "certificate-authority": "ca.crt",
                                          "tls-server-name": "api.internal",
                                          "proxy-url": "http://proxy.test:3128"}},
            ],
            "users": [{"name": "u", "user": {"token": "from-b"}}],
        })
    )  # fmt: skip
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first), "/nonexistent", str(second)]))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config = kube.load_config()
    assert config.server == "https://b:6443"
    assert config.namespace == "default"
    assert config.user is not None and config.user.token == "from-a"
    assert config.cluster.certificate_auth == str(tmp_path / "b" / "ca.crt")
    assert (config.tls_server_name, config.proxy_url) == ("api.internal", "http://proxy.test:3128")
    assert str(first) in config.source and "nonexistent" not in config.source


async def test_tls_server_name_reaches_the_connection(tmp_path: Path) -> None:
    cert, _ = _pem_pair()
    path = _kubeconfig(
        tmp_path / "config",
        cluster={
            "server": SERVER,
            "certificate-authority-data": _b64(cert),
            "tls-server-name": "api.internal",
        },
        user={"token": TOKEN},
    )
    with respx.mock(using="httpx", base_url=SERVER) as router:
        route = router.get(kube.MUSES.path("team", "m")).mock(
            return_value=httpx.Response(200, json={})
        )
        async with kube.KubeClient.from_config(path) as client:
            await client.get(kube.MUSES, "m", "team")
    assert route.calls[0].request.extensions["sni_hostname"] == "api.internal"


def test_kubeconfig_with_certificate_data(tmp_path: Path) -> None:
    cert, key = _pem_pair()
    path = _kubeconfig(
        tmp_path / "config",
        cluster={"server": "https://k:6443", "certificate-authority-data": _b64(cert)},
        user={"client-certificate-data": _b64(cert), "client-key-data": _b64(key)},
    )
    config = kube.load_config(path)
    tls = config.tls()
    assert tls is not None
    assert tls.context.get_ca_certs()[0]["subject"] == ((("commonName", "warmpool-test"),),)
    assert b"PRIVATE KEY" not in repr(config).encode()


def test_client_certificate_files_relative_and_reloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    assert config.key_file == tmp_path / "client.key"
    tls = config.tls()
    assert tls is not None
    monkeypatch.setattr(kubeconfig, "CERT_CHECK_SECONDS", 0.0)
    assert tls.reload_if_changed() is False, "unchanged files are not reloaded"
    cert2, key2 = _pem_pair()  # the certificate was renewed
    (tmp_path / "client.crt").write_bytes(cert2)
    (tmp_path / "client.key").write_bytes(key2)
    for name in ("client.crt", "client.key"):
        os.utime(tmp_path / name, (1e9, 2e9))
    assert tls.reload_if_changed() is True
    assert tls.reload_if_changed() is False


def test_kubeconfig_insecure(tmp_path: Path) -> None:
    path = _kubeconfig(
        tmp_path / "config",
        cluster={"server": "https://k:6443", "insecure-skip-tls-verify": True},
        user={},
    )
    tls = kube.load_config(path).tls()
    assert tls is not None
    assert not tls.context.check_hostname


@pytest.mark.parametrize(
    "doc",
    [
        {"contexts": []},
        {"current-context": "x", "contexts": []},
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://k"}}],
            "users": [{"name": "u", "user": {"auth-provider": {"name": "oidc"}}}],
        },
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://k"}}],
            "users": [{"name": "u", "user": {"exec": {"apiVersion": "v9", "command": "x"}}}],
        },
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "missing"}}],
            "clusters": [],
        },
    ],
    ids=["no-current-context", "unknown-context", "auth-provider", "exec-version", "no-cluster"],
)
def test_kubeconfig_refused(tmp_path: Path, doc: dict[str, Any]) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(errors.ConfigurationError):
        kube.load_config(path)


def _in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cert, _ = _pem_pair()
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text(TOKEN + "\n")
    (sa / "ca.crt").write_bytes(cert)
    (sa / "namespace").write_text("warmpool-system")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "8443")
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", sa)
    return sa


async def test_in_cluster_token_is_reread_when_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sa = _in_cluster(tmp_path, monkeypatch)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    config = kube.load_config()
    assert config.server == "https://10.0.0.1:8443"
    assert config.namespace == "warmpool-system"
    assert config.tls() is not None
    assert (await config.login_info()).token == TOKEN
    with respx.mock(using="httpx", base_url="https://10.0.0.1:8443") as router:
        sent, answer = _recording(
            httpx.Response(200, json={}), _status(401, "Unauthorized"), httpx.Response(200, json={})
        )
        router.get(kube.MUSES.path("ns", "m")).mock(side_effect=answer)
        async with kube.KubeClient(config.server, config=config) as client:
            assert await client.get(kube.MUSES, "m", "ns") == {}
            (sa / "token").write_text("rotated")  # the kubelet rotated it; the old one expired
            assert await client.get(kube.MUSES, "m", "ns") == {}
    assert sent == [f"Bearer {TOKEN}", f"Bearer {TOKEN}", "Bearer rotated"]
    assert (await config.login_info()).token == "rotated"


def _recording(
    *answers: httpx.Response,
) -> tuple[list[str], Callable[[httpx.Request], httpx.Response]]:
    """The ``Authorization`` header of each request as it was sent (an auth flow sends the
    same request object again with a new token), and the answers in turn."""
    sent: list[str] = []
    queue = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["Authorization"])
        return queue.pop(0)

    return sent, answer


def test_in_cluster_precedes_kubeconfig_as_in_kopf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _in_cluster(tmp_path, monkeypatch)
    path = _kubeconfig(tmp_path / "config", cluster={"server": "https://k:6443"}, user={})
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert kube.load_config().source == "in-cluster service account"
    assert kube.load_config(path).server == "https://k:6443", "an explicit path wins"


def test_nothing_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(errors.ConfigurationError):
        kube.load_config()


# ---------------------------------------------------------------- exec credential plugins


async def test_exec_plugin_token_is_cached_until_expiry(tmp_path: Path) -> None:
    path = _kubeconfig(
        tmp_path / "config", cluster={"server": SERVER}, user=_exec_user(_plugin(tmp_path))
    )
    config = kube.load_config(path)
    with respx.mock(using="httpx", base_url=SERVER) as router:
        route = router.get(kube.MUSES.path("team", "m")).mock(
            return_value=httpx.Response(200, json={})
        )
        async with kube.KubeClient(SERVER, config=config) as client:
            await client.get(kube.MUSES, "m", "team")
            await client.get(kube.MUSES, "m", "team")
            info = await client.login_info()
    assert [c.request.headers["Authorization"] for c in route.calls] == ["Bearer tok-1"] * 2
    assert (tmp_path / "runs").read_text() == "1"
    assert info.token == "tok-1", "Kopf's first login shares the client's token"
    assert info.expiration is not None
    assert info.expiration > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=50)
    # Kopf logs in again only when refused (or expired): then the plugin runs again.
    assert (await config.login_info()).token == "tok-2"


async def test_exec_plugin_refreshed_on_expiry_and_on_401(tmp_path: Path) -> None:
    # Expiring within the refresh margin: every use runs the plugin again.
    user = _exec_user(_plugin(tmp_path, expires_in=5))
    config = kube.load_config(
        _kubeconfig(tmp_path / "config", cluster={"server": SERVER}, user=user)
    )
    with respx.mock(using="httpx", base_url=SERVER) as router:
        sent, answer = _recording(
            httpx.Response(200, json={}), httpx.Response(200, json={}),
            _status(401, "Unauthorized"), httpx.Response(200, json={}),
        )  # fmt: skip
        router.get(kube.MUSES.path("team", "m")).mock(side_effect=answer)
        async with kube.KubeClient(SERVER, config=config) as client:
            await client.get(kube.MUSES, "m", "team")
            await client.get(kube.MUSES, "m", "team")
            await client.get(kube.MUSES, "m", "team")  # refused once, then sent again
    assert sent == ["Bearer tok-1", "Bearer tok-2", "Bearer tok-3", "Bearer tok-4"]


async def test_exec_plugin_failure_keeps_its_output_out_of_the_error(tmp_path: Path) -> None:
    path = _kubeconfig(
        tmp_path / "config",
        cluster={"server": SERVER},
        user=_exec_user(_plugin(tmp_path, code=3)),
    )
    async with kube.KubeClient.from_config(path) as client:
        with pytest.raises(errors.ConfigurationError) as info:
            await client.get(kube.MUSES, "m", "team")
    assert "exited with 3" in str(info.value)
    assert "tok-" not in str(info.value)


# ---------------------------------------------------------------- what every request carries


async def test_user_agent_and_field_manager(
    client: kube.KubeClient, mock: respx.MockRouter
) -> None:
    ok = httpx.Response(200, json={})
    routes = [
        mock.post(kube.GPUPOOLS.path("ns")).mock(return_value=ok),
        mock.patch(kube.GPUPOOLS.path("ns", "p")).mock(return_value=ok),
        mock.put(kube.GPUPOOLS.path("ns", "p")).mock(return_value=ok),
        mock.get(kube.GPUPOOLS.path("ns", "p")).mock(return_value=ok),
    ]
    await client.create(kube.GPUPOOLS, {"metadata": {"name": "p"}}, "ns")
    await client.patch(kube.GPUPOOLS, "p", "ns", {"spec": {}})
    await client.replace(kube.GPUPOOLS, "p", "ns", {"metadata": {"name": "p"}})
    await client.get(kube.GPUPOOLS, "p", "ns")
    requests = [r.calls[0].request for r in routes]
    assert {r.headers["User-Agent"] for r in requests} == {kube.USER_AGENT}
    assert kube.USER_AGENT.startswith("warmpool/")
    assert [r.url.params.get("fieldManager") for r in requests] == ["warmpool"] * 3 + [None]


async def test_429_retry_after_is_honoured_and_bounded(mock: respx.MockRouter) -> None:
    sent: list[float] = []

    def throttled(request: httpx.Request) -> httpx.Response:
        sent.append(time.monotonic())
        if len(sent) == 1:
            return httpx.Response(429, headers={"Retry-After": "30"}, json={"reason": "Too"})
        return httpx.Response(201, json={"created": True})

    route = mock.post(kube.GPUPOOLS.path("ns")).mock(side_effect=throttled)
    async with httpx.AsyncClient(verify=False) as http:
        c = kube.KubeClient(SERVER, client=http, read_attempts=1, max_retry_after=0.2)
        # A write too: a 429 was not processed, so sending it again is safe.
        assert await c.create(kube.GPUPOOLS, {"metadata": {"name": "p"}}, "ns") == {"created": True}
    assert route.call_count == 2
    assert 0.2 <= sent[1] - sent[0] < 5, "waited the bounded Retry-After, not 30 s"


async def test_429_gives_up_after_a_few_sends(mock: respx.MockRouter) -> None:
    route = mock.get(kube.GPUPOOLS.path("ns", "p")).mock(
        return_value=httpx.Response(429, headers={"Retry-After": "0"}, json={"reason": "Too"})
    )
    async with httpx.AsyncClient(verify=False) as http:
        c = kube.KubeClient(SERVER, client=http, read_attempts=1)
        with pytest.raises(errors.KubeUnavailableError):
            await c.get(kube.GPUPOOLS, "p", "ns")
    assert route.call_count == kube.THROTTLE_ATTEMPTS


async def test_token_never_in_logs_or_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _kubeconfig(tmp_path / "config", cluster={"server": SERVER}, user={"token": TOKEN})
    caplog.set_level(logging.DEBUG)
    failures: list[str] = []
    with respx.mock(using="httpx", base_url=SERVER) as router:
        router.get(kube.MUSES.path("team", "a")).mock(return_value=_status(401, "Unauthorized"))
        router.get(kube.MUSES.path("team", "b")).mock(side_effect=httpx.ConnectError("refused"))
        router.post(kube.EVENTS.path("team")).mock(return_value=_status(403, "Forbidden"))
        async with kube.KubeClient.from_config(path) as client:
            for name in ("a", "b"):
                with pytest.raises(errors.KubeError) as info:
                    await client.get(kube.MUSES, name, "team")
                failures += [str(info.value), repr(info.value)]
            involved = {"kind": "Muse", "metadata": {"name": "a", "namespace": "team"}}
            await client.post_event(involved, reason="R", message="m")
            failures += [repr(client.config), repr(await client.login_info())]
    assert "could not post event" in caplog.text
    for text in [caplog.text, *failures]:
        assert TOKEN not in text


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


async def test_exec_plugin_against_emulated_api_that_checks_tokens(
    cluster: Any, tmp_path: Path
) -> None:
    cluster.emulator.bearer_tokens = {"tok-1"}
    user = _exec_user(_plugin(tmp_path, expires_in=None))
    path = _kubeconfig(tmp_path / "config", cluster={"server": cluster.url}, user=user)
    async with kube.KubeClient(cluster.url) as anonymous:
        with pytest.raises(errors.KubeForbiddenError):
            await anonymous.list(kube.GPUPOOLS, "default")
    async with kube.KubeClient.from_config(path) as client:
        await client.create(kube.GPUPOOLS, _pool("sdxl"), "default")
        cluster.emulator.bearer_tokens = {"tok-2"}  # the first token was revoked
        assert [p["metadata"]["name"] for p in await client.list(kube.GPUPOOLS, "team")] == []
        assert await client.get(kube.GPUPOOLS, "sdxl", "default") is not None
    assert (tmp_path / "runs").read_text() == "2"


def test_unusable_certificate_is_a_configuration_error(tmp_path: Path) -> None:
    _, key = _pem_pair()
    path = _kubeconfig(
        tmp_path / "config",
        cluster={"server": SERVER, "certificate-authority-data": _b64(b"not a certificate")},
        user={"client-certificate-data": _b64(b"junk"), "client-key-data": _b64(key)},
    )
    with pytest.raises(errors.ConfigurationError) as info:
        kube.KubeClient.from_config(path)
    assert "PRIVATE KEY" not in str(info.value)
