"""Dashboards and alert rules name only metrics the code exports, in PromQL that parses.

PromQL is parsed by ``promql-parser`` (a real PromQL parser, Prometheus 2.45 grammar); the
metric names are taken from its syntax tree, not from regular expressions. The exported names
come from ``prometheus_client.REGISTRY`` after importing the operator's and the studio's
metrics modules, expanded the way the exposition format names samples (counters ``_total``,
histograms ``_bucket``/``_sum``/``_count``).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from typing import Any

import promql_parser
import pytest
from prometheus_client import REGISTRY

METRICS_MODULES = ("warmpool.operator.metrics", "warmpool.api.metrics")
# Series Prometheus makes itself (scrape health), allowed in alert rules only.
PROMETHEUS_SERIES = {"up"}
# Grafana's variables, replaced by a value of the right shape before parsing.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "6h",
    "$pool": ".*",
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


@pytest.fixture(scope="module")
def exported() -> set[str]:
    for module in METRICS_MODULES:
        importlib.import_module(module)
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("warmpool_"):
            names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def grafana_to_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def metric_names(expr: str) -> set[str]:
    """Parse ``expr`` (raises ValueError when it is not PromQL) and return the series it reads."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"selector without a metric name in {expr!r}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def dashboard_exprs(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], grafana_to_promql(target["expr"])


@pytest.fixture(scope="module")
def dashboards(chart: Any) -> dict[str, dict[str, Any]]:
    return {
        p.name: json.loads(p.read_text())
        for p in sorted((chart.path / "dashboards").glob("*.json"))
    }


@pytest.fixture(scope="module")
def rules(chart: Any, all_on_manifests: list[Any]) -> list[dict[str, Any]]:
    rule = chart.one(all_on_manifests, "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_the_three_dashboards_exist(dashboards: dict[str, dict[str, Any]]) -> None:
    assert set(dashboards) == {"fleet.json", "jobs.json", "vastai.json"}
    assert len({board["uid"] for board in dashboards.values()}) == 3


def test_dashboards_use_only_exported_metrics(
    dashboards: dict[str, dict[str, Any]], exported: set[str]
) -> None:
    used: set[str] = set()
    for name, board in dashboards.items():
        for title, expr in dashboard_exprs(board):
            names = metric_names(expr)
            assert names, (name, title)
            assert names <= exported, f"{name} / {title}: {sorted(names - exported)}"
            used |= names
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                (metric,) = re.findall(r"label_values\((\w+),", variable["definition"])
                assert metric in exported
    # The dashboards cover the families the issue names.
    for family in (
        "warmpool_instances",
        "warmpool_pool_ready_replicas",
        "warmpool_price_per_hour_dollars",
        "warmpool_spend_today_dollars",
        "warmpool_rentals_total",
        "warmpool_terminations_total",
        "warmpool_jobs",
        "warmpool_job_queue_wait_seconds_bucket",
        "warmpool_job_run_seconds_bucket",
        "warmpool_job_failures_total",
        "warmpool_vastai_requests_total",
        "warmpool_vastai_request_seconds_bucket",
    ):
        assert family in used


def test_rules_use_only_exported_metrics(rules: list[dict[str, Any]], exported: set[str]) -> None:
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= exported | PROMETHEUS_SERIES, f"{rule['alert']}: {sorted(names - exported)}"


def test_the_alerts_the_issue_asks_for(rules: list[dict[str, Any]]) -> None:
    assert {r["alert"] for r in rules} >= {
        "WarmpoolInstanceNotReady",
        "WarmpoolDailySpendNearBudget",
        "WarmpoolHourlySpendNearBudget",
        "WarmpoolBudgetExceeded",
        "WarmpoolJobsQueuedWithoutReadyInstance",
        "WarmpoolPoolDegraded",
        "WarmpoolVastaiErrors",
        "WarmpoolOperatorDown",
    }
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


def test_operator_down_watches_the_scrape_job_of_the_service_monitor(
    chart: Any, rules: list[dict[str, Any]], all_on_manifests: list[Any]
) -> None:
    """The ``job`` label of a ServiceMonitor target is the Service name."""
    (down,) = [r for r in rules if r["alert"] == "WarmpoolOperatorDown"]
    service = chart.one(all_on_manifests, "Service", "-operator")["metadata"]["name"]
    assert f'job="{service}"' in down["expr"]
    assert down["expr"].startswith("absent(")


@pytest.mark.parametrize(
    "expr",
    [
        pytest.param("sum(rate(warmpool_jobs[5m])", id="unclosed"),
        pytest.param("warmpool_jobs{phase=Queued}", id="unquoted-label"),
    ],
)
def test_broken_promql_is_refused(expr: str) -> None:
    with pytest.raises(ValueError):
        metric_names(expr)


def test_an_unknown_metric_is_caught(exported: set[str]) -> None:
    assert "warmpool_jobs" in exported
    assert "warmpool_vastai_requests_total" in exported
    assert "warmpool_rent_to_ready_seconds_bucket" in exported
    assert metric_names("sum(warmpool_job_queue_length)") - exported == {
        "warmpool_job_queue_length"
    }
