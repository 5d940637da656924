"""Dashboards and alert rules name only series that exist, in PromQL that parses.

PromQL is parsed by ``promql-parser`` (a real PromQL parser, Prometheus 2.45 grammar); the
metric names and label matchers are taken from its syntax tree, not from regular expressions.
The exported names come from ``prometheus_client.REGISTRY`` after importing the operator's and
the studio's metrics modules, expanded the way the exposition format names samples (counters
``_total``, histograms ``_bucket``/``_sum``/``_count``); the other series that exist are the
chart's recording rules (``record:``) and Prometheus's own ``up``. Whether each panel returns
data from the running processes is ``tests/e2e/test_prometheus.py``'s part.
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
from prometheus_client.metrics import MetricWrapperBase

METRICS_MODULES = ("warmpool.operator.metrics", "warmpool.api.metrics")
# Series Prometheus makes itself (scrape health), allowed in alert rules only.
PROMETHEUS_SERIES = {"up"}
# Grafana's variables, replaced by a value of the right shape before parsing.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "6h",
    "$pool": ".*",
    "$namespace": ".*",
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


@pytest.fixture(scope="module")
def label_names() -> dict[str, set[str]]:
    """Sample name → the label names its samples carry (``le`` on buckets)."""
    found: dict[str, set[str]] = {}
    for module in METRICS_MODULES:
        for metric in vars(importlib.import_module(module)).values():
            if isinstance(metric, MetricWrapperBase):
                labels = set(metric._labelnames)
                family = metric._name
                kind = metric._type
                for suffix in SUFFIXES["counter" if kind == "counter" else kind]:
                    base = family if kind != "counter" else family.removesuffix("_total")
                    found[base + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return found


def grafana_to_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def selectors(expr: str) -> dict[str, set[str]]:
    """Parse ``expr`` (raises ValueError when it is not PromQL): series name → label names
    its selectors match on."""
    found: dict[str, set[str]] = {}

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"selector without a metric name in {expr!r}"
            matched = {m.name for m in node.matchers.matchers} - {"__name__"}
            found.setdefault(node.name, set()).update(matched)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def metric_names(expr: str) -> set[str]:
    """Parse ``expr`` (raises ValueError when it is not PromQL) and return the series it reads."""
    return set(selectors(expr))


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
def all_rules(chart: Any, all_on_manifests: list[Any]) -> list[dict[str, Any]]:
    rule = chart.one(all_on_manifests, "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


@pytest.fixture(scope="module")
def rules(all_rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alerting rules."""
    return [r for r in all_rules if "alert" in r]


@pytest.fixture(scope="module")
def recorded(all_rules: list[dict[str, Any]]) -> set[str]:
    """The series the chart's recording rules write."""
    return {r["record"] for r in all_rules if "record" in r}


def test_the_three_dashboards_exist(dashboards: dict[str, dict[str, Any]]) -> None:
    assert set(dashboards) == {"fleet.json", "jobs.json", "vastai.json"}
    assert len({board["uid"] for board in dashboards.values()}) == 3


def test_dashboards_use_only_exported_metrics(
    dashboards: dict[str, dict[str, Any]], exported: set[str], recorded: set[str]
) -> None:
    used: set[str] = set()
    for name, board in dashboards.items():
        for title, expr in dashboard_exprs(board):
            names = metric_names(expr)
            assert names, (name, title)
            missing = names - exported - recorded
            assert not missing, f"{name} / {title}: {sorted(missing)}"
            used |= names
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                (metric,) = re.findall(r"label_values\((\w+)[{,]", variable["definition"])
                assert metric in exported
    # The dashboards cover the families the issue names.
    for family in (
        "warmpool_instances",
        "warmpool_pool_ready_replicas",
        "warmpool_price_dollars_per_hour",
        "warmpool_budget_dollars_per_hour",
        "warmpool_budget_dollars_per_day",
        "warmpool_spend_today_dollars",
        "warmpool_rentals_total",
        "warmpool_terminations_total",
        "warmpool_jobs",
        "namespace_pool_le:warmpool_job_queue_wait_seconds_bucket:rate5m",
        "namespace_pool_le:warmpool_job_run_seconds_bucket:rate5m",
        "warmpool_job_failures_total",
        "endpoint_code:warmpool_vastai_requests:rate5m",
        "endpoint_le:warmpool_vastai_request_seconds_bucket:rate5m",
        "warmpool_build_info",
    ):
        assert family in used


def test_selectors_match_only_labels_the_series_carry(
    dashboards: dict[str, dict[str, Any]],
    all_rules: list[dict[str, Any]],
    label_names: dict[str, set[str]],
) -> None:
    """A matcher on a label the series lacks (``namespace`` on a series without it) selects
    nothing; the panel would stay empty."""
    exprs = [(f"{n} / {t}", e) for n, b in dashboards.items() for t, e in dashboard_exprs(b)]
    exprs += [(r.get("alert") or r["record"], r["expr"]) for r in all_rules]
    checked = 0
    for where, expr in exprs:
        for name, matched in selectors(expr).items():
            if name in label_names:
                checked += 1
                assert matched <= label_names[name], f"{where}: {name} has no {matched}"
    assert checked > 40


def test_every_pool_scoped_series_carries_namespace_and_pool() -> None:
    """Two pools of one name in two namespaces are two series (the namespace was once
    dropped, and their figures overwrote each other)."""
    from warmpool.operator import metrics

    scoped = [
        m
        for m in vars(metrics).values()
        if isinstance(m, MetricWrapperBase) and "pool" in m._labelnames
    ]
    assert len(scoped) >= 20
    for metric in scoped:
        assert metric._labelnames[:2] == ("namespace", "pool"), metric._name


def test_recording_rules_read_exported_series(
    all_rules: list[dict[str, Any]], exported: set[str], recorded: set[str]
) -> None:
    records = [r for r in all_rules if "record" in r]
    assert len(records) >= 5
    for rule in records:
        names = metric_names(rule["expr"])
        assert names <= exported | recorded, f"{rule['record']}: {sorted(names - exported)}"
        assert rule["record"].count(":") == 2, "level:metric:operations"


def test_rules_use_only_exported_metrics(
    rules: list[dict[str, Any]], exported: set[str], recorded: set[str]
) -> None:
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        missing = names - exported - recorded - PROMETHEUS_SERIES
        assert not missing, f"{rule['alert']}: {sorted(missing)}"


def test_the_alerts_the_issue_asks_for(rules: list[dict[str, Any]]) -> None:
    assert {r["alert"] for r in rules} >= {
        "WarmpoolInstanceNotReady",
        "WarmpoolDailySpendNearBudget",
        "WarmpoolHourlySpendNearBudget",
        "WarmpoolBudgetExceeded",
        "WarmpoolJobsQueuedWithoutReadyInstance",
        "WarmpoolPoolDegraded",
        "WarmpoolVastaiErrors",
        "WarmpoolVastaiThrottled",
        "WarmpoolOperatorDown",
        "WarmpoolStudioDown",
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
