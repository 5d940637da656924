"""The chart registers the operator's validating admission webhook (issue 15).

The chart owns the ValidatingWebhookConfiguration (the operator never manages one); its
paths are the operator's Kopf handler ids; its certificate comes from cert-manager, from
Helm (a generated CA) or from an existing Secret.
"""

from __future__ import annotations

import base64
from typing import Any

import kubernetes_validate
import pytest
from cryptography import x509

from warmpool.operator.handlers import admission
from warmpool.operator.handlers.registry import registry
from warmpool.operator.settings import OperatorSettings

SERVICE = "wp-warmpool-operator-webhook"
DNS = [
    SERVICE,
    f"{SERVICE}.warmpool",
    f"{SERVICE}.warmpool.svc",
    f"{SERVICE}.warmpool.svc.cluster.local",
]
HOOKS = {
    "generationjobs.warmpool.dev": ("generationjobs", admission.JOB_WEBHOOK),
    "muses.warmpool.dev": ("muses", admission.MUSE_WEBHOOK),
    "gpupools.warmpool.dev": ("gpupools", admission.POOL_WEBHOOK),
}


def operator_container(chart: Any, manifests: list[Any]) -> dict[str, Any]:
    deployment = chart.one(manifests, "Deployment", "-operator")
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def test_configuration_registers_each_kind_with_its_handler(
    chart: Any, default_manifests: list[Any]
) -> None:
    config = chart.one(default_manifests, "ValidatingWebhookConfiguration")
    assert config["metadata"]["name"] == "wp-warmpool"
    hooks = {h["name"]: h for h in config["webhooks"]}
    assert set(hooks) == set(HOOKS)
    handler_ids = {h.id for h in registry._webhooks.get_all_handlers()}
    for name, (plural, handler_id) in HOOKS.items():
        hook = hooks[name]
        assert hook["rules"] == [
            {
                "apiGroups": ["warmpool.dev"],
                "apiVersions": ["v1alpha1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": [plural],
                "scope": "Namespaced",
            }
        ]
        assert hook["failurePolicy"] == "Fail"
        assert hook["timeoutSeconds"] == 5
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        service = hook["clientConfig"]["service"]
        assert service == {
            "namespace": "warmpool",
            "name": SERVICE,
            "port": 443,
            "path": f"/{handler_id}",
        }
        # Kopf runs the handler whose id is the path; a path naming none would allow all.
        assert handler_id in handler_ids
        assert "namespaceSelector" not in hook


def test_service_reaches_the_operator_webhook_port(
    chart: Any, default_manifests: list[Any]
) -> None:
    service = chart.one(default_manifests, "Service", "-webhook")
    assert service["metadata"]["name"] == SERVICE
    assert service["spec"]["ports"] == [
        {"name": "https-webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}
    ]
    deployment = chart.one(default_manifests, "Deployment", "-operator")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container = operator_container(chart, default_manifests)
    assert {"name": "webhook", "containerPort": 9443, "protocol": "TCP"} in container["ports"]


def test_operator_reads_the_mounted_certificate(chart: Any, default_manifests: list[Any]) -> None:
    container = operator_container(chart, default_manifests)
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "webhook-tls")
    assert mount == {"name": "webhook-tls", "mountPath": "/etc/warmpool/webhook", "readOnly": True}
    assert env["WARMPOOL_WEBHOOK_CERT_DIR"] == mount["mountPath"]
    settings = OperatorSettings(
        webhook_port=int(env["WARMPOOL_WEBHOOK_PORT"]),
        webhook_cert_dir=env["WARMPOOL_WEBHOOK_CERT_DIR"],
    )
    assert settings.webhook_port == 9443
    pod = chart.one(default_manifests, "Deployment", "-operator")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "webhook-tls")
    assert volume == {
        "name": "webhook-tls",
        "secret": {"secretName": "wp-warmpool-operator-webhook-tls"},
    }


def test_self_signed_certificate_is_for_the_service_and_signed_by_the_ca_bundle(
    chart: Any, default_manifests: list[Any]
) -> None:
    secret = chart.one(default_manifests, "Secret", "-webhook-tls")
    assert secret["type"] == "kubernetes.io/tls"
    ca_pem = base64.b64decode(secret["data"]["ca.crt"])
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    ca = x509.load_pem_x509_certificate(ca_pem)
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted(DNS)
    config = chart.one(default_manifests, "ValidatingWebhookConfiguration")
    for hook in config["webhooks"]:
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == ca_pem


def test_disabled_renders_no_webhook(chart: Any) -> None:
    manifests = chart.render({"admissionWebhook": {"enabled": False}})
    assert not chart.by_kind(manifests, "ValidatingWebhookConfiguration")
    assert not [m for m in manifests if m["metadata"]["name"].startswith(SERVICE)]
    container = operator_container(chart, manifests)
    assert not [e for e in container["env"] if e["name"].startswith("WARMPOOL_WEBHOOK")]
    assert [p["name"] for p in container["ports"]] == ["http-metrics"]


