"""The Helm chart: lint, render, validate every manifest, hardening, CRD copies, versions."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from warmpool.operator.settings import OperatorSettings

KUBERNETES_VERSION = "1.33"

# Kinds kubernetes-validate has no schema for: each is validated against its own schema below.
PROMETHEUS_OPERATOR = "monitoring.coreos.com/v1"
KOPF = "kopf.dev/v1"
WARMPOOL = "warmpool.dev/v1alpha1"

# The parts of the Prometheus Operator CRDs (v1 ServiceMonitor and PrometheusRule) the chart
# uses, written after their API reference: the full CRDs are not available offline here.
PROM_DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": LABELS},
}
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": LABELS},
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "honorLabels": {"type": "boolean"},
                            "interval": {"type": "string", "pattern": PROM_DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": PROM_DURATION},
                        },
                    },
                },
            },
        },
    },
}
PROMETHEUS_RULE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["expr"],
                                    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                    "properties": {
                                        "alert": {"type": "string", "pattern": "^[A-Za-z]+$"},
                                        "record": {
                                            "type": "string",
                                            "pattern": "^[a-zA-Z_:][a-zA-Z0-9_:]*$",
                                        },
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": {"type": "string", "pattern": PROM_DURATION},
                                        "labels": LABELS,
                                        "annotations": LABELS,
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
PEERING = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata"],
    "properties": {"metadata": {"type": "object", "required": ["name"]}},
    "not": {"required": ["spec"]},
}


@pytest.fixture(scope="module")
def crd_schemas(chart: Any) -> dict[str, dict[str, Any]]:
    """openAPIV3Schema of each chart CRD by kind."""
    schemas = {}
    for path in sorted((chart.path / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            version = crd["spec"]["versions"][0]
            schemas[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return schemas


def validate_manifest(manifest: dict[str, Any], crd_schemas: dict[str, dict[str, Any]]) -> None:
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    if api_version == PROMETHEUS_OPERATOR:
        schema = {"ServiceMonitor": SERVICE_MONITOR, "PrometheusRule": PROMETHEUS_RULE}[kind]
        jsonschema.validate(manifest, schema)
    elif api_version in (KOPF, WARMPOOL):
        # Our own CRDs (and Kopf's peering CRDs) ship with the chart: validate against them
        # (an openAPIV3Schema is OpenAPI 3.0, i.e. JSON Schema draft 4 with extensions).
        jsonschema.Draft4Validator(crd_schemas[kind]).validate(manifest)
        if api_version == KOPF:
            jsonschema.validate(manifest, PEERING)
    else:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("variant", ["defaults", "all-on"])
def test_helm_lint_strict(chart: Any, variant: str) -> None:
    values = chart.all_on if variant == "all-on" else {}
    result = chart.helm("lint", "--strict", str(chart.path), values=values)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", ["defaults", "all-on"])
def test_every_manifest_validates(
    chart: Any, variant: str, crd_schemas: dict[str, dict[str, Any]]
) -> None:
    manifests = chart.render(chart.all_on if variant == "all-on" else {})
    assert manifests
    for manifest in manifests:
        validate_manifest(manifest, crd_schemas)


def test_all_on_renders_every_optional_part(chart: Any, all_on_manifests: list[Any]) -> None:
    kinds = {(m["kind"], m["metadata"]["name"]) for m in all_on_manifests}
    expected = {
        ("Ingress", "wp-warmpool-studio"),
        ("ServiceMonitor", "wp-warmpool-operator"),
        ("ServiceMonitor", "wp-warmpool-studio"),
        ("PrometheusRule", "wp-warmpool"),
        ("ConfigMap", "wp-warmpool-dashboard-fleet"),
        ("ConfigMap", "wp-warmpool-dashboard-jobs"),
        ("ConfigMap", "wp-warmpool-dashboard-vastai"),
        ("ClusterKopfPeering", "warmpool"),
        ("GpuPool", "sdxl"),
    }
    assert expected <= kinds


def test_defaults_render_no_optional_part(default_manifests: list[Any]) -> None:
    kinds = {m["kind"] for m in default_manifests}
    assert not kinds & {"Ingress", "ServiceMonitor", "PrometheusRule", "ConfigMap", "GpuPool"}
    assert not kinds & {"ClusterKopfPeering", "KopfPeering"}


def test_a_caught_validation_error_fails(crd_schemas: dict[str, dict[str, Any]]) -> None:
    """The validator refuses a broken Deployment: the check above can fail."""
    broken = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "two", "selector": {}, "template": {}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_manifest(broken, crd_schemas)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"vastai": {"apiKey": "secret"}}, "apiKey", id="api-key-as-value"),
        pytest.param({"operator": {"replicas": "two"}}, "replicas", id="replicas-string"),
        pytest.param({"studio": {"auth": {"mode": "basic"}}}, "mode", id="unknown-auth"),
        pytest.param(
            {"studio": {"auth": {"mode": "proxy"}}}, "trustedProxies", id="proxy-without-cidrs"
        ),
        pytest.param({"artifacts": {"url": "/data"}}, "url", id="artifacts-not-a-url"),
        pytest.param(
            {"metrics": {"serviceMonitor": {"interval": "often"}}}, "interval", id="bad-interval"
        ),
        pytest.param({"imageTag": "latest"}, "imageTag", id="unknown-key"),
        pytest.param({"operator": {"queueAhead": 9}}, "queueAhead", id="queue-ahead-past-8"),
        pytest.param({"operator": {"queueAhead": 1.5}}, "queueAhead", id="queue-ahead-fraction"),
        pytest.param(
            {"operator": {"queueAheadMaxSeconds": -1}},
            "queueAheadMaxSeconds",
            id="queue-ahead-negative-seconds",
        ),
    ],
)
def test_wrong_values_fail_at_install(chart: Any, values: dict[str, Any], message: str) -> None:
    result = chart.helm("template", "wp", str(chart.path), values=values)
    assert result.returncode != 0
    assert message in result.stderr


def test_values_schema_is_a_valid_json_schema(chart: Any) -> None:
    schema = json.loads((chart.path / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load((chart.path / "values.yaml").read_text()), schema)


def test_vastai_key_comes_from_a_secret(chart: Any, all_on_manifests: list[Any]) -> None:
    values_text = (chart.path / "values.yaml").read_text()
    assert "apiKey" not in values_text
    container = chart.one(all_on_manifests, "Deployment", "-operator")["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["WARMPOOL_VASTAI_API_KEY"] == {
        "name": "WARMPOOL_VASTAI_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "warmpool-vastai", "key": "api-key"}},
    }
    for e in container["env"]:
        assert "value" not in e or "KEY" not in e["name"] or e["name"] == "AWS_ACCESS_KEY_ID"


@pytest.mark.parametrize("variant", ["defaults", "all-on"])
def test_pods_are_hardened(chart: Any, variant: str) -> None:
    manifests = chart.render(chart.all_on if variant == "all-on" else {})
    deployments = chart.by_kind(manifests, "Deployment")
    assert len(deployments) == 2
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        mounts_by_container = {}
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True
            assert sc["runAsUser"] == 10001
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
            assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] in ("/healthz", "/readyz")
            mounts_by_container[container["name"]] = {
                m["mountPath"] for m in container["volumeMounts"]
            }
            assert "/tmp" in mounts_by_container[container["name"]]
        assert {v["name"] for v in pod["volumes"]} >= {"tmp"}


def test_file_artifacts_get_a_writable_directory(chart: Any, default_manifests: list[Any]) -> None:
    for name in ("-operator", "-studio"):
        pod = chart.one(default_manifests, "Deployment", name)["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["WARMPOOL_ARTIFACTS_URL"] == "file:///var/lib/warmpool/artifacts"
        assert "/var/lib/warmpool/artifacts" in {m["mountPath"] for m in container["volumeMounts"]}


def test_s3_artifacts_take_credentials_from_a_secret(
    chart: Any, all_on_manifests: list[Any]
) -> None:
    for name in ("-operator", "-studio"):
        container = chart.one(all_on_manifests, "Deployment", name)["spec"]["template"]["spec"][
            "containers"
        ][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["WARMPOOL_ARTIFACTS_URL"]["value"] == "s3://warmpool-outputs/prod"
        assert env["AWS_ENDPOINT_URL"]["value"] == "https://minio.example.com"
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "warmpool-s3"
        assert "/var/lib/warmpool/artifacts" not in {
            m["mountPath"] for m in container["volumeMounts"]
        }


def test_commands_and_ports(chart: Any, default_manifests: list[Any]) -> None:
    operator = chart.one(default_manifests, "Deployment", "-operator")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert operator["command"] == ["warmpool-operator"]
    assert operator["ports"][0]["containerPort"] == 8080
    assert {"name": "WARMPOOL_HEALTH_PORT", "value": "8080"} in operator["env"]
    studio = chart.one(default_manifests, "Deployment", "-studio")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert [*studio["command"], *studio["args"]] == [
        "warmpool-studio",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]
    assert studio["ports"][0]["containerPort"] == 8000


@pytest.mark.parametrize(
    ("operator", "ahead", "seconds"),
    [
        pytest.param({}, "1", "60", id="defaults"),
        pytest.param({"queueAhead": 0, "queueAheadMaxSeconds": 12.5}, "0", "12.5", id="set"),
    ],
)
def test_queue_ahead_reaches_the_operator(
    chart: Any, operator: dict[str, Any], ahead: str, seconds: str
) -> None:
    deployment = chart.one(chart.render({"operator": operator}), "Deployment", "-operator")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    given = (env["WARMPOOL_QUEUE_AHEAD"], env["WARMPOOL_QUEUE_AHEAD_MAX_SECONDS"])
    assert given == (ahead, seconds)
    read = OperatorSettings.model_validate(  # what the operator reads from these values
        {"queue_ahead": env["WARMPOOL_QUEUE_AHEAD"],
         "queue_ahead_max_seconds": env["WARMPOOL_QUEUE_AHEAD_MAX_SECONDS"]})  # fmt: skip
    assert (read.queue_ahead, read.queue_ahead_max_seconds) == (int(ahead), float(seconds))
    if not operator:  # the chart's defaults are the operator's own
        defaults = OperatorSettings()
        assert (read.queue_ahead, read.queue_ahead_max_seconds) == (
            defaults.queue_ahead, defaults.queue_ahead_max_seconds)  # fmt: skip


@pytest.mark.parametrize(
    ("values", "kind", "namespace"),
    [
        pytest.param({"operator": {"replicas": 2}}, "ClusterKopfPeering", None, id="two-replicas"),
        pytest.param(
            {
                "operator": {
                    "peering": {"enabled": True, "name": "warmpool"},
                    "watchNamespace": "gpu",
                }
            },
            "KopfPeering",
            "gpu",
            id="namespaced",
        ),
    ],
)
def test_peering(chart: Any, values: dict[str, Any], kind: str, namespace: str | None) -> None:
    manifests = chart.render(values)
    peering = chart.one(manifests, kind)
    assert peering["metadata"].get("namespace") == namespace
    deployment = chart.one(manifests, "Deployment", "-operator")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["WARMPOOL_PEERING"] == peering["metadata"]["name"]
    assert "strategy" not in deployment["spec"]


def test_standalone_operator_never_overlaps(chart: Any, default_manifests: list[Any]) -> None:
    deployment = chart.one(default_manifests, "Deployment", "-operator")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    env = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "WARMPOOL_PEERING" not in env


def test_chart_crds_are_the_repository_crds(chart: Any) -> None:
    """The chart's CRDs are byte-identical copies of crds/*.yaml (`make crds` copies them)."""
    source = {p.name: p.read_bytes() for p in (chart.repo / "crds").glob("*.warmpool.dev.yaml")}
    copies = {p.name: p.read_bytes() for p in (chart.path / "crds").glob("*.warmpool.dev.yaml")}
    assert len(source) == 4
    assert copies.keys() == source.keys()
    for name, text in source.items():
        assert copies[name] == text, f"charts/warmpool/crds/{name} differs: run `make crds`"
    others = {p.name for p in (chart.path / "crds").iterdir()} - copies.keys()
    assert others == {"kopfpeerings.kopf.dev.yaml"}


