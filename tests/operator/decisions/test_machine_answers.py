"""T1: what an answer past its byte cap means for a job and for an instance.

A machine that answers more than the operator accepts (an endless ``/history``, a
many-gigabyte "image") is hostile or broken: the job moves to another machine and the
host goes into the pool's cool-down ledger; an instance whose probe gets such an answer
is replaced at once instead of being probed until its readiness timeout.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from warmpool.crds.gpupool import FailurePolicySpec, ReadinessSpec
from warmpool.operator.decisions import lifecycle, scheduler
from warmpool.operator.decisions.lifecycle import ProbeView, RentalView

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RUNNING = RentalView(present=True, actual_status="running", intended_status="running",
                     cur_state="running", has_port=True, public_ip="203.0.113.7")  # fmt: skip


def test_a_job_is_retried_elsewhere_and_the_host_recorded() -> None:
    verdict = scheduler.decide_failure("too_large", attempts=1, max_attempts=3)
    assert verdict == scheduler.Verdict(
        True, "MachineAnswerTooLarge", exclude_host=True, record_host=True
    )


def test_past_its_attempts_the_job_fails_with_the_reason() -> None:
    verdict = scheduler.decide_failure("too_large", attempts=3, max_attempts=3)
    assert (verdict.requeue, verdict.reason) == (False, "MachineAnswerTooLarge")


def _decide(phase: lifecycle.Phase, probe: ProbeView) -> lifecycle.InstanceDecision:
    return lifecycle.decide_instance(
        phase=phase, rental=RUNNING, probe=probe, probe_failures=1,
        rented_at=NOW - timedelta(minutes=5), running_at=NOW - timedelta(minutes=1),
        ready_at=NOW if phase == "Ready" else None, now=NOW,
        policy=FailurePolicySpec(), readiness=ReadinessSpec(),
    )  # fmt: skip


def test_an_instance_answering_too_much_is_replaced_at_once() -> None:
    message = "GET /system_stats: the machine answered over 8388608 bytes"
    probe = ProbeView(ok=False, stage="answering", reason="too_large", message=message)
    for phase in ("Starting", "Ready"):
        decision = _decide(phase, probe)
        assert (decision.phase, decision.terminate, decision.reason) == (
            "Failed", True, "MachineAnswerTooLarge",
        ), phase  # fmt: skip
        assert "8388608" in decision.message


def test_other_probe_failures_keep_waiting() -> None:
    probe = ProbeView(ok=False, stage="answering", reason="refused", message="refused")
    assert _decide("Starting", probe).terminate is False
