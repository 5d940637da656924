"""The chart's alert and recording rules under ``promtool``: valid, and every alert unit-tested.

The rules come from ``helm template`` of the chart (one source; :mod:`prometheus` in
``tests/support`` writes ``spec.groups`` of the rendered PrometheusRule as a rule file). The
cases are ``promtool test rules`` files in ``tests/charts/promtool/``: input series that make
each alert fire and series that keep it quiet. ``promtool`` is Debian's (``make test`` installs
it as root); the tests skip without it only when not root.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus import binary, rendered_rule_groups, write_rule_file

CASES = Path(__file__).parent / "promtool" / "alerts_test.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    return binary("promtool")


def run_promtool(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def prepare(tmp_path: Path, values: dict[str, Any] | None = None) -> Path:
    write_rule_file(tmp_path / "rules.yaml", values)
    shutil.copy(CASES, tmp_path / CASES.name)
    return tmp_path


@pytest.fixture(scope="module")
def groups() -> list[dict[str, Any]]:
    return rendered_rule_groups()


def test_the_rendered_rules_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    workdir = prepare(tmp_path)
    result = run_promtool(promtool, "check", "rules", "rules.yaml", cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_fires_and_stays_quiet_as_the_unit_tests_say(
    promtool: str, tmp_path: Path
) -> None:
    workdir = prepare(tmp_path)
    result = run_promtool(promtool, "test", "rules", CASES.name, cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_case(groups: list[dict[str, Any]]) -> None:
    alerts = {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}
    cases = yaml.safe_load(CASES.read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    for test in cases["tests"]:
        for check in test.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert alerts >= {
        "WarmpoolInstanceNotReady",
        "WarmpoolPoolDegraded",
        "WarmpoolJobsQueuedWithoutReadyInstance",
        "WarmpoolDailySpendNearBudget",
        "WarmpoolHourlySpendNearBudget",
        "WarmpoolBudgetExceeded",
        "WarmpoolVastaiErrors",
        "WarmpoolVastaiThrottled",
        "WarmpoolOperatorDown",
        "WarmpoolStudioDown",
        "WarmpoolResumeFailures",
        "WarmpoolColdStorageCost",
        "WarmpoolColdPastMaxAge",
    }
    assert alerts - firing == set(), "alerts without a case that makes them fire"
    assert alerts - quiet == set(), "alerts without a case that keeps them quiet"
    assert (firing | quiet) - alerts == set(), "cases of alerts the chart does not have"


def test_the_cases_test_the_rendered_thresholds(promtool: str, tmp_path: Path) -> None:
    """The unit tests read the chart's rules, not a copy: a raised warning ratio (83% of the
    daily budget no longer warns) makes the daily-budget case fail."""
    values = {"metrics": {"prometheusRule": {"budgetWarningRatio": 0.9}}}
    workdir = prepare(tmp_path, values)
    result = run_promtool(promtool, "test", "rules", CASES.name, cwd=workdir)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "WarmpoolDailySpendNearBudget" in output
    assert "WarmpoolHourlySpendNearBudget" not in output  # 90% still warns at 0.9


def test_every_recording_rule_is_read_by_a_dashboard_or_an_alert(
    groups: list[dict[str, Any]], chart: Any
) -> None:
    recorded = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    assert recorded, "the chart records the expressions its dashboards repeat"
    readers = [rule["expr"] for group in groups for rule in group["rules"] if "alert" in rule]
    readers += [p.read_text() for p in (chart.path / "dashboards").glob("*.json")]
    for name in recorded:
        assert any(name in text for text in readers), f"{name} is recorded but never read"


def test_every_alert_has_a_runbook_entry(groups: list[dict[str, Any]], chart: Any) -> None:
    """docs/deploy.md says what each alert means and what to do (a paragraph per alert)."""
    guide = (chart.repo / "docs" / "deploy.md").read_text()
    alerts = {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}
    for alert in alerts:
        assert f"| `{alert}` |" in guide, f"{alert} is not in the table of alerts"
        runbook = [p for p in guide.split("\n\n") if p.startswith("**") and " — " in p]
        heads = [p.split(" — ")[0] for p in runbook]
        assert any(alert in head for head in heads), f"no runbook paragraph for {alert}"


@pytest.mark.parametrize(
    ("rules_on", "warned"),
    [pytest.param(False, True, id="dashboards-only"), pytest.param(True, False, id="with-rules")],
)
def test_dashboards_without_the_recording_rules_are_warned_about(
    chart: Any, rules_on: bool, warned: bool
) -> None:
    values = {"metrics": {"dashboards": {"enabled": True}, "prometheusRule": {"enabled": rules_on}}}
    args = ("install", "wp", str(chart.path), "--dry-run=client", "--namespace", "warmpool")
    result = chart.helm(*args, values=values)
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert ("recording rules" in notes) is warned
