"""``spec.timeout`` counts from the prompt's start; the queue wait has its own bound."""

from __future__ import annotations

import pytest

from warmpool.operator.decisions.deadlines import PromptDeadlines, plan_deadlines


@pytest.mark.parametrize(
    ("timeout", "waited", "ran", "expected"),
    [
        pytest.param(60.0, 0.0, None, PromptDeadlines(600.0, 60.0), id="fresh-submission"),
        pytest.param(60.0, 590.0, None, PromptDeadlines(10.0, 60.0),
                     id="resumed-while-queued-keeps-what-is-left-of-the-wait"),
        pytest.param(60.0, 900.0, None, PromptDeadlines(1.0, 60.0), id="wait-spent-floor"),
        pytest.param(60.0, 500.0, 20.0, PromptDeadlines(None, 40.0),
                     id="running-the-wait-no-longer-counts"),
        pytest.param(60.0, 0.0, 90.0, PromptDeadlines(None, 1.0), id="run-spent-floor"),
    ],
)  # fmt: skip
def test_plan_deadlines(
    timeout: float, waited: float, ran: float | None, expected: PromptDeadlines
) -> None:
    assert plan_deadlines(timeout, queue_wait_max=600.0, waited=waited, ran=ran) == expected
