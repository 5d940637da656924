"""The chart's records database: SQLite on a volume for one studio replica, PostgreSQL
with its URL from a Secret for more; more than one replica on SQLite is refused."""

from __future__ import annotations

from typing import Any

import pytest

PG = {
    "database": "postgresql",
    "postgresql": {"urlSecret": {"name": "warmpool-records", "key": "url"}},
}


def studio_container(chart: Any, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    manifests = chart.render(values)
    pod = chart.one(manifests, "Deployment", "-studio")["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def test_sqlite_by_default_on_its_own_volume(chart: Any) -> None:
    pod, container = studio_container(chart, {})
    env = {e["name"]: e for e in container["env"]}
    assert env["WARMPOOL_STUDIO_RECORDS_URL"]["value"].startswith("sqlite+aiosqlite:////var/lib/")
    assert env["WARMPOOL_STUDIO_RECORDS_RETENTION_DAYS"]["value"] == "90"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["records"] == "/var/lib/warmpool/records"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["records"]
    claimed, _ = studio_container(
        chart, {"studio": {"records": {"sqlite": {"existingClaim": "rec"}}}}
    )
    volumes = {v["name"]: v for v in claimed["volumes"]}
    assert volumes["records"]["persistentVolumeClaim"] == {"claimName": "rec"}


def test_postgresql_url_comes_from_a_secret(chart: Any) -> None:
    pod, container = studio_container(chart, {"studio": {"replicas": 3, "records": PG}})
    env = {e["name"]: e for e in container["env"]}
    assert env["WARMPOOL_STUDIO_RECORDS_URL"] == {
        "name": "WARMPOOL_STUDIO_RECORDS_URL",
        "valueFrom": {"secretKeyRef": {"name": "warmpool-records", "key": "url"}},
    }
    assert "records" not in {v["name"] for v in pod["volumes"]}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"studio": {"replicas": 2}}, "replicas", id="two-replicas-on-sqlite"),
        pytest.param(
            {"studio": {"records": {"database": "postgresql"}}},
            "postgresql",
            id="pg-without-secret",
        ),
        pytest.param({"studio": {"records": {"database": "mysql"}}}, "database", id="unknown-db"),
    ],
)
def test_wrong_records_values_fail(chart: Any, values: dict[str, Any], message: str) -> None:
    result = chart.helm("template", "wp", str(chart.path), values=values)
    assert result.returncode != 0 and message in result.stderr


def test_the_template_refuses_sqlite_replicas_even_without_the_schema(chart: Any) -> None:
    result = chart.helm(
        "template",
        "wp",
        str(chart.path),
        "--skip-schema-validation",
        values={"studio": {"replicas": 2}},
    )
    assert result.returncode != 0 and "SQLite file serves one replica" in result.stderr
