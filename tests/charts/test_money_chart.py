"""The chart's money settings: the operator-wide daily cap reaches the operator."""

from __future__ import annotations

from typing import Any

import pytest


def operator_env(chart: Any, values: dict[str, Any]) -> dict[str, str | None]:
    deployment = chart.one(chart.render(values), "Deployment", "-operator")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_no_operator_cap_by_default(chart: Any) -> None:
    env = operator_env(chart, {})
    assert "WARMPOOL_OPERATOR_DAILY_BUDGET_USD" not in env
    assert env["WARMPOOL_OPERATOR_BUDGET_ON_EXCEEDED"] == "Release"


def test_operator_cap_and_its_behaviour(chart: Any) -> None:
    env = operator_env(chart, {"operator": {"dailyBudgetUsd": 120.5, "budgetOnExceeded": "Block"}})
    assert env["WARMPOOL_OPERATOR_DAILY_BUDGET_USD"] == "120.5"
    assert env["WARMPOOL_OPERATOR_BUDGET_ON_EXCEEDED"] == "Block"


@pytest.mark.parametrize(
    "operator",
    [
        pytest.param({"dailyBudgetUsd": -1}, id="negative-cap"),
        pytest.param({"budgetOnExceeded": "Ignore"}, id="unknown-behaviour"),
        pytest.param({"watchNamespaces": ["Not_A_Namespace"]}, id="bad-namespace"),
    ],
)
def test_the_schema_refuses(chart: Any, operator: dict[str, Any]) -> None:
    result = chart.helm("template", "wp", str(chart.path), values={"operator": operator})
    assert result.returncode != 0
    assert next(iter(operator)) in result.stderr
