"""The deadlines of one attempt's prompt on ComfyUI.

``spec.timeout`` bounds the prompt's run, counted from its start (``execution_start``),
not from its submission: a job queued ahead in ComfyUI behind the running prompt has the
whole of its timeout once it begins. The wait before the start has a bound of its own
(``WARMPOOL_QUEUE_WAIT_MAX_SECONDS``), so that a queue that never moves still ends.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The least a deadline is given (seconds), however much was spent already.
MIN_SECONDS = 1.0


@dataclass(frozen=True)
class PromptDeadlines:
    """``queue_wait``: seconds left for the prompt to begin (None: it began already);
    ``run``: seconds it may run, counted from its start (what is left, when it began)."""

    queue_wait: float | None
    run: float


def plan_deadlines(
    timeout: float, *, queue_wait_max: float, waited: float, ran: float | None
) -> PromptDeadlines:
    """The deadlines of a prompt that has waited ``waited`` seconds since its submission,
    and run ``ran`` seconds (None: not begun)."""
    if ran is not None:
        return PromptDeadlines(None, max(timeout - ran, MIN_SECONDS))
    return PromptDeadlines(max(queue_wait_max - waited, MIN_SECONDS), max(timeout, MIN_SECONDS))
