"""step_due: whether a Ready instance's daemon steps this interval (table tests)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from warmpool.operator.decisions import quiet
from warmpool.operator.decisions.lifecycle import RentalView

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
URL = "https://203.0.113.9:40123"
PROBE_EVERY, REFRESH_EVERY = 30.0, 60.0

RUNNING = RentalView(present=True, actual_status="running", intended_status="running",
                     cur_state="running", has_port=True, public_ip="203.0.113.9")  # fmt: skip


def seen(**changes: Any) -> quiet.Observation:
    """A Ready instance probed 10 s ago, its status refreshed 20 s ago, all well."""
    base = quiet.Observation(
        version="41",
        current=True,
        pool=("pool-uid", 3),
        rental=RUNNING,
        url=URL,
        out_of_credit=False,
        phase="Ready",
        comfy_url=URL,
        probe_ok=True,
        probe_failures=0,
        probed_at=NOW - timedelta(seconds=10),
        refreshed_at=NOW - timedelta(seconds=20),
    )
    return dataclasses.replace(base, **changes)


def rental(**changes: Any) -> RentalView:
    return dataclasses.replace(RUNNING, **changes)


LAST = seen()

CASES: list[tuple[str, quiet.Observation | None, bool, quiet.Observation | None, bool]] = [
    # (case, last full step saw, it ended Ready, seen now, step due)
    ("nothing changed, nothing due", LAST, True, seen(), False),
    ("no full step yet", None, True, seen(), True),
    ("last step did not end Ready", LAST, False, seen(), True),
    ("not a Ready rental of a known pool now", LAST, True, None, True),
    ("body lags a write (read it again)", LAST, True, seen(current=False), True),
    ("someone wrote the object", LAST, True, seen(version="42"), True),
    ("the pool's spec changed", LAST, True, seen(pool=("pool-uid", 4)), True),
    ("the pool was re-created", LAST, True, seen(pool=("other-uid", 3)), True),
    ("the pool is not known", LAST, True, seen(pool=None), True),
    ("the listing row changed status", LAST, True,
     seen(rental=rental(actual_status="offline")), True),
    ("the listing row's message changed", LAST, True,
     seen(rental=rental(status_msg="Error: CUDA failure")), True),
    ("the rental left the listing", LAST, True, seen(rental=RentalView(present=False)), True),
    ("not listed at all", LAST, True, seen(rental=None), True),
    ("the machine moved address", LAST, True,
     seen(url="https://203.0.113.10:40123"), True),
    ("the machine's URL is gone", LAST, True, seen(url=None), True),
    ("the account ran out of credit", LAST, True, seen(out_of_credit=True), True),
    # The same odd inputs at both ends still step: only a well Ready rental is skipped.
    ("unchanged but not running", seen(rental=rental(actual_status="loading")), True,
     seen(rental=rental(actual_status="loading")), True),
    ("unchanged but absent", seen(rental=RentalView(present=False)), True,
     seen(rental=RentalView(present=False)), True),
    ("unchanged but stopped by Vast.ai", seen(rental=rental(intended_status="stopped")), True,
     seen(rental=rental(intended_status="stopped")), True),
    ("unchanged without a URL", seen(url=None), True, seen(url=None), True),
    ("unchanged, out of credit", seen(out_of_credit=True), True, seen(out_of_credit=True), True),
    ("the status shows another URL", LAST, True, seen(comfy_url="https://198.51.100.1:1"), True),
    ("Draining", LAST, True, seen(phase="Draining"), True),
    ("Stopped by the cold tier", LAST, True, seen(phase="Stopped"), True),
    ("last probe failed", LAST, True, seen(probe_ok=False), True),
    ("probe failures counted", LAST, True, seen(probe_failures=1), True),
    ("never probed", LAST, True, seen(probed_at=None), True),
    ("probe due exactly now", LAST, True,
     seen(probed_at=NOW - timedelta(seconds=PROBE_EVERY)), True),
    ("probe due a while ago", LAST, True, seen(probed_at=NOW - timedelta(minutes=5)), True),
    ("probe due in a second", LAST, True,
     seen(probed_at=NOW - timedelta(seconds=PROBE_EVERY - 1)), False),
    ("status never refreshed", LAST, True, seen(refreshed_at=None), True),
    ("status refresh due exactly now", LAST, True,
     seen(refreshed_at=NOW - timedelta(seconds=REFRESH_EVERY)), True),
    ("status refresh due in a second", LAST, True,
     seen(refreshed_at=NOW - timedelta(seconds=REFRESH_EVERY - 1)), False),
    # What moves with every step but is no input: the clock fields, the current flag of
    # the last step (it read the object again itself).
    ("last step read a lagging body", seen(current=False), True, seen(), False),
    ("the last step probed later", seen(probed_at=NOW), True, seen(), False),
]  # fmt: skip


@pytest.mark.parametrize(("case", "last", "last_ready", "now_seen", "due"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_step_due(
    case: str,
    last: quiet.Observation | None,
    last_ready: bool,
    now_seen: quiet.Observation | None,
    due: bool,
) -> None:
    got = quiet.step_due(last, last_ready, now_seen, now=NOW, probe_every=PROBE_EVERY,
                         refresh_every=REFRESH_EVERY)  # fmt: skip
    assert got is due, case


def test_inputs_leave_out_the_clock() -> None:
    a = seen()
    b = seen(probed_at=NOW, refreshed_at=NOW, current=False, probe_failures=2)
    assert quiet.inputs(a) == quiet.inputs(b)
    assert quiet.inputs(a) != quiet.inputs(seen(version="42"))
