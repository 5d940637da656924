"""CEL rules of x-kubernetes-validations (warmpool.sim.cel)."""

from __future__ import annotations

from typing import Any

import pytest

from warmpool.sim.cel import CelRule, CelRuleError, compile_expression, evaluate


@pytest.mark.parametrize(
    ("rule", "value", "holds"),
    [
        pytest.param(
            "self.maxReplicas >= self.replicas",
            {"maxReplicas": 3, "replicas": 2},
            True,
            id="comparison-holds",
        ),
        pytest.param(
            "self.maxReplicas >= self.replicas",
            {"maxReplicas": 1, "replicas": 2},
            False,
            id="comparison-fails",
        ),
        pytest.param("!has(self.a) || self.a > 0", {}, True, id="has-absent"),
        pytest.param("!has(self.a) || self.a > 0", {"a": 0}, False, id="has-present"),
        pytest.param("self.b >= self.a", {"a": 1, "b": 2.5}, True, id="int-vs-double"),
        pytest.param("self.all(x, x.size() < 3)", ["a", "bb"], True, id="macro-all"),
        pytest.param("self.matches('^[a-z]+$')", "abc1", False, id="regex"),
    ],
)
def test_rule_evaluation(rule: str, value: Any, holds: bool) -> None:
    message = CelRule(rule=rule, message="nope").check(value)
    assert (message is None) == holds
    if not holds:
        assert message == "nope"


def test_default_message_names_the_rule() -> None:
    assert CelRule(rule="self > 1").check(0) == "failed rule: self > 1"


def test_message_expression_is_used() -> None:
    rule = CelRule(rule="self > 1", message="static", message_expression="'got ' + string(self)")
    assert rule.check(0) == "got 0"


def test_transition_rule_runs_only_with_an_old_value() -> None:
    rule = CelRule(rule="self >= oldSelf", message="may not decrease")
    assert rule.is_transition
    assert rule.check(1) is None  # create: no old value, the rule does not apply
    assert rule.check(1, old=2, has_old=True) == "may not decrease"
    assert rule.check(3, old=2, has_old=True) is None


def test_evaluation_error_is_a_failure_not_a_crash() -> None:
    message = CelRule(rule="self.missing > 1").check({})
    assert message is not None
    assert "evaluation failed" in message


def test_bad_rule_fails_at_load() -> None:
    with pytest.raises(CelRuleError):
        CelRule.from_schema({"rule": "self.("})


def test_programs_are_cached() -> None:
    assert compile_expression("self + 1") is compile_expression("self + 1")
    assert evaluate("self + 1", {"self": 41}) == 42
