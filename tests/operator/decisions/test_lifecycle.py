"""T1: the next phase of one instance, and when to terminate it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from warmpool.crds.gpuinstance import Phase
from warmpool.crds.gpupool import FailurePolicySpec, ReadinessSpec
from warmpool.operator.decisions import lifecycle
from warmpool.operator.decisions.lifecycle import (
    InstanceDecision,
    ProbeView,
    RentalView,
    stopped_by_vastai,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)

LOADING = RentalView(
    present=True,
    actual_status="loading",
    intended_status="running",
    cur_state="running",
    status_msg="a3ed95caeb02: Pulling fs layer",
)
CREATED = RentalView(present=True, actual_status=None, intended_status="running")
RUNNING = RentalView(
    present=True,
    actual_status="running",
    intended_status="running",
    cur_state="running",
    status_msg="success, running vastai/comfyui_latest/args",
    has_port=True,
    public_ip="203.0.113.7",
)
RUNNING_NO_PORT = RentalView(present=True, actual_status="running", intended_status="running")
GONE = RentalView(present=False)
NO_SPACE = RentalView(
    present=True,
    actual_status="loading",
    intended_status="running",
    status_msg="Error response from daemon: failed to register layer: write /opt/x.so: "
    "NO SPACE LEFT ON DEVICE",
)


def status(actual: str | None, **more: Any) -> RentalView:
    return RentalView(present=True, actual_status=actual, intended_status="running", **more)


def ok(stage: lifecycle.ProbeStage) -> ProbeView:
    return ProbeView(ok=True, stage=stage)


def failed(stage: lifecycle.ProbeStage, reason: str = "refused", message: str = "") -> ProbeView:
    return ProbeView(ok=False, stage=stage, reason=reason, message=message)


def keep(phase: Phase, *, probe: bool) -> InstanceDecision:
    return InstanceDecision(phase, False, "", "", start_probe=probe)


def fail(reason: str, message: str) -> InstanceDecision:
    return InstanceDecision("Failed", True, reason, message, start_probe=False)


def decide(**overrides: Any) -> InstanceDecision:
    kwargs: dict[str, Any] = {
        "phase": "Provisioning",
        "rental": LOADING,
        "probe": None,
        "probe_failures": 0,
        "rented_at": NOW - 5 * MIN,
        "running_at": None,
        "ready_at": None,
        "now": NOW,
        "policy": FailurePolicySpec(),
        "readiness": ReadinessSpec(),
    }
    kwargs.update(overrides)
    return lifecycle.decide_instance(**kwargs)


STARTING = {"phase": "Starting", "rental": RUNNING, "running_at": NOW - 2 * MIN}
READY = {
    "phase": "Ready",
    "rental": RUNNING,
    "running_at": NOW - 9 * MIN,
    "ready_at": NOW - 5 * MIN,
    "probe": ok("answering"),
}
DRAINING = {**READY, "phase": "Draining"}
NO_CANARY = ReadinessSpec.model_validate({"canary": {"enabled": False}})


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # Before the contract exists.
        pytest.param(
            {"phase": "Pending", "rental": None, "rented_at": None},
            keep("Pending", probe=False),
            id="pending-no-contract",
        ),
        pytest.param(
            {"phase": "Renting", "rental": None, "rented_at": None},
            keep("Renting", probe=False),
            id="renting-no-contract",
        ),
        pytest.param(
            {"phase": "Renting"},
            InstanceDecision(
                "Provisioning", False, "Loading", "a3ed95caeb02: Pulling fs layer", False
            ),
            id="renting-to-provisioning-when-contract-exists",
        ),
        pytest.param(
            {"phase": "Pending", "rental": RUNNING},
            InstanceDecision(
                "Starting", False, "Running", "the machine runs; probing ComfyUI", True
            ),
            id="adopted-running-rental-starts",
        ),
        # Provisioning.
        pytest.param(
            {"rental": CREATED},
            InstanceDecision("Provisioning", False, "Loading", "", False),
            id="created-null-status-waits",
        ),
        pytest.param(
            {"rental": status("rebooting")},
            InstanceDecision("Provisioning", False, "Loading", "", False),
            id="rebooting-is-transient",
        ),
        pytest.param(
            {"rental": RUNNING},
            InstanceDecision(
                "Starting", False, "Running", "the machine runs; probing ComfyUI", True
            ),
            id="running-with-port-starts",
        ),
        pytest.param(
            {"rental": RUNNING_NO_PORT},
            InstanceDecision(
                "Provisioning", False, "WaitingForPort", "running; port not mapped yet", False
            ),
            id="running-without-port-waits",
        ),
        pytest.param(
            {"rental": RUNNING_NO_PORT, "rented_at": NOW - 20 * MIN - SEC},
            fail(
                "LoadingTimeout", "running but the ComfyUI port is not mapped 20m after the rental"
            ),
            id="port-never-mapped",
        ),
        pytest.param(
            {"rented_at": NOW - 20 * MIN},
            InstanceDecision(
                "Provisioning", False, "Loading", "a3ed95caeb02: Pulling fs layer", False
            ),
            id="loading-exactly-timeout-still-waits",
        ),
        pytest.param(
            {"rented_at": NOW - 20 * MIN - SEC},
            fail(
                "LoadingTimeout",
                "still loading 20m after the rental (a3ed95caeb02: Pulling fs layer)",
            ),
            id="loading-timeout",
        ),
        pytest.param(
            {"rental": CREATED, "rented_at": NOW - 21 * MIN},
            fail("LoadingTimeout", "still being created 20m after the rental"),
            id="created-timeout",
        ),
        pytest.param(
            {
                "policy": FailurePolicySpec(loading_timeout="5m"),
                "rented_at": NOW - 5 * MIN - SEC,
            },
            fail(
                "LoadingTimeout",
                "still loading 5m after the rental (a3ed95caeb02: Pulling fs layer)",
            ),
            id="loading-timeout-per-pool",
        ),
        # Status messages.
        pytest.param(
            {"rental": NO_SPACE},
            fail(
                "StatusMessageFailure",
                "status message matches 'no space left on device': " + (NO_SPACE.status_msg or ""),
            ),
            id="no-space-left-case-insensitive",
        ),
        pytest.param(
            {
                "rental": status(
                    "loading", status_msg="Error response from daemon: manifest unknown"
                )
            },
            fail(
                "StatusMessageFailure",
                "status message matches 'error response from daemon':"
                " Error response from daemon: manifest unknown",
            ),
            id="first-pattern-named",
        ),
        pytest.param(
            {"rental": NO_SPACE, "policy": FailurePolicySpec(terminate_patterns=[])},
            InstanceDecision("Provisioning", False, "Loading", NO_SPACE.status_msg or "", False),
            id="no-patterns-no-failure",
        ),
        pytest.param(
            {**READY, "rental": status("running", status_msg="write: no space left on device")},
            fail(
                "StatusMessageFailure",
                "status message matches 'no space left on device': write: no space left on device",
            ),
            id="ready-instance-status-message",
        ),
        # Gone from the listing.
        pytest.param(
            {**READY, "rental": GONE, "rented_at": NOW - 30 * MIN},
            fail("RentalVanished", "the rental is gone from the Vast.ai listing"),
            id="ready-vanished",
        ),
        pytest.param(
            {**READY, "rental": None, "rented_at": NOW - 30 * MIN},
            fail("RentalVanished", "the rental is gone from the Vast.ai listing"),
            id="ready-without-rental-vanished",
        ),
        pytest.param(
            {"phase": "Renting", "rental": GONE, "rented_at": NOW - 30 * SEC},
            keep("Renting", probe=False),
            id="fresh-rental-not-listed-yet",
        ),
        pytest.param(
            {"phase": "Renting", "rental": GONE, "rented_at": NOW - MIN},
            fail("RentalVanished", "the rental is gone from the Vast.ai listing"),
            id="vanish-grace-over",
        ),
        # Machine down or lost.
        pytest.param(
            {**READY, "rental": status("exited", cur_state="running")},
            fail(
                "MachineOffline",
                "actual_status=exited intended_status=running cur_state=running"
                " on a rental that should run",
            ),
            id="exited-terminates-at-once",
        ),
        pytest.param(
            {"rental": status("stopped", cur_state="stopped")},
            fail(
                "MachineOffline",
                "actual_status=stopped intended_status=running cur_state=stopped"
                " on a rental that should run",
            ),
            id="stopped-terminates-at-once",
        ),
        pytest.param(
            {**STARTING, "rental": status("error")},
            fail(
                "MachineOffline",
                "actual_status=error intended_status=running cur_state=None"
                " on a rental that should run",
            ),
            id="error-terminates",
        ),
        pytest.param(
            {**READY, "rental": status("offline"), "status_since": NOW - MIN},
            InstanceDecision(
                "Ready",
                False,
                "MachineLost",
                "actual_status=offline intended_status=running cur_state=None; waiting",
                True,
            ),
            id="offline-within-grace",
        ),
        pytest.param(
            {**READY, "rental": status("offline"), "status_since": NOW - 2 * MIN},
            fail(
                "MachineOffline",
                "actual_status=offline intended_status=running cur_state=None for too long",
            ),
            id="offline-past-grace",
        ),
        pytest.param(
            {**READY, "rental": status("unknown"), "probe_failures": 3},
            fail(
                "MachineOffline",
                "actual_status=unknown intended_status=running cur_state=None for too long",
            ),
            id="unknown-and-unreachable",
        ),
        pytest.param(
            {"rental": status("unknown")},
            InstanceDecision(
                "Provisioning",
                False,
                "MachineLost",
                "actual_status=unknown intended_status=running cur_state=None; waiting",
                False,
            ),
            id="unknown-without-since-waits",
        ),
        pytest.param(
            {
                "rental": status(None, cur_state="stopped"),
                "status_since": NOW - 3 * MIN,
            },
            fail(
                "MachineOffline",
                "actual_status=None intended_status=running cur_state=stopped for too long",
            ),
            id="scheduling-gpu-taken",
        ),
        pytest.param(
            {
                "rental": status("offline"),
                "status_since": NOW - 30 * SEC,
                "offline_grace": 30 * SEC,
            },
            fail(
                "MachineOffline",
                "actual_status=offline intended_status=running cur_state=None for too long",
            ),
            id="grace-is-a-parameter",
        ),
        # Starting: readiness.
        pytest.param(
            STARTING,
            InstanceDecision("Starting", False, "Waiting", "waiting for answering", True),
            id="starting-no-probe-yet",
        ),
        pytest.param(
            {**STARTING, "probe": ok("answering")},
            InstanceDecision("Starting", False, "Waiting", "waiting for models", True),
            id="answering-waits-for-models",
        ),
        pytest.param(
            {**STARTING, "probe": failed("models", "model_missing")},
            InstanceDecision("Starting", False, "Waiting", "waiting for models", True),
            id="models-missing-waits",
        ),
        pytest.param(
            {**STARTING, "probe": ok("models")},
            InstanceDecision("Starting", False, "Waiting", "waiting for canary", True),
            id="models-present-waits-for-canary",
        ),
        pytest.param(
            {**STARTING, "probe": ok("models"), "readiness": NO_CANARY},
            InstanceDecision("Ready", False, "Ready", "models passed", True),
            id="canary-disabled-models-suffice",
        ),
        pytest.param(
            {**STARTING, "probe": ok("canary")},
            InstanceDecision("Ready", False, "Ready", "canary passed", True),
            id="canary-passed-ready",
        ),
        pytest.param(
            {**STARTING, "probe": ok("canary"), "running_at": NOW - 11 * MIN},
            InstanceDecision("Ready", False, "Ready", "canary passed", True),
            id="ready-wins-over-late",
        ),
        pytest.param(
            {**STARTING, "running_at": NOW - 10 * MIN, "probe": failed("answering")},
            InstanceDecision("Starting", False, "Waiting", "waiting for answering", True),
            id="readiness-exactly-timeout-waits",
        ),
        pytest.param(
            {**STARTING, "running_at": NOW - 10 * MIN - SEC},
            fail(
                "ReadinessTimeout", "not ready 10m after running: step 'answering' did not complete"
            ),
            id="never-answered",
        ),
        pytest.param(
            {
                **STARTING,
                "running_at": NOW - 11 * MIN,
                "probe": failed("models", "model_missing", "checkpoints/sdxl.safetensors"),
            },
            fail(
                "ReadinessTimeout",
                "not ready 10m after running: step 'models' did not complete"
                " (last probe: model_missing checkpoints/sdxl.safetensors)",
            ),
            id="models-never-present",
        ),
        pytest.param(
            {**STARTING, "running_at": NOW - 11 * MIN, "probe": ok("models")},
            fail("ReadinessTimeout", "not ready 10m after running: step 'canary' did not complete"),
            id="canary-never-finished",
        ),
        pytest.param(
            {
                **STARTING,
                "running_at": NOW - 3 * MIN - SEC,
                "readiness": ReadinessSpec(timeout="3m"),
            },
            fail(
                "ReadinessTimeout", "not ready 3m after running: step 'answering' did not complete"
            ),
            id="readiness-timeout-per-pool",
        ),
        pytest.param(
            {
                **STARTING,
                "running_at": NOW - 30 * MIN,
                "progress_at": NOW - 9 * MIN,
                "probe": failed("models", "model_missing", "checkpoints/big.safetensors"),
            },
            InstanceDecision("Starting", False, "Waiting", "waiting for models", True),
            id="downloads-progressing-extend-the-readiness-timeout",
        ),
        pytest.param(
            {
                **STARTING,
                "running_at": NOW - 30 * MIN,
                "progress_at": NOW - 10 * MIN - SEC,
                "probe": failed("models", "model_missing", "checkpoints/big.safetensors"),
            },
            fail(
                "ReadinessTimeout",
                "not ready 10m after the last model download progress: step 'models' did not"
                " complete (last probe: model_missing checkpoints/big.safetensors)",
            ),
            id="no-download-progress-for-the-readiness-timeout",
        ),
        pytest.param(
            {**STARTING, "running_at": NOW - 11 * MIN, "progress_at": NOW - 20 * MIN},
            fail(
                "ReadinessTimeout", "not ready 10m after running: step 'answering' did not complete"
            ),
            id="progress-before-running-counts-from-running",
        ),
        pytest.param(
            {**STARTING, "running_at": None, "rented_at": NOW - 5 * 60 * MIN},
            InstanceDecision("Starting", False, "Waiting", "waiting for answering", True),
            id="no-running-at-no-timeout",
        ),
        pytest.param(
            {**STARTING, "probe_failures": 50},
            InstanceDecision("Starting", False, "Waiting", "waiting for answering", True),
            id="starting-unreachable-is-readiness-business",
        ),
        pytest.param(
            {**STARTING, "rental": LOADING},
            InstanceDecision("Starting", False, "Waiting", "waiting for answering", True),
            id="starting-machine-restarting",
        ),
        # Ready and Draining: liveness.
        pytest.param(READY, keep("Ready", probe=True), id="ready-stays-ready"),
        pytest.param(
            {**READY, "probe": failed("answering"), "probe_failures": 2},
            keep("Ready", probe=True),
            id="two-failed-probes-tolerated",
        ),
        pytest.param(
            {
                **READY,
                "probe": failed("answering", "timed_out", "no answer in 5s"),
                "probe_failures": 3,
            },
            fail(
                "ComfyUnreachable",
                "ComfyUI failed 3 probes in a row (last: timed_out no answer in 5s)",
            ),
            id="unreachable-after-n-probes",
        ),
        pytest.param(
            {
                **READY,
                "probe": None,
                "probe_failures": 1,
                "policy": FailurePolicySpec(unreachable_probes=1),
            },
            fail("ComfyUnreachable", "ComfyUI failed 1 probes in a row"),
            id="unreachable-probes-per-pool",
        ),
        pytest.param(
            {**DRAINING, "probe": failed("answering"), "probe_failures": 3},
            fail("ComfyUnreachable", "ComfyUI failed 3 probes in a row (last: refused)"),
            id="draining-unreachable",
        ),
        pytest.param(DRAINING, keep("Draining", probe=True), id="draining-stays"),
        pytest.param(
            {**READY, "rental": status("rebooting")},
            keep("Ready", probe=True),
            id="ready-rebooting-probes-decide",
        ),
        # Already going away.
        pytest.param(
            {"phase": "Terminating", "rental": status("exited")},
            keep("Terminating", probe=False),
            id="terminating-untouched",
        ),
        pytest.param(
            {"phase": "Failed", "rental": NO_SPACE},
            keep("Failed", probe=False),
            id="failed-untouched",
        ),
    ],
)
def test_decide_instance(overrides: dict[str, Any], expected: InstanceDecision) -> None:
    assert decide(**overrides) == expected


@pytest.mark.parametrize(
    ("message", "patterns", "expected"),
    [
        pytest.param(None, ["x"], None, id="no-message"),
        pytest.param("", ["x"], None, id="empty-message"),
        pytest.param("all good", ["no space"], None, id="no-match"),
        pytest.param(
            "Pull Access DENIED for x", ["pull access denied"], "pull access denied", id="ci"
        ),
        pytest.param("abc", ["", "b"], "b", id="empty-pattern-ignored"),
        pytest.param("a b", ["b", "a"], "b", id="first-in-pattern-order"),
        pytest.param(
            "OCI runtime create failed", ["OCI RUNTIME"], "OCI RUNTIME", id="pattern-case"
        ),
    ],
)
def test_matches_failure_pattern(
    message: str | None, patterns: list[str], expected: str | None
) -> None:
    assert lifecycle.matches_failure_pattern(message, patterns) == expected


@pytest.mark.parametrize(
    ("rental", "rented_at", "expected"),
    [
        pytest.param(LOADING, NOW - 21 * MIN, True, id="loading-too-long"),
        pytest.param(LOADING, NOW - 20 * MIN, False, id="loading-exactly-timeout"),
        pytest.param(CREATED, NOW - 21 * MIN, True, id="created-too-long"),
        pytest.param(RUNNING, NOW - 60 * MIN, False, id="running-is-not-loading"),
        pytest.param(LOADING, None, False, id="not-rented"),
    ],
)
def test_is_stuck_loading(rental: RentalView, rented_at: datetime | None, expected: bool) -> None:
    assert (
        lifecycle.is_stuck_loading(rental, rented_at=rented_at, now=NOW, policy=FailurePolicySpec())
        is expected
    )


@pytest.mark.parametrize(
    ("observed", "last", "last_since", "expected"),
    [
        pytest.param("offline", "offline", NOW - 3 * MIN, NOW - 3 * MIN, id="unchanged-keeps-time"),
        pytest.param("offline", "running", NOW - 3 * MIN, NOW, id="changed-starts-now"),
        pytest.param("offline", "offline", None, NOW, id="never-written-starts-now"),
        pytest.param("offline", "offline", NOW + MIN, NOW, id="from-the-future-starts-now"),
        pytest.param(None, None, NOW - 3 * MIN, NOW - 3 * MIN, id="still-not-listed"),
    ],
)  # fmt: skip
def test_status_since_survives_restarts(
    observed: str | None, last: str | None, last_since: datetime | None, expected: datetime
) -> None:
    """Regression (chaos day): the time a rental went offline was kept in the operator's
    memory only. A machine that vanished while its instance was still Provisioning (no
    probes count there) waits for the 2-minute offline grace; the operator restarted every
    ~25 s, each restart started the grace again, and the dead instance held its place in
    the pool for over 100 s (forever, in a crash loop). The time is now kept in the
    object's ``actualStatusSince`` and carried over while the status is unchanged."""
    got = lifecycle.status_since(observed, last=last, last_since=last_since, now=NOW)
    assert got == expected
    decided = lifecycle.decide_instance(
        phase="Provisioning", rental=lifecycle.RentalView(present=True, actual_status="offline"),
        probe=None, probe_failures=0, rented_at=NOW - 10 * MIN, running_at=None, ready_at=None,
        now=NOW, policy=FailurePolicySpec(), readiness=ReadinessSpec(),
        status_since=lifecycle.status_since("offline", last="offline",
                                            last_since=NOW - 3 * MIN, now=NOW),
    )  # fmt: skip
    assert decided.terminate and decided.reason == "MachineOffline"


@pytest.mark.parametrize(
    ("intended", "cur", "present", "expected"),
    [
        ("stopped", "stopped", True, True),  # Vast.ai stopped it (credit gone, F18)
        ("stopped", "running", True, True),  # on its way down
        ("running", "stopped", True, False),  # waiting for its GPU: scheduling, not a stop
        ("running", "running", True, False),
        (None, None, True, False),
        ("stopped", "stopped", False, False),  # not in the listing: vanished, not stopped
    ],
)
def test_stopped_by_vastai(
    intended: str | None, cur: str | None, present: bool, expected: bool
) -> None:
    view = RentalView(present=present, actual_status="exited", intended_status=intended,
                      cur_state=cur)  # fmt: skip
    assert stopped_by_vastai(view) is expected
    assert stopped_by_vastai(None) is False