def test_versions_follow_the_package(chart: Any, default_manifests: list[Any]) -> None:
    version = tomllib.loads((chart.repo / "pyproject.toml").read_text())["project"]["version"]
    meta = yaml.safe_load((chart.path / "Chart.yaml").read_text())
    assert meta["version"] == version
    assert meta["appVersion"] == version
    images = {
        c["image"]
        for d in chart.by_kind(default_manifests, "Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"ghcr.io/warmpool/warmpool:{version}"}


def test_dashboards_are_configmaps_for_the_grafana_sidecar(
    chart: Any, all_on_manifests: list[Any]
) -> None:
    maps = chart.by_kind(all_on_manifests, "ConfigMap")
    files = sorted(p.name for p in (chart.path / "dashboards").glob("*.json"))
    assert sorted(name for m in maps for name in m["data"]) == files
    for m in maps:
        assert m["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((name, text),) = m["data"].items()
        assert json.loads(text) == json.loads((chart.path / "dashboards" / name).read_text())


def test_sample_pool_is_valid_for_its_crd(
    chart: Any, all_on_manifests: list[Any], crd_schemas: dict[str, dict[str, Any]]
) -> None:
    pool = chart.one(all_on_manifests, "GpuPool")
    validator = jsonschema.Draft4Validator(crd_schemas["GpuPool"])
    validator.validate(pool)
    broken = {**pool, "spec": {**pool["spec"], "replicas": -1}}
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


def test_studio_auth_modes(chart: Any) -> None:
    def studio_env(values: dict[str, Any]) -> dict[str, str]:
        deployment = chart.one(chart.render(values), "Deployment", "-studio")
        return {
            e["name"]: e.get("value")
            for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        }

    token = studio_env({})
    assert token["WARMPOOL_STUDIO_AUTH"] == "token"
    assert token["WARMPOOL_STUDIO_TOKEN_SECRET"] == "warmpool-studio-tokens"
    assert token["WARMPOOL_STUDIO_NAMESPACE"] == "warmpool"
    proxy = studio_env(
        {"studio": {"auth": {"mode": "proxy", "proxy": {"trustedProxies": ["10.0.0.0/8"]}}}}
    )
    assert json.loads(proxy["WARMPOOL_STUDIO_PROXY_CIDRS"]) == ["10.0.0.0/8"]
    assert "WARMPOOL_STUDIO_TOKEN_SECRET" not in proxy
    assert proxy["WARMPOOL_STUDIO_PROXY_HEADERS"] == "X-Forwarded"
