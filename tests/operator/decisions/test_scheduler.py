"""T1: job placement (priority, age, affinity, exclusions), leases, failure verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warmpool.operator.decisions import scheduler
from warmpool.operator.decisions.scheduler import (
    Assignment,
    HeldJob,
    Placement,
    QueuedJob,
    SlotView,
    Verdict,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
A, B, C = "a.safetensors", "b.safetensors", "c.safetensors"


def job(
    name: str,
    *,
    age: int = 0,
    priority: int = 0,
    seq: int = 0,
    ckpt: str = "",
    hosts: tuple[int, ...] = (),
    gpus: tuple[str, ...] = (),
) -> QueuedJob:
    """A queued job ``age`` seconds old."""
    return QueuedJob(name, NOW - timedelta(seconds=age), priority, seq, ckpt,
                     frozenset(hosts), frozenset(gpus))  # fmt: skip


def inst(
    name: str, free: int = 1, *, ckpt: str = "", machine: int | None = None, gpu: str = ""
) -> SlotView:
    return SlotView(name, free, ckpt, machine, gpu)


def pairs(placement: Placement) -> list[tuple[str, str]]:
    return [(a.job, a.instance) for a in placement.assignments]


@pytest.mark.parametrize(
    ("jobs", "instances", "expected", "waiting"),
    [
        pytest.param([], [inst("i1")], [], [], id="nothing-queued"),
        pytest.param([job("j1")], [], [], ["j1"], id="no-instance-waits"),
        pytest.param([job("j1")], [inst("i1", 0)], [], ["j1"], id="no-free-slot-waits"),
        pytest.param([job("j1")], [inst("i1")], [("j1", "i1")], [], id="one-on-one"),
        pytest.param(
            [job("old", age=10), job("new", age=1)], [inst("i1")],
            [("old", "i1")], ["new"], id="older-first",
        ),
        pytest.param(
            [job("low", age=10), job("high", priority=5)], [inst("i1")],
            [("high", "i1")], ["low"], id="priority-beats-age",
        ),
        pytest.param(
            [job("neg", priority=-1, age=100), job("zero")], [inst("i1")],
            [("zero", "i1")], ["neg"], id="negative-priority-last",
        ),
        pytest.param(
            [job("second", seq=2), job("first", seq=1)], [inst("i1")],
            [("first", "i1")], ["second"], id="same-age-first-seen-wins",
        ),
        pytest.param(
            [job("b"), job("a")], [inst("i1")], [("a", "i1")], ["b"], id="same-everything-name",
        ),
        pytest.param(
            [job("j1"), job("j2"), job("j3")], [inst("i1", 2)],
            [("j1", "i1"), ("j2", "i1")], ["j3"], id="concurrency-two",
        ),
        pytest.param(
            [job("j1"), job("j2")], [inst("i1", 2), inst("i2", 2)],
            [("j1", "i1"), ("j2", "i2")], [], id="spreads-over-emptiest",
        ),
        pytest.param(
            [job("j1")], [inst("i1", 1), inst("i2", 3)], [("j1", "i2")], [],
            id="emptiest-first",
        ),
        pytest.param(
            [job("j1", hosts=(7,))], [inst("i1", machine=7)], [], ["j1"], id="excluded-host",
        ),
        pytest.param(
            [job("j1", hosts=(7,))], [inst("i1", machine=7), inst("i2", machine=8)],
            [("j1", "i2")], [], id="excluded-host-goes-elsewhere",
        ),
        pytest.param(
            [job("j1", gpus=("RTX 3090",))],
            [inst("i1", gpu="RTX 3090"), inst("i2", gpu="RTX 4090")],
            [("j1", "i2")], [], id="excluded-gpu-model",
        ),
        pytest.param(
            [job("hi", priority=9, hosts=(1,)), job("lo")], [inst("i1", machine=1)],
            [("lo", "i1")], ["hi"], id="excluded-high-does-not-block-low",
        ),
    ],
)  # fmt: skip
def test_plan_placement(
    jobs: list[QueuedJob], instances: list[SlotView], expected: list[tuple[str, str]],
    waiting: list[str],
) -> None:  # fmt: skip
    placement = scheduler.plan_placement(jobs, instances)
    assert pairs(placement) == expected
    assert list(placement.waiting) == waiting


@pytest.mark.parametrize(
    ("jobs", "instances", "expected"),
    [
        pytest.param(
            [job("j1", ckpt=A)], [inst("i1", ckpt=B), inst("i2", ckpt=A)],
            [Assignment("j1", "i2", True)], id="prefers-loaded-checkpoint",
        ),
        pytest.param(
            [job("j1", ckpt=A)], [inst("i1", 1, ckpt=B), inst("i2", 3, ckpt=A)],
            [Assignment("j1", "i2", True)], id="affinity-before-emptiest",
        ),
        pytest.param(
            [job("j1", ckpt=C)], [inst("i1", ckpt=B)], [Assignment("j1", "i1", False)],
            id="no-affinity-still-runs-now",
        ),
        pytest.param(
            [job("hi", priority=5, ckpt=C), job("lo", ckpt=A)],
            [inst("i1", ckpt=A)],
            [Assignment("hi", "i1", False)], id="affinity-never-jumps-priority",
        ),
        pytest.param(
            [job("j1", ckpt=C, age=2), job("j2", ckpt=A, age=1)],
            [inst("i1", ckpt=A), inst("i2", ckpt=B)],
            [Assignment("j1", "i2", False), Assignment("j2", "i1", True)],
            id="keeps-a-checkpoint-a-later-job-wants",
        ),
        pytest.param(
            [job("j1", ckpt=A, age=2), job("j2", ckpt=C, age=1, hosts=(1,))],
            [inst("i1", ckpt=A, machine=1), inst("i2", ckpt=B, machine=2)],
            [Assignment("j1", "i1", True), Assignment("j2", "i2", False)],
            id="affinity-when-nobody-starves",
        ),
        pytest.param(
            [job("j1", ckpt=A, age=2), job("j2", ckpt=C, age=1, hosts=(1,))],
            [inst("i1", ckpt=B, machine=1), inst("i2", ckpt=A, machine=2)],
            [Assignment("j1", "i1", False), Assignment("j2", "i2", False)],
            id="gives-up-affinity-so-a-constrained-job-runs",
        ),
        pytest.param(
            [job("j1", ckpt=A, age=3), job("j2", ckpt=A, age=2)],
            [inst("i1", ckpt=B), inst("i2", ckpt=A)],
            [Assignment("j1", "i2", True), Assignment("j2", "i1", False)],
            id="second-same-checkpoint-takes-the-other",
        ),
        pytest.param(
            [job("j1", ckpt=A, age=3), job("j2", ckpt=A, age=2)],
            [inst("i1", ckpt=B), inst("i2", 2, ckpt=A)],
            [Assignment("j1", "i2", True), Assignment("j2", "i2", True)],
            id="both-on-the-affine-instance-with-two-slots",
        ),
        pytest.param(
            [job("j1", ckpt=A, age=2), job("j2", ckpt=A, age=1)],
            [inst("i1", 2)],
            [Assignment("j1", "i1", False), Assignment("j2", "i1", True)],
            id="placed-job-loads-the-checkpoint",
        ),
    ],
)  # fmt: skip
def test_affinity(
    jobs: list[QueuedJob], instances: list[SlotView], expected: list[Assignment]
) -> None:
    assert list(scheduler.plan_placement(jobs, instances).assignments) == expected


def test_many_jobs_fill_every_slot_in_priority_order() -> None:
    jobs = [job(f"j{i:03}", priority=i % 3, age=1000 - i) for i in range(100)]
    instances = [inst(f"i{k}", 2) for k in range(5)]
    placement = scheduler.plan_placement(jobs, instances)
    placed = [a.job for a in placement.assignments]
    assert len(placed) == 10
    assert len(placement.waiting) == 90
    expected = sorted(jobs, key=scheduler.job_order)[:10]
    assert placed == [j.name for j in expected]
    assert all(j.priority == 2 for j in expected)
    per_instance = {i.name: sum(a.instance == i.name for a in placement.assignments)
                    for i in instances}  # fmt: skip
    assert set(per_instance.values()) == {2}


@pytest.mark.parametrize(
    ("concurrency", "held", "expected"),
    [
        pytest.param(1, 0, 1, id="idle"),
        pytest.param(1, 1, 0, id="full"),
        pytest.param(4, 1, 3, id="partly"),
        pytest.param(2, 5, 0, id="over-full-never-negative"),
    ],
)
def test_free_slots(concurrency: int, held: int, expected: int) -> None:
    assert scheduler.free_slots(concurrency, held) == expected


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        pytest.param([], [], id="none"),
        pytest.param([HeldJob("j1", NOW + timedelta(seconds=1))], [], id="live"),
        pytest.param([HeldJob("j1", NOW)], ["j1"], id="expires-now"),
        pytest.param([HeldJob("j1", NOW - timedelta(minutes=1))], ["j1"], id="expired"),
        pytest.param([HeldJob("j1", None)], ["j1"], id="no-lease-recorded"),
        pytest.param(
            [HeldJob("a", NOW - timedelta(seconds=1)), HeldJob("b", NOW + timedelta(hours=1))],
            ["a"], id="mixed",
        ),
    ],
)  # fmt: skip
def test_expired_leases(held: list[HeldJob], expected: list[str]) -> None:
    assert scheduler.expired_leases(held, now=NOW) == expected


GPUS = ("RTX 4090", "RTX 3090")


@pytest.mark.parametrize(
    ("kind", "attempts", "gpus", "excluded", "expected"),
    [
        pytest.param("validation", 1, GPUS, (), Verdict(False, "InvalidGraph"), id="invalid"),
        pytest.param("execution", 1, GPUS, (), Verdict(False, "ExecutionFailed"), id="node"),
        pytest.param("timeout", 1, GPUS, (), Verdict(False, "Timeout"), id="timeout"),
        pytest.param(
            "oom", 1, GPUS, (), Verdict(True, "OutOfMemory", exclude_gpu=True),
            id="oom-other-model-retries",
        ),
        pytest.param(
            "oom", 1, ("RTX 4090",), (), Verdict(False, "OutOfMemory", exclude_gpu=True),
            id="oom-single-model-fails",
        ),
        pytest.param(
            "oom", 1, GPUS, ("RTX 3090",), Verdict(False, "OutOfMemory", exclude_gpu=True),
            id="oom-other-model-already-failed",
        ),
        pytest.param(
            "oom", 3, GPUS, (), Verdict(False, "OutOfMemory", exclude_gpu=True),
            id="oom-out-of-attempts",
        ),
        pytest.param(
            "stalled", 1, GPUS, (),
            Verdict(True, "Stalled", exclude_host=True, record_host=True), id="stall-retries",
        ),
        pytest.param(
            "stalled", 3, GPUS, (),
            Verdict(False, "Stalled", exclude_host=True, record_host=True),
            id="stall-out-of-attempts",
        ),
        pytest.param(
            "bad_output", 2, GPUS, (),
            Verdict(True, "BadOutput", exclude_host=True, record_host=True), id="bad-output",
        ),
        pytest.param(
            "instance_lost", 1, GPUS, (), Verdict(True, "InstanceLost", exclude_host=True),
            id="lost",
        ),
        pytest.param(
            "instance_lost", 3, GPUS, (), Verdict(False, "InstanceLost", exclude_host=True),
            id="lost-out-of-attempts",
        ),
        pytest.param(
            "host_fault", 1, GPUS, (),
            Verdict(True, "HostFault", exclude_host=True, record_host=True),
            id="host-fault-retried-elsewhere",
        ),
        pytest.param(
            "host_fault", 3, GPUS, (),
            Verdict(False, "HostFault", exclude_host=True, record_host=True),
            id="host-fault-out-of-attempts",
        ),
        pytest.param("interrupted", 1, GPUS, (), Verdict(True, "Interrupted"), id="interrupted"),
        pytest.param(
            "store_unavailable", 1, GPUS, (), Verdict(True, "ArtifactStoreUnavailable"),
            id="artifact-store-down-retried-anywhere",
        ),
        pytest.param(
            "queue_wait", 1, GPUS, (), Verdict(True, "QueueWaitExceeded"),
            id="queue-wait-retried-anywhere-host-not-blamed",
        ),
        pytest.param(
            "queue_wait", 3, GPUS, (), Verdict(False, "QueueWaitExceeded"),
            id="queue-wait-out-of-attempts",
        ),
    ],
)  # fmt: skip
def test_decide_failure(
    kind: scheduler.FailureKind,
    attempts: int,
    gpus: tuple[str, ...],
    excluded: tuple[str, ...],
    expected: Verdict,
) -> None:
    verdict = scheduler.decide_failure(
        kind, attempts=attempts, max_attempts=3, gpu_name="RTX 4090", pool_gpus=gpus,
        excluded_gpus=excluded,
    )  # fmt: skip
    assert verdict == expected


@pytest.mark.parametrize(
    ("exception_type", "message", "expected"),
    [
        pytest.param("OSError", "[Errno 28] No space left on device: '/workspace/ComfyUI/output'",
                     "host_fault", id="disk-full"),
        pytest.param("OSError", "[Errno 5] Input/output error", "host_fault", id="disk-failing"),
        pytest.param("OSError", "[Errno 30] Read-only file system: 'x.png'", "host_fault",
                     id="disk-read-only"),
        pytest.param("RuntimeError", "CUDA error: an illegal memory access was encountered",
                     "host_fault", id="cuda-fault"),
        pytest.param("RuntimeError", "mat1 and mat2 shapes cannot be multiplied (77x768)",
                     "execution", id="the-graph-itself"),
        pytest.param("FileNotFoundError", "[Errno 2] No such file or directory: 'lora.pt'",
                     "execution", id="missing-file-is-the-job"),
        pytest.param("ValueError", "cudagraph capture size 5", "execution",
                     id="cuda-word-alone-is-not-a-fault"),
    ],
)  # fmt: skip
def test_execution_failure_tells_the_machine_from_the_job(
    exception_type: str, message: str, expected: str
) -> None:
    """Regression (chaos day): a job whose SaveImage hit the rented machine's full disk
    failed for good (``ExecutionFailed``) instead of moving to another machine."""
    assert scheduler.execution_failure(exception_type, message) == expected


def ahead(name: str, free: int = 0, places: int = 1, *, ckpt: str = "") -> SlotView:
    """An instance with ``free`` slots and ``places`` queue-ahead places."""
    return SlotView(name, free, ckpt, ahead=places)


@pytest.mark.parametrize(
    ("jobs", "instances", "expected", "waiting"),
    [
        pytest.param([job("j1")], [ahead("i1")], [("j1", "i1", True)], [],
                     id="busy-instance-takes-one-behind"),
        pytest.param([job("j1"), job("j2", age=-1)], [ahead("i1"), ahead("i2", free=1)],
                     [("j1", "i2", False), ("j2", "i1", True)], [],
                     id="a-free-slot-first-then-a-place-behind"),
        pytest.param([job("j1", ckpt=B)], [ahead("a", ckpt=A), ahead("b", ckpt=B)],
                     [("j1", "b", True)], [], id="behind-the-same-checkpoint"),
        pytest.param([job(f"j{n}", age=-n) for n in range(4)], [ahead("i1"), ahead("i2")],
                     [("j0", "i1", True), ("j1", "i2", True)], ["j2", "j3"],
                     id="places-exhausted-the-rest-waits"),
        pytest.param([job("j1", hosts=(7,))], [SlotView("i1", 0, machine_id=7, ahead=1)],
                     [], ["j1"], id="exclusions-apply-behind-too"),
    ],
)  # fmt: skip
def test_queue_ahead(
    jobs: list[QueuedJob],
    instances: list[SlotView],
    expected: list[tuple[str, str, bool]],
    waiting: list[str],
) -> None:
    placement = scheduler.plan_placement(jobs, instances)
    assert [(a.job, a.instance, a.behind) for a in placement.assignments] == expected
    assert list(placement.waiting) == waiting