def test_cert_manager_issues_and_injects(chart: Any) -> None:
    manifests = chart.render({"admissionWebhook": {"certificate": {"source": "certManager"}}})
    config = chart.one(manifests, "ValidatingWebhookConfiguration")
    assert config["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": f"warmpool/{SERVICE}"
    }
    assert all("caBundle" not in h["clientConfig"] for h in config["webhooks"])
    certificate = chart.one(manifests, "Certificate")
    assert certificate["apiVersion"] == "cert-manager.io/v1"
    assert certificate["metadata"]["name"] == SERVICE
    assert certificate["spec"]["secretName"] == f"{SERVICE}-tls"
    assert certificate["spec"]["dnsNames"] == DNS
    assert certificate["spec"]["issuerRef"] == {"kind": "Issuer", "name": SERVICE}
    assert chart.one(manifests, "Issuer")["spec"] == {"selfSigned": {}}
    assert not chart.by_kind(manifests, "Secret")  # cert-manager writes it
    for manifest in manifests:
        if manifest["apiVersion"] in ("v1", "admissionregistration.k8s.io/v1", "apps/v1"):
            kubernetes_validate.validate(manifest, "1.33", strict=True)


def test_cert_manager_with_the_clusters_issuer(chart: Any) -> None:
    issuer = {"kind": "ClusterIssuer", "name": "internal-ca"}
    values = {
        "admissionWebhook": {
            "certificate": {"source": "certManager", "certManager": {"issuerRef": issuer}}
        }
    }
    manifests = chart.render(values)
    assert chart.one(manifests, "Certificate")["spec"]["issuerRef"] == issuer
    assert not chart.by_kind(manifests, "Issuer")


def test_existing_secret_needs_its_ca(chart: Any) -> None:
    certificate = {"source": "existingSecret", "existingSecret": "my-webhook-tls"}
    result = chart.helm(
        "template", "wp", str(chart.path), values={"admissionWebhook": {"certificate": certificate}}
    )
    assert result.returncode != 0
    assert "admissionWebhook.certificate.caBundle" in result.stderr
    bundle = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n...").decode()
    manifests = chart.render(
        {"admissionWebhook": {"certificate": {**certificate, "caBundle": bundle}}}
    )
    assert not chart.by_kind(manifests, "Secret")
    config = chart.one(manifests, "ValidatingWebhookConfiguration")
    assert {h["clientConfig"]["caBundle"] for h in config["webhooks"]} == {bundle}
    pod = chart.one(manifests, "Deployment", "-operator")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "webhook-tls")
    assert volume["secret"]["secretName"] == "my-webhook-tls"


@pytest.mark.parametrize(
    ("operator", "served"),
    [
        ({"watchNamespace": "gpu"}, ["gpu"]),
        ({"watchNamespace": "gpu", "watchNamespaces": ["art", "gpu"]}, ["gpu", "art"]),
    ],
    ids=["one", "several"],
)
def test_served_namespaces_limit_the_webhook(
    chart: Any, operator: dict[str, Any], served: list[str]
) -> None:
    manifests = chart.render({"operator": operator})
    config = chart.one(manifests, "ValidatingWebhookConfiguration")
    for hook in config["webhooks"]:
        assert hook["namespaceSelector"] == {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": served}
            ]
        }


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"failurePolicy": "Ignore", "timeoutSeconds": 2}, ("Ignore", 2)),
        ({"failurePolicy": "Fail", "timeoutSeconds": 30}, ("Fail", 30)),
    ],
    ids=["ignore", "fail"],
)
def test_failure_policy_and_timeout_are_values(
    chart: Any, values: dict[str, Any], expected: tuple[str, int]
) -> None:
    config = chart.one(chart.render({"admissionWebhook": values}), "ValidatingWebhookConfiguration")
    assert {(h["failurePolicy"], h["timeoutSeconds"]) for h in config["webhooks"]} == {expected}


@pytest.mark.parametrize(
    "values",
    [
        {"failurePolicy": "Maybe"},
        {"timeoutSeconds": 31},
        {"certificate": {"source": "vault"}},
        {"unknown": True},
    ],
    ids=["policy", "timeout", "source", "unknown-key"],
)
def test_wrong_webhook_values_are_refused(chart: Any, values: dict[str, Any]) -> None:
    result = chart.helm("template", "wp", str(chart.path), values={"admissionWebhook": values})
    assert result.returncode != 0
    assert "admissionWebhook" in result.stderr


def test_every_peered_replica_serves_the_webhook_and_one_at_a_time_may_go(chart: Any) -> None:
    """Under peering Kopf serves admissions on standby replicas too (its admission server is
    not paused with the processing), and the checks are pure: so the webhook Service selects
    every operator pod, whichever is active, and a drain may take only one at a time, so a
    failover never leaves the API server without an endpoint (failurePolicy Fail would then
    refuse every create)."""
    manifests = chart.render({"operator": {"replicas": 3}})
    deployment = chart.one(manifests, "Deployment", "-operator")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = chart.one(manifests, "Service", "-webhook")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert not any(k for k in service["spec"]["selector"] if "leader" in k or "active" in k)
    pdb = chart.one(manifests, "PodDisruptionBudget", "-operator")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    kubernetes_validate.validate(pdb, "1.30", strict=True)
    # one replica: no budget (it would block every drain)
    kinds = {m["kind"] for m in chart.render({"operator": {"replicas": 1}})}
    assert "PodDisruptionBudget" not in kinds
