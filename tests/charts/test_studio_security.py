"""Issue 15, the chart's part: no open studio behind an Ingress, the oauth2-proxy sidecar,
the NetworkPolicy, and the studio's security settings (T2: ``helm template``)."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

KUBERNETES_VERSION = "1.31"
INGRESS = {
    "enabled": True,
    "hosts": [{"host": "studio.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
}
TLS = [{"secretName": "studio-tls", "hosts": ["studio.example.com"]}]
SIDECAR = {
    "enabled": True,
    "existingSecret": "studio-oauth2-proxy",
    "oidcIssuerUrl": "https://login.example.org",
}
INGRESS_FROM = [
    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
]


def studio_pod(chart: Any, values: dict[str, Any]) -> dict[str, Any]:
    deployment = chart.one(chart.render(values), "Deployment", "-studio")
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_auth_none_with_an_ingress_is_refused(chart: Any) -> None:
    values = {"studio": {"auth": {"mode": "none"}, "ingress": INGRESS}}
    result = chart.helm("template", "wp", str(chart.path), values=values)
    assert result.returncode != 0
    assert "mode" in result.stderr
    # without an Ingress (port-forward on a dev cluster) it is allowed
    dev = chart.helm(
        "template", "wp", str(chart.path), values={"studio": {"auth": {"mode": "none"}}}
    )
    assert dev.returncode == 0, dev.stderr


def test_the_sidecar_needs_proxy_mode(chart: Any) -> None:
    values = {"studio": {"auth": {"mode": "token"}, "oauth2Proxy": SIDECAR}}
    assert chart.helm("template", "wp", str(chart.path), values=values).returncode != 0


def test_the_oauth2_proxy_sidecar(chart: Any) -> None:
    values = {
        "studio": {
            "auth": {
                "mode": "proxy",
                "proxy": {
                    "jwt": {
                        "jwksUrl": "https://login.example.org/keys",
                        "issuer": "https://login.example.org",
                        "audience": "warmpool-studio",
                    }
                },
            },
            "oauth2Proxy": SIDECAR,
            "ingress": {**INGRESS, "tls": TLS},
        }
    }
    manifests = chart.render(values)
    pod = chart.one(manifests, "Deployment", "-studio")["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"studio", "oauth2-proxy"}
    proxy = containers["oauth2-proxy"]
    args = proxy["args"]
    assert "--upstream=http://127.0.0.1:8000" in args
    assert "--reverse-proxy=true" in args
    assert "--pass-user-headers=true" in args
    assert "--pass-authorization-header=true" in args
    assert "--oidc-issuer-url=https://login.example.org" in args
    assert "--cookie-secure=true" in args
    assert proxy["securityContext"]["readOnlyRootFilesystem"] is True
    secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in proxy["env"] if "valueFrom" in e}
    assert secrets == {"studio-oauth2-proxy"}
    studio = env_of(containers["studio"])
    assert studio["WARMPOOL_STUDIO_AUTH"] == "proxy"
    assert studio["WARMPOOL_STUDIO_PROXY_HEADERS"] == "X-Forwarded"
    assert json.loads(studio["WARMPOOL_STUDIO_PROXY_CIDRS"]) == ["127.0.0.1/32", "::1/128"]
    assert studio["WARMPOOL_STUDIO_PROXY_JWKS_URL"] == "https://login.example.org/keys"
    assert studio["WARMPOOL_STUDIO_PROXY_JWT_AUDIENCE"] == "warmpool-studio"
    service = chart.one(manifests, "Service", "-studio")
    ports = {p["name"]: p["targetPort"] for p in service["spec"]["ports"]}
    assert ports == {"http": "http", "oauth2-proxy": "oauth2-proxy"}  # http: for Prometheus
    ingress = chart.one(manifests, "Ingress", "-studio")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["port"] == {"name": "oauth2-proxy"}
    for manifest in manifests:
        if manifest["apiVersion"] in ("apps/v1", "v1"):
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_network_policy(chart: Any) -> None:
    assert not chart.by_kind(chart.render({}), "NetworkPolicy")
    metrics_from = [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    values = {
        "studio": {
            "networkPolicy": {
                "enabled": True,
                "ingressFrom": INGRESS_FROM,
                "metricsFrom": metrics_from,
            }
        }
    }
    policy = chart.one(chart.render(values), "NetworkPolicy", "-studio")
    kubernetes_validate.validate(policy, KUBERNETES_VERSION, strict=True)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "studio"
    rules = policy["spec"]["ingress"]
    assert rules[0] == {"from": INGRESS_FROM, "ports": [{"port": "http", "protocol": "TCP"}]}
    assert rules[1] == {"from": metrics_from, "ports": [{"port": "http", "protocol": "TCP"}]}
    # with the sidecar, only the proxy's port is open to the ingress
    with_proxy = {
        "studio": {
            "auth": {"mode": "proxy"},
            "oauth2Proxy": SIDECAR,
            "networkPolicy": {"enabled": True, "ingressFrom": INGRESS_FROM},
        }
    }
    policy = chart.one(chart.render(with_proxy), "NetworkPolicy", "-studio")
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "oauth2-proxy", "protocol": "TCP"}]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"studio": {"ingress": {**INGRESS, "tls": TLS}}}, "true"),
        ({"studio": {"auth": {"secureCookies": True}}}, "true"),
        ({"studio": {"ingress": INGRESS}}, None),
    ],
    ids=["ingress-tls", "explicit", "plain-ingress"],
)
def test_secure_cookies(chart: Any, values: dict[str, Any], expected: str | None) -> None:
    (studio,) = [c for c in studio_pod(chart, values)["containers"] if c["name"] == "studio"]
    assert env_of(studio).get("WARMPOOL_STUDIO_SECURE_COOKIES") == expected


def test_proxy_header_family_is_one_value(chart: Any) -> None:
    values = {
        "studio": {
            "auth": {
                "mode": "proxy",
                "proxy": {"headers": "X-Auth-Request", "trustedProxies": ["10.0.0.0/8"]},
            }
        }
    }
    (studio,) = studio_pod(chart, values)["containers"]
    assert env_of(studio)["WARMPOOL_STUDIO_PROXY_HEADERS"] == "X-Auth-Request"
    bad = {"studio": {"auth": {"mode": "proxy", "proxy": {"headers": "X-Anything"}}}}
    assert chart.helm("template", "wp", str(chart.path), values=bad).returncode != 0


def test_a_network_policy_without_peers_refuses_everyone(chart: Any) -> None:
    policy = chart.one(
        chart.render({"studio": {"networkPolicy": {"enabled": True}}}), "NetworkPolicy"
    )
    kubernetes_validate.validate(policy, KUBERNETES_VERSION, strict=True)
    assert policy["spec"]["ingress"] == []


def test_the_secured_variant_lints(chart: Any) -> None:
    values = {
        "studio": {
            "auth": {"mode": "proxy"},
            "oauth2Proxy": SIDECAR,
            "networkPolicy": {"enabled": True, "ingressFrom": INGRESS_FROM},
            "ingress": {**INGRESS, "tls": TLS},
        }
    }
    result = chart.helm("lint", "--strict", str(chart.path), values=values)
    assert result.returncode == 0, result.stdout + result.stderr
