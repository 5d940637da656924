"""decide_stopped / decide_resuming: what a cold instance's own daemon does (table tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warmpool.crds.gpupool import FailurePolicySpec
from warmpool.operator.decisions import resuming
from warmpool.operator.decisions.lifecycle import ProbeView, RentalView

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = FailurePolicySpec()


def rental(
    actual: str | None = "running",
    intended: str = "running",
    cur: str = "running",
    *,
    port: bool = True,
    msg: str | None = None,
    present: bool = True,
) -> RentalView:
    return RentalView(
        present=present,
        actual_status=actual,
        intended_status=intended,
        cur_state=cur,
        has_port=port,
        status_msg=msg,
        public_ip="203.0.113.9",
    )


OK = ProbeView(ok=True, stage="canary")
MODELS_OK = ProbeView(ok=True, stage="models")
REFUSED = ProbeView(ok=False, stage="answering", reason="refused")

RESUMING = [
    pytest.param(rental(), OK, True, 10, ("Ready", "Resumed", False, False), id="ready"),
    pytest.param(rental(), MODELS_OK, False, 10, ("Ready", "Resumed", False, False),
                 id="ready-without-canary"),
    pytest.param(rental(), MODELS_OK, True, 10, ("Resuming", "Waiting", False, False),
                 id="canary-pending"),
    pytest.param(rental(), REFUSED, True, 10, ("Resuming", "Waiting", False, False),
                 id="comfy-not-answering-yet"),
    pytest.param(rental(port=False), None, True, 10, ("Resuming", "WaitingForPort", False, False),
                 id="port-not-mapped"),
    pytest.param(rental("exited", cur="stopped"), None, True, 10,
                 ("Resuming", "Scheduling", False, False), id="gpu-taken-waits"),
    pytest.param(rental("loading"), None, True, 10, ("Resuming", "Loading", False, False),
                 id="loading"),
    pytest.param(rental("exited", "stopped", "stopped"), None, True, 10,
                 ("Resuming", "Starting", False, True), id="start-lost-sent-again"),
    pytest.param(rental(present=False), None, True, 10, ("Resuming", "Starting", False, False),
                 id="listing-lags"),
    pytest.param(rental(present=False), None, True, 120,
                 ("Failed", "RentalVanished", True, False), id="vanished"),
    pytest.param(rental("loading", msg="write /x: no space left on device"), None, True, 10,
                 ("Failed", "StatusMessageFailure", True, False), id="status-message-failure"),
]  # fmt: skip


@pytest.mark.parametrize(("view", "probe", "canary", "waited", "expected"), RESUMING)
def test_decide_resuming(
    view: RentalView,
    probe: ProbeView | None,
    canary: bool,
    waited: int,
    expected: tuple[str, str, bool, bool],
) -> None:
    got = resuming.decide_resuming(
        view, probe, resumed_at=NOW - timedelta(seconds=waited), now=NOW, canary=canary,
        policy=POLICY,
    )  # fmt: skip
    d = got.decision
    assert (d.phase, d.reason, d.terminate, got.restart) == expected
    assert not got.restop


STOPPED = [
    pytest.param(rental("exited", "stopped", "stopped"), 10, ("Stopped", False, False),
                 id="stopped"),
    pytest.param(rental("running"), 10, ("Stopped", False, True), id="stop-lost-sent-again"),
    pytest.param(rental(present=False), 10, ("Stopped", False, False), id="listing-lags"),
    pytest.param(rental(present=False), 600, ("Failed", True, False), id="vanished"),
]  # fmt: skip


@pytest.mark.parametrize(("view", "waited", "expected"), STOPPED)
def test_decide_stopped(view: RentalView, waited: int, expected: tuple[str, bool, bool]) -> None:
    got = resuming.decide_stopped(view, stopped_at=NOW - timedelta(seconds=waited), now=NOW)
    assert (got.decision.phase, got.decision.terminate, got.restop) == expected
    assert not got.restart
