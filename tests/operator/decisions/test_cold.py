"""T1: the cold tier — stops, starts, failed starts, maxAge, storage price, budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from warmpool.crds.gpuinstance import Phase
from warmpool.crds.gpupool import BudgetSpec, GpuPoolSpec, HostFailure
from warmpool.operator.decisions import cold, policy
from warmpool.operator.decisions.cold import ColdView, Destroy, Keep, Start, Stop
from warmpool.operator.decisions.policy import InstanceView, Release, Rent

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
S = timedelta(seconds=1)
HASH = "h1"


def pool(**cold_spec: Any) -> GpuPoolSpec:
    return GpuPoolSpec.model_validate(
        {"replicas": 0, "maxReplicas": 4, "cold": {"replicas": 1, **cold_spec}}
    )


def ready(
    name: str,
    *,
    price: float = 0.4,
    age: timedelta = 60 * MIN,
    template: str = HASH,
    machine: int | None = None,
    phase: Phase = "Ready",
    jobs: int = 0,
) -> InstanceView:
    return InstanceView(
        name=name,
        phase=phase,
        created_at=NOW - age,
        rented_at=NOW - age,
        ready_at=NOW - age + 5 * MIN,
        jobs=jobs,
        template_hash=template,
        price_per_hour=price,
        machine_id=machine if machine is not None else 100 + ord(name[0]),
    )


def stopped(
    name: str,
    *,
    ago: timedelta = 10 * MIN,
    template: str = HASH,
    machine: int | None = None,
    storage: float = 0.05,
) -> ColdView:
    return ColdView(
        name=name,
        phase="Stopped",
        stopped_at=NOW - ago,
        template_hash=template,
        machine_id=machine if machine is not None else 100 + ord(name[0]),
        storage_per_hour=storage,
        intended_status="stopped",
        cur_state="stopped",
    )


def resuming(
    name: str, *, since: timedelta, cur_state: str = "running", intended: str = "running"
) -> ColdView:
    return ColdView(
        name=name,
        phase="Resuming",
        stopped_at=NOW - 2 * since - MIN,
        template_hash=HASH,
        machine_id=100 + ord(name[0]),
        resumed_at=NOW - since,
        intended_status=intended,
        cur_state=cur_state,
    )


def idle(name: str) -> Release:
    return Release(name, "Idle", "no job")


# ------------------------------------------------------------------ storage


@pytest.mark.parametrize(
    ("cost", "disk", "hourly"),
    [
        pytest.param(0.15, 250, 0.052083, id="contract-example-rate-250GB"),
        pytest.param(0.15, 10.08, 0.0021, id="contract-10GB"),
        pytest.param(0.5, 100, 0.069444, id="dear-storage"),
        pytest.param(0.0, 250, 0.0, id="free"),
        pytest.param(-1.0, 250, 0.0, id="negative-is-zero"),
    ],
)
def test_storage_per_hour(cost: float, disk: float, hourly: float) -> None:
    assert cold.storage_per_hour(cost, disk) == pytest.approx(hourly, abs=1e-6)


def test_failed_machines_within_cooldown_only() -> None:
    ledger = [
        HostFailure(machineId=1, reason="LoadingTimeout", time="2024-05-01T11:30:00Z"),
        HostFailure(machineId=2, reason="LoadingTimeout", time="2024-05-01T10:00:00Z"),
    ]
    assert cold.failed_machines(ledger, cooldown=60 * MIN, now=NOW) == {1}


# ------------------------------------------------------------------ stops

STOPS: list[Any] = [
    pytest.param(
        {"releases": [idle("a")], "instances": [ready("a")]},
        [Stop("a", "IdleCold", "idle for 1m: kept cold")],
        [],
        id="idle-stops-while-room",
    ),
    pytest.param(
        {"releases": [idle("a")], "instances": [ready("a")], "cold": [stopped("z")]},
        [],
        [idle("a")],
        id="no-room-released",
    ),
    pytest.param(
        {"releases": [idle("a")], "instances": [ready("a")], "spec": GpuPoolSpec()},
        [],
        [idle("a")],
        id="tier-off-released",
    ),
    pytest.param(
        {"releases": [Release("a", "Drifted", "t")], "instances": [ready("a", template="old")]},
        [],
        [Release("a", "Drifted", "t")],
        id="drifted-never-cold",
    ),
    pytest.param(
        {"releases": [idle("a")], "instances": [ready("a", template="old")]},
        [],
        [idle("a")],
        id="idle-but-old-template-released",
    ),
    pytest.param(
        {"releases": [idle("a")], "instances": [ready("a", machine=7)], "unhealthy": {7}},
        [],
        [idle("a")],
        id="unhealthy-machine-released",
    ),
    pytest.param(
        {"releases": [Release("a", "Failed", "f")], "instances": [ready("a", phase="Failed")]},
        [],
        [Release("a", "Failed", "f")],
        id="failed-released",
    ),
    pytest.param(
        {"releases": [idle("a")], "instances": [ready("a")], "at_cap": True},
        [],
        [idle("a")],
        id="at-budget-cap-released",
    ),
    pytest.param(
        {
            "releases": [idle("a"), idle("b"), idle("c")],
            "instances": [ready("a", price=0.6), ready("b", price=0.4), ready("c", price=0.5)],
            "spec": pool(replicas=2),
        },
        [
            Stop("b", "IdleCold", "idle for 1m: kept cold"),
            Stop("c", "IdleCold", "idle for 1m: kept cold"),
        ],
        [idle("a")],
        id="cheapest-kept-cold-first",
    ),
    pytest.param(
        {
            "releases": [idle("a"), idle("b")],
            "instances": [ready("a", age=90 * MIN), ready("b", age=30 * MIN)],
        },
        [Stop("b", "IdleCold", "idle for 1m: kept cold")],
        [idle("a")],
        id="same-price-newest-kept",
    ),
    pytest.param(
        {
            "releases": [Release("r", "Surplus", "s")],
            "instances": [ready("r", phase="Resuming")],
            "cold": [resuming("r", since=20 * S), stopped("z")],
        },
        [Stop("r", "ResumeSurplus", "started but no longer needed")],
        [],
        id="hedge-resume-that-lost-stops-again",
    ),
    pytest.param(
        {
            "releases": [Release("p", "Surplus", "s")],
            "instances": [ready("p", phase="Starting")],
            "cold": [stopped("z")],
        },
        [],
        [Release("p", "Surplus", "s")],
        id="fresh-surplus-released-when-tier-full",
    ),
]

FILL = Keep("p", "ColdFill", "not needed now: boots on to refill the tier")


KEEPS: list[Any] = [
    pytest.param(
        {"releases": [Release("p", "Surplus", "s")], "instances": [ready("p", phase="Starting")]},
        [],
        [FILL],
        [],
        id="fresh-surplus-refills-the-tier",
    ),
    pytest.param(
        {
            "releases": [Release("q", "Surplus", "s"), Release("p", "Surplus", "s")],
            "instances": [ready("q", phase="Provisioning"), ready("p", phase="Starting")],
        },
        [],
        [FILL],
        [Release("q", "Surplus", "s")],
        id="most-progressed-refills",
    ),
    pytest.param(
        {
            "releases": [Release("p", "Surplus", "s"), idle("a")],
            "instances": [ready("p", phase="Starting"), ready("a")],
        },
        [],
        [FILL],
        [idle("a")],
        id="refill-takes-the-room",
    ),
    pytest.param(
        {
            "releases": [Release("p", "Surplus", "s")],
            "instances": [ready("p", phase="Starting", template="old")],
        },
        [],
        [],
        [Release("p", "Surplus", "s")],
        id="drifted-fresh-not-kept",
    ),
    pytest.param(
        {
            "releases": [Release("p", "Surplus", "s")],
            "instances": [ready("p", phase="Starting")],
            "at_cap": True,
        },
        [],
        [],
        [Release("p", "Surplus", "s")],
        id="at-cap-not-kept",
    ),
]


@pytest.mark.parametrize(("case", "stops", "keeps", "releases"), KEEPS)
def test_plan_stops_keeps(
    case: dict[str, Any], stops: list[Stop], keeps: list[Keep], releases: list[Release]
) -> None:
    got = cold.plan_stops(
        case["releases"],
        case["instances"],
        case.get("cold", []),
        spec=pool(),
        template_hash=HASH,
        at_cap=case.get("at_cap", False),
    )
    assert got == (stops, keeps, releases)


@pytest.mark.parametrize(("case", "stops", "releases"), STOPS)
def test_plan_stops(case: dict[str, Any], stops: list[Stop], releases: list[Release]) -> None:
    got = cold.plan_stops(
        case["releases"],
        case["instances"],
        case.get("cold", []),
        spec=case.get("spec", pool()),
        template_hash=HASH,
        unhealthy_machines=case.get("unhealthy", ()),
        at_cap=case.get("at_cap", False),
    )
    assert got == (stops, [], releases)


# ------------------------------------------------------------------ starts

STARTS: list[Any] = [
    pytest.param(
        {"rents": [Rent("Demand", message="jobs")], "cold": [stopped("a")]},
        [Start("a", "Resume", "serves a Demand rental: jobs")],
        [],
        id="demand-starts-cold",
    ),
    pytest.param(
        {
            "rents": [Rent("Demand", message="jobs"), Rent("Hedge", message="h")],
            "cold": [stopped("a", ago=50 * MIN), stopped("b", ago=5 * MIN), stopped("c")],
        },
        [
            Start("b", "Resume", "serves a Demand rental: jobs"),
            Start("c", "Resume", "serves a Hedge rental: h"),
        ],
        [],
        id="newest-first",
    ),
    pytest.param(
        {"rents": [Rent("Demand"), Rent("Hedge")], "cold": [stopped("a")]},
        [Start("a", "Resume", "serves a Demand rental")],
        [Rent("Hedge")],
        id="more-rents-than-cold-rent-fresh",
    ),
    pytest.param(
        {"rents": [Rent("Demand")], "cold": [stopped("a", machine=7)], "unhealthy": {7}},
        [],
        [Rent("Demand")],
        id="unhealthy-machine-not-started",
    ),
    pytest.param(
        {"rents": [Rent("Demand")], "cold": [stopped("a", template="old")]},
        [],
        [Rent("Demand")],
        id="drifted-not-started",
    ),
    pytest.param(
        {"rents": [Rent("Demand")], "cold": [resuming("a", since=10 * S)]},
        [],
        [Rent("Demand")],
        id="resuming-not-started-twice",
    ),
    pytest.param(
        {"rents": [Rent("Demand")], "cold": [stopped("a")], "excluded": {"a"}},
        [],
        [Rent("Demand")],
        id="destroyed-this-round-not-started",
    ),
    pytest.param({"rents": [], "cold": [stopped("a")]}, [], [], id="no-demand-nothing"),
]


@pytest.mark.parametrize(("case", "starts", "rents"), STARTS)
def test_plan_starts(case: dict[str, Any], starts: list[Start], rents: list[Rent]) -> None:
    got = cold.plan_starts(
        case["rents"],
        case["cold"],
        template_hash=HASH,
        unhealthy_machines=case.get("unhealthy", ()),
        excluded=case.get("excluded", ()),
    )
    assert got == (starts, rents)


# ------------------------------------------------------------------ check_cold

CHECKS: list[Any] = [
    pytest.param({"cold": [stopped("a", ago=10 * MIN)]}, [], id="young-kept"),
    pytest.param(
        {"cold": [stopped("a", ago=24 * 60 * MIN)]},
        [Destroy("a", "MaxAge", "stopped for 86400s")],
        id="max-age-expired",
    ),
    pytest.param(
        {"cold": [stopped("a", ago=61 * MIN)], "spec": pool(maxAge="1h")},
        [Destroy("a", "MaxAge", "stopped for 3660s")],
        id="custom-max-age",
    ),
    pytest.param(
        {"cold": [stopped("a", template="old")]},
        [Destroy("a", "Drifted", "template old differs from h1")],
        id="drifted-destroyed",
    ),
    pytest.param(
        {"cold": [stopped("a", ago=30 * MIN), stopped("b", ago=5 * MIN)]},
        [Destroy("a", "ColdSurplus", "above cold.replicas 1")],
        id="above-replicas-oldest-destroyed",
    ),
    pytest.param(
        {"cold": [stopped("a")], "spec": GpuPoolSpec()},
        [Destroy("a", "ColdSurplus", "above cold.replicas 0")],
        id="tier-turned-off",
    ),
    pytest.param(
        {"cold": [stopped("a")], "spec": GpuPoolSpec(paused=True)},
        [Destroy("a", "Paused", "the pool is paused")],
        id="paused",
    ),
    pytest.param({"cold": [resuming("a", since=60 * S)]}, [], id="resuming-in-time"),
    pytest.param(
        {"cold": [resuming("a", since=180 * S)]},
        [Destroy("a", "ResumeTimeout", "not ready 180s after the start (resumeTimeout 3m)", True)],
        id="resume-timeout-counts-as-failure",
    ),
    pytest.param(
        {"cold": [resuming("a", since=20 * S, cur_state="stopped")]},
        [],
        id="scheduling-within-grace",
    ),
    pytest.param(
        {"cold": [resuming("a", since=30 * S, cur_state="stopped")]},
        [Destroy("a", "GpuTaken", "GPU taken: still scheduling after 30s", False)],
        id="gpu-taken-not-a-failure",
    ),
    pytest.param(
        {
            "cold": [resuming("a", since=15 * S, cur_state="stopped")],
            "spec": pool(resumeTimeout="10s"),
        },
        [Destroy("a", "GpuTaken", "GPU taken: still scheduling after 15s", False)],
        id="gpu-taken-short-timeout",
    ),
    pytest.param(
        {"cold": [resuming("a", since=10 * S), stopped("b"), stopped("c", ago=MIN)]},
        [Destroy("b", "ColdSurplus", "above cold.replicas 1")],
        id="resuming-not-counted-in-surplus",
    ),
]


@pytest.mark.parametrize(("case", "destroys"), CHECKS)
def test_check_cold(case: dict[str, Any], destroys: list[Destroy]) -> None:
    got = cold.check_cold(case["cold"], spec=case.get("spec", pool()), template_hash=HASH, now=NOW)
    assert got == destroys


def test_next_deadline() -> None:
    spec = pool(maxAge="2h")
    assert cold.next_deadline([], spec=spec) is None
    assert cold.next_deadline([stopped("a", ago=MIN)], spec=spec) == NOW + 119 * MIN
    assert cold.next_deadline([stopped("a"), resuming("r", since=10 * S)], spec=spec) == (
        NOW + 20 * S
    )


# ------------------------------------------------------------------ budget

BUDGET: list[Any] = [
    pytest.param({}, {"warm": 0.4, "spent": 1.0}, [], id="no-caps"),
    pytest.param(
        {"maxHourlySpend": 1.0}, {"warm": 0.9, "spent": 0.0}, [], id="hourly-fits-with-storage"
    ),
    pytest.param(
        {"maxHourlySpend": 1.0},
        {"warm": 0.96, "spent": 0.0},
        [Destroy("b", "BudgetCap", "at maxHourlySpend: storage is not kept")],
        id="hourly-over-dearest-storage-first",
    ),
    pytest.param(
        {"maxHourlySpend": 1.0},
        {"warm": 1.0, "spent": 0.0},
        [
            Destroy("b", "BudgetCap", "at maxHourlySpend: storage is not kept"),
            Destroy("a", "BudgetCap", "at maxHourlySpend: storage is not kept"),
        ],
        id="hourly-at-cap-all-cold-go",
    ),
    pytest.param(
        {"maxDailySpend": 10.0},
        {"warm": 0.0, "spent": 10.0},
        [
            Destroy("b", "BudgetCap", "at maxDailySpend: storage is not kept"),
            Destroy("a", "BudgetCap", "at maxDailySpend: storage is not kept"),
        ],
        id="daily-cap-reached",
    ),
    pytest.param(
        {"maxDailySpend": 10.0},
        {"warm": 0.5, "spent": 9.44},
        [Destroy("b", "BudgetCap", "at maxDailySpend: storage is not kept")],
        id="daily-projection-over",
    ),
    pytest.param({"maxDailySpend": 10.0}, {"warm": 0.5, "spent": 9.0}, [], id="daily-fits"),
]


@pytest.mark.parametrize(("caps", "state", "destroys"), BUDGET)
def test_budget_cuts_cold_before_warm(
    caps: dict[str, float], state: dict[str, float], destroys: list[Destroy]
) -> None:
    fleet = [stopped("a", storage=0.02), stopped("b", storage=0.05), resuming("r", since=10 * S)]
    got = cold.budget_cuts(
        fleet,
        caps=BudgetSpec.model_validate(caps),
        warm_hourly=state["warm"],
        spend_today=state["spent"],
        now=NOW,
    )
    assert got == destroys


def test_storage_fits_follows_may_rent() -> None:
    caps = BudgetSpec(maxHourlySpend=1.0)
    assert cold.storage_fits(0.05, caps, current_hourly=0.9, spend_today=0.0, now=NOW)
    assert not cold.storage_fits(0.05, caps, current_hourly=0.99, spend_today=0.0, now=NOW)


# ------------------------------------------------------------------ idle timeout with room


def idle_for(name: str, idled: timedelta, **kw: Any) -> InstanceView:
    """A Ready instance idle for ``idled`` (``ready`` is Ready five minutes after its rental)."""
    return ready(name, age=idled + 5 * MIN, **kw)


@pytest.mark.parametrize(
    ("cold_spec", "colds", "idle_timeout"),
    [
        pytest.param({}, [], "1m", id="default-a-minute"),
        pytest.param({"idleTimeout": "4m"}, [], "4m", id="the-pools-own-turns-it-off"),
        pytest.param({"idleTimeout": "1m"}, [], "1m", id="room-stops-sooner"),
        pytest.param({"idleTimeout": "1m", "replicas": 2}, [stopped("z")], "1m", id="some-room"),
        pytest.param({"idleTimeout": "1m"}, [stopped("z")], "4m", id="full-the-pools-own"),
        pytest.param({"idleTimeout": "1m"}, [resuming("r", since=5 * S)], "4m", id="resuming-fill"),
        pytest.param({"idleTimeout": "10m"}, [], "4m", id="never-longer-than-the-pools"),
        pytest.param({"idleTimeout": "1m", "replicas": 0}, [], "4m", id="tier-off"),
    ],
)
def test_planning_spec(cold_spec: dict[str, Any], colds: list[ColdView], idle_timeout: str) -> None:
    spec = pool(**cold_spec)
    planned = cold.planning_spec(spec, colds)
    assert planned.idle_timeout == idle_timeout
    assert planned.model_copy(update={"idle_timeout": spec.idle_timeout}) == spec


SOONER: list[Any] = [
    pytest.param(
        {"releases": [idle("a")], "instances": [idle_for("a", 90 * S)]},
        [Stop("a", "IdleCold", "idle for 1m: kept cold")],
        [],
        id="room-stopped-after-the-tiers-timeout",
    ),
    pytest.param(
        {"releases": [idle("a")], "instances": [idle_for("a", 90 * S)], "cold": [stopped("z")]},
        [],
        [],
        id="no-room-kept-until-the-pools-timeout",
    ),
    pytest.param(
        {"releases": [idle("a")], "instances": [idle_for("a", 5 * MIN)], "cold": [stopped("z")]},
        [],
        [idle("a")],
        id="no-room-released-after-the-pools-timeout",
    ),
    pytest.param(
        {
            "releases": [idle("a"), idle("b")],
            "instances": [idle_for("a", 90 * S, price=0.3), idle_for("b", 90 * S, price=0.5)],
        },
        [Stop("a", "IdleCold", "idle for 1m: kept cold")],
        [],
        id="one-room-the-other-waits",
    ),
    pytest.param(
        {
            "releases": [Release("f", "Failed", "f"), Release("p", "Surplus", "s")],
            "instances": [ready("f", phase="Failed"), ready("p", phase="Pending")],
            "cold": [stopped("z")],
        },
        [],
        [Release("f", "Failed", "f"), Release("p", "Surplus", "s")],
        id="other-releases-unchanged",
    ),
]


@pytest.mark.parametrize(("case", "stops", "releases"), SOONER)
def test_plan_stops_with_the_tiers_idle_timeout(
    case: dict[str, Any], stops: list[Stop], releases: list[Release]
) -> None:
    got = cold.plan_stops(
        case["releases"],
        case["instances"],
        case.get("cold", []),
        spec=pool(idleTimeout="1m"),
        template_hash=HASH,
        now=NOW,
    )
    assert got == (stops, [], releases)


def test_plan_stops_without_now_keeps_every_release() -> None:
    """Without ``now`` nothing is held back (a caller planning with the pool's own timeout)."""
    got = cold.plan_stops(
        [idle("a")],
        [idle_for("a", 90 * S)],
        [stopped("z")],
        spec=pool(idleTimeout="1m"),
        template_hash=HASH,
    )
    assert got == ([], [], [idle("a")])


# ------------------------------------------------------------------ races

RACE = "a fresh rental is still booting: a start is Ready sooner"


def plan_of(allowance: int, releases: list[Release] | None = None) -> policy.PoolPlan:
    """A plan that wants ``allowance`` active; ``releases``: what is left to release."""
    return policy.PoolPlan(releases=releases or [], desired=1, allowance=allowance)


RACES: list[Any] = [
    pytest.param(
        {
            "plan": plan_of(4),
            "instances": [ready("p", phase="Provisioning")],
            "cold": [stopped("a", ago=50 * MIN), stopped("b", ago=5 * MIN), stopped("c")],
        },
        [Start("b", "Race", RACE), Start("c", "Race", RACE), Start("a", "Race", RACE)],
        id="cold-start-behind-a-fresh-rental-starts-the-tier",
    ),
    pytest.param(
        {
            "plan": plan_of(2),
            "instances": [ready("r", jobs=1), ready("p", phase="Starting")],
            "cold": [stopped("a"), stopped("b")],
        },
        [Start("a", "Race", RACE)],
        id="busy-one-plus-fresh-starts-one",
    ),
    pytest.param(
        {"plan": plan_of(4), "instances": [], "cold": [stopped("a")]},
        [],
        id="no-fresh-rental-no-race",
    ),
    pytest.param(
        {
            "plan": plan_of(2),
            "instances": [ready("p", phase="Starting"), ready("r", phase="Resuming")],
            "cold": [resuming("r", since=10 * S), stopped("a")],
            "starts": [Start("b", "Resume")],
        },
        [],
        id="starts-under-way-count",
    ),
    pytest.param(
        {
            "plan": plan_of(3),
            "instances": [ready("p", phase="Starting")],
            "cold": [stopped("a"), stopped("b", ago=MIN)],
            "starts": [Start("b", "Resume")],
        },
        [Start("a", "Race", RACE)],
        id="not-started-twice",
    ),
    pytest.param(
        {
            "plan": plan_of(1, [Release("p", "Surplus", "s")]),
            "instances": [ready("p", phase="Starting")],
            "cold": [stopped("a")],
        },
        [],
        id="released-fresh-rental-not-raced",
    ),
    pytest.param(
        {
            "plan": plan_of(1),
            "instances": [ready("p", phase="Starting", template="old")],
            "cold": [stopped("a")],
        },
        [],
        id="drifted-fresh-rental-not-raced",
    ),
    pytest.param(
        {
            "plan": plan_of(1),
            "instances": [ready("p", phase="Starting")],
            "cold": [stopped("a", machine=7), stopped("b", template="old")],
            "unhealthy": {7},
        },
        [],
        id="only-healthy-current-ones-race",
    ),
    pytest.param(
        {"plan": plan_of(0), "instances": [ready("p", phase="Starting")], "cold": [stopped("a")]},
        [],
        id="nothing-wanted",
    ),
]


@pytest.mark.parametrize(("case", "starts"), RACES)
def test_plan_races(case: dict[str, Any], starts: list[Start]) -> None:
    got = cold.plan_races(
        case["plan"],
        case["instances"],
        case["cold"],
        starts=case.get("starts", []),
        releases=case["plan"].releases,
        template_hash=HASH,
        unhealthy_machines=case.get("unhealthy", ()),
    )
    assert got == starts
