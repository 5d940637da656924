"""Which pool status writes can wait for the status refresh: those the clock alone moved."""

from __future__ import annotations

from typing import Any

import pytest

from warmpool.operator.decisions.conditions import status_change


def budget(message: str, status: str = "False", reason: str = "WithinBudget") -> dict[str, Any]:
    return {"type": "BudgetExceeded", "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-12-03T10:00:00Z", "observedGeneration": 2}  # fmt: skip


READY = {"type": "Ready", "status": "True", "reason": "ReplicasReady", "message": "5/5 ready",
         "lastTransitionTime": "2026-12-03T10:00:00Z", "observedGeneration": 2}  # fmt: skip
CURRENT: dict[str, Any] = {
    "replicas": 5,
    "readyReplicas": 5,
    "spendToday": 1.0,
    "conditions": [READY, budget("$16.38/h, $1.00 today")],
}


def test_the_same_status_is_no_change() -> None:
    assert status_change(CURRENT, dict(CURRENT)) == "none"


def test_a_field_written_as_none_is_no_change_when_it_is_absent() -> None:
    assert status_change(CURRENT, {**CURRENT, "breakerUntil": None}) == "none"
    assert status_change({**CURRENT, "breakerUntil": "x"}, {**CURRENT, "breakerUntil": None}) == (
        "real"
    )


def test_the_spend_and_the_budget_message_move_with_the_clock() -> None:
    later = {**CURRENT, "spendToday": 1.01,
             "conditions": [READY, budget("$16.38/h, $1.01 today")]}  # fmt: skip
    assert status_change(CURRENT, later) == "clock"
    assert status_change(CURRENT, {**CURRENT, "spendToday": 1.01}) == "clock"


@pytest.mark.parametrize(
    "change",
    [
        {"readyReplicas": 4},
        {"replicas": 6},
        {"newField": 1},
        {"conditions": [READY]},
        {"conditions": [budget("spent $9.00 today", "True", "DailyCapReached")]},
        {"conditions": [budget("$16.38/h, $1.00 today", reason="Other")]},
        {"conditions": [{**READY, "message": "4/5 ready"}, budget("$16.38/h, $1.00 today")]},
        {"conditions": [{**READY, "status": "False"}, budget("$16.38/h, $1.00 today")]},
    ],
)
def test_anything_else_is_a_real_change(change: dict[str, Any]) -> None:
    assert status_change(CURRENT, {**CURRENT, "spendToday": 1.5, **change}) == "real"
    assert status_change(CURRENT, {**CURRENT, **change}) == "real"


def test_a_real_change_beside_a_clock_change_is_real() -> None:
    later = {**CURRENT, "readyReplicas": 4, "spendToday": 1.01,
             "conditions": [READY, budget("$16.38/h, $1.01 today")]}  # fmt: skip
    assert status_change(CURRENT, later) == "real"


def test_conditions_that_are_not_a_list_compare_as_they_are() -> None:
    assert status_change({"conditions": None}, {"conditions": []}) == "real"
