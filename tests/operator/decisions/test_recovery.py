"""Crash recovery of held and orphaned jobs: every case of one dispatch, as intents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warmpool.operator.decisions import recovery
from warmpool.operator.decisions.recovery import (
    Cancel,
    Halt,
    HeldView,
    Hold,
    Intent,
    JobView,
    Requeue,
    Resume,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=1)
EARLIER = NOW - timedelta(seconds=1)


def running(
    uid: str = "j",
    *,
    on: str = "i1",
    prompt: str = "p1",
    lease: datetime | None = LATER,
    deleting: bool = False,
    finalized: bool = False,
) -> JobView:
    return JobView(uid, "Running", on, prompt, lease, deleting, finalized)


def scheduled(uid: str = "j", *, on: str = "i1", lease: datetime | None = LATER) -> JobView:
    return JobView(uid, "Scheduled", on, "", lease)


ORPHANS = [
    # (id, job, serving, first_dispatch, lost, pool_known, expected)
    ("running-at-start-resumed", running(), {"i1"}, True, False, True, [Resume("j", "i1")]),
    ("running-at-start-pool-unknown-requeued", running(), {"i1"}, True, False, False,
     [Requeue("j", "OperatorRestarted")]),
    ("running-without-prompt-at-start-requeued", running(prompt=""), {"i1"}, True, False, True,
     [Requeue("j", "OperatorRestarted")]),
    ("scheduled-at-start-requeued", scheduled(), {"i1"}, True, False, True,
     [Requeue("j", "OperatorRestarted")]),
    ("scheduled-queued-ahead-at-start-resumed", JobView("j", "Scheduled", "i1", "p1", LATER),
     {"i1"}, True, False, True, [Resume("j", "i1")]),
    ("running-at-start-instance-gone", running(), set(), True, False, True,
     [Requeue("j", "InstanceLost")]),
    ("running-at-start-expired-lease-still-resumed", running(lease=EARLIER), {"i1"}, True,
     False, True, [Resume("j", "i1")]),
    ("later-within-lease-holds-its-slot", running(), {"i1"}, False, False, True,
     [Hold("j", "i1")]),
    ("later-scheduled-within-lease-holds", scheduled(), {"i1"}, False, False, True,
     [Hold("j", "i1")]),
    ("later-lease-expired", running(lease=EARLIER), {"i1"}, False, False, True,
     [Requeue("j", "LeaseExpired")]),
    ("later-lease-exactly-now-expired", running(lease=NOW), {"i1"}, False, False, True,
     [Requeue("j", "LeaseExpired")]),
    ("later-no-lease-recorded-expired", running(lease=None), {"i1"}, False, False, True,
     [Requeue("j", "LeaseExpired")]),
    ("later-instance-gone", running(), {"other"}, False, False, True,
     [Requeue("j", "InstanceLost")]),
    ("instance-gone-beats-expired-lease", running(lease=EARLIER), set(), False, False, True,
     [Requeue("j", "InstanceLost")]),
    ("runner-lost", running(), {"i1"}, False, True, True, [Requeue("j", "RunnerLost")]),
    ("runner-lost-beats-instance-gone", running(), set(), False, True, True,
     [Requeue("j", "RunnerLost")]),
    ("runner-lost-at-start-still-resumed", running(), {"i1"}, True, True, True,
     [Resume("j", "i1")]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("job", "serving", "first", "lost", "pool_known", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in ORPHANS],
)
def test_orphans(
    job: JobView,
    serving: set[str],
    first: bool,
    lost: bool,
    pool_known: bool,
    expected: list[Intent],
) -> None:
    plan = recovery.plan_recovery(
        [], [job], serving=serving, lost={"j"} if lost else set(), first_dispatch=first,
        pool_known=pool_known, now=NOW,
    )  # fmt: skip
    assert list(plan.intents) == expected
    assert plan.queued == ()


HELD = [
    # (id, job in the index, deleted event came, serving, expected)
    ("running-on-serving-instance", running(), False, {"i1"}, []),
    ("absent-from-index-for-a-moment", None, False, {"i1"}, []),
    ("deleted-event-came", None, True, {"i1"}, [Halt("j", "gone")]),
    ("being-deleted", running(deleting=True), False, {"i1"}, [Halt("j", "cancelled")]),
    ("being-deleted-on-a-lost-instance", running(deleting=True), False, set(),
     [Halt("j", "cancelled")]),
    ("instance-stopped-serving", running(), False, set(), [Halt("j", "instance_lost")]),
]  # fmt: skip

DRAINING = [
    # (id, started, draining, expected)
    ("queued-ahead-on-a-draining-instance-halted", False, {"i1"}, [Halt("j", "drained")]),
    ("running-on-a-draining-instance-goes-on", True, {"i1"}, []),
    ("queued-ahead-on-a-ready-instance-waits", False, set(), []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("started", "draining", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in DRAINING],
)
def test_draining(started: bool, draining: set[str], expected: list[Intent]) -> None:
    """A prompt that has not begun on a Draining instance is taken back (placed elsewhere);
    one that runs finishes there."""
    plan = recovery.plan_recovery(
        [HeldView("j", "i1", started)], [scheduled()], serving={"i1"}, draining=draining,
        now=NOW,
    )  # fmt: skip
    assert list(plan.intents) == expected


@pytest.mark.parametrize(
    ("job", "deleted", "serving", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in HELD],
)
def test_held(
    job: JobView | None, deleted: bool, serving: set[str], expected: list[Intent]
) -> None:
    plan = recovery.plan_recovery(
        [HeldView("j", "i1")], [job] if job else [], serving=serving,
        deleted={"j"} if deleted else set(), first_dispatch=True, now=NOW,
    )  # fmt: skip
    assert list(plan.intents) == expected
    assert plan.queued == ()


UNHELD = [
    # (id, job, busy, released, expected intents, expected queued)
    ("queued-is-placed", JobView("j", "Queued"), False, False, [], ("j",)),
    ("queued-busy-waits", JobView("j", "Queued"), True, False, [], ()),
    ("deleting-with-finalizer-cancelled", JobView("j", "Queued", deleting=True, finalized=True),
     False, False, [Cancel("j")], ()),
    ("deleting-placed-with-finalizer-cancelled",
     running(deleting=True, finalized=True), False, False, [Cancel("j")], ()),
    ("deleting-without-finalizer-left-alone", JobView("j", "Queued", deleting=True), False,
     False, [], ()),
    ("deleting-busy-not-cancelled-twice", JobView("j", "Queued", deleting=True, finalized=True),
     True, False, [], ()),
    ("released-stale-running-holds-nothing", running(), False, True, [], ()),
    ("terminal-ignored", JobView("j", "Succeeded"), False, False, [], ()),
    ("requeue-in-flight-not-requeued-twice", running(lease=EARLIER), True, False, [], ()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("job", "busy", "released", "intents", "queued"),
    [pytest.param(*case[1:], id=case[0]) for case in UNHELD],
)
def test_jobs_no_runner_holds(
    job: JobView, busy: bool, released: bool, intents: list[Intent], queued: tuple[str, ...]
) -> None:
    plan = recovery.plan_recovery(
        [], [job], serving={"i1"}, busy={"j"} if busy else set(),
        released={"j"} if released else set(), now=NOW,
    )  # fmt: skip
    assert list(plan.intents) == intents
    assert plan.queued == queued


def test_a_held_job_is_never_an_orphan_nor_queued() -> None:
    plan = recovery.plan_recovery(
        [HeldView("j", "i1")], [running(lease=EARLIER)], serving={"i1"}, first_dispatch=True,
        now=NOW,
    )  # fmt: skip
    assert plan.intents == ()
    assert plan.queued == ()


def test_a_whole_pool_in_order() -> None:
    """Halts first, then the jobs in index order: cancels, then orphans; queued kept in order."""
    plan = recovery.plan_recovery(
        [HeldView("h1", "i1"), HeldView("h2", "gone")],
        [
            running("h1", deleting=True),
            running("h2", on="gone"),
            JobView("q2", "Queued"),
            running("o1", lease=EARLIER),
            JobView("d1", "Queued", deleting=True, finalized=True),
            running("o2"),
            JobView("q1", "Queued"),
        ],
        serving={"i1"},
        now=NOW,
    )
    assert list(plan.intents) == [
        Halt("h1", "cancelled"),
        Halt("h2", "instance_lost"),
        Cancel("d1"),
        Requeue("o1", "LeaseExpired"),
        Hold("o2", "i1"),
    ]
    assert plan.queued == ("q2", "q1")
