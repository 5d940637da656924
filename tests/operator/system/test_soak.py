"""A short chaos day: the operator as a process, SIGKILLed and restarted, under faults.

The emulated API and the Vast.ai simulator run in this process, ``warmpool-operator``
as a child process (``warmpool.sim.chaos_day``). Over about half a minute of wall time
(four simulated hours) jobs arrive while Vast.ai answers storms of 429s and 5xx, a create
rents but its answer is lost, a machine vanishes, another fills its disk, a ComfyUI
crashes mid-job, and the operator is killed with SIGKILL four times — once the moment a
create reached Vast.ai — and started again each time. Everything is counted from the
outside: no rental twice for one GpuInstance, no rental without its GpuInstance after
garbage collection, every job Succeeded, Cancelled or Failed with a reason, the money
within the pool's caps, and the pool whole again after every restart.

The timing figures (how long converging takes) are ``bench/soak.py``'s, not asserted here.
"""

from __future__ import annotations

import logging

import pytest

from warmpool.sim.chaos_day import DayPlan, run_day

#: A storm, then a lost create on the replacement of a vanished machine; a kill the
#: moment the replacement of a full disk is rented; a ComfyUI crash, a 5xx storm, more
#: kills, two jobs deleted. Fractions of the 32 s day.
SCRIPT = (
    (0.06, "storm_rate_limit"), (0.10, "lost_create"), (0.12, "vanish"), (0.30, "kill"),
    (0.40, "kill_at_create"), (0.42, "disk_full"), (0.50, "delete"), (0.55, "comfy_crash"),
    (0.62, "storm_server_error"), (0.70, "kill"), (0.80, "delete"), (0.88, "kill"),
)  # fmt: skip
PLAN = DayPlan(
    seconds=32.0,
    time_scale=240.0,
    replicas=2,
    max_replicas=3,
    max_hourly=3.0,
    max_daily=20.0,
    jobs=24,
    storm_requests=25,
    machines=40,
    drain=40.0,
    converge_timeout=40.0,
    seed=15,
    script=SCRIPT,
    provoke_creates=False,  # the script fills a disk itself
)


@pytest.mark.timeout(150)
async def test_a_short_chaos_day_loses_nothing_and_rents_nothing_twice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Killed mid-request, the operator leaves connections that aiohttp reports as errors.
    caplog.set_level(logging.CRITICAL, logger="aiohttp.server")
    result = await run_day(PLAN)
    counted = result.tally

    # The chaos really happened.
    assert result.kills >= 4
    assert result.faults.get("kill_at_create"), result.events
    for fault in ("storm_rate_limit", "storm_server_error", "lost_create", "vanish",
                  "disk_full", "comfy_crash"):  # fmt: skip
        assert result.faults.get(fault), (fault, result.faults, result.events)
    assert "create_lost" not in result.unfired_faults, "no create came to lose its answer"
    assert counted.jobs, "no job ran"

    # Nothing rented twice, nothing left without its owner, no job lost.
    assert counted.duplicate_rentals == 0, counted.duplicate_labels
    assert counted.orphan_rentals == [], counted.orphan_rentals
    assert counted.lost_jobs == [], counted.lost_detail
    assert result.drained_seconds is not None, "the pool did not heal after the day"

    # The money stays within the pool's caps (at the operator's clock).
    assert result.peak_hourly <= PLAN.max_hourly, result.peak_hourly
    assert 0 < counted.spent_dollars <= PLAN.max_daily

    # Every restart was followed by the pool converging again.
    assert len(result.restart_converge_seconds) >= 4
    assert result.longest_restart_converge is not None, result.restart_converge_seconds
