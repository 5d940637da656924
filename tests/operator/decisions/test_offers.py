"""T1: choosing offers — filters, score, cool-down, skip-list, one machine once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from warmpool.crds.common import format_time, parse_time
from warmpool.crds.gpupool import HostFailure, OfferSpec, UnavailableOffer
from warmpool.operator.decisions import offers
from warmpool.operator.decisions.offers import OfferView

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def offer(id: int = 1, **changes: Any) -> OfferView:
    base = OfferView(
        id=id,
        machine_id=100 + id,
        host_id=1000 + id,
        gpu_name="RTX 4090",
        num_gpus=1,
        gpu_ram_gb=24.0,
        price_per_hour=0.40,
        reliability=0.99,
        inet_down_mbps=800.0,
        direct_ports=4,
        verified=True,
        country="US",
        interruptible_min_bid=0.20,
    )
    return replace(base, **changes)


def spec(**fields: Any) -> OfferSpec:
    return OfferSpec.model_validate(fields)


def at(delta: timedelta) -> str:
    return format_time(NOW + delta)


@pytest.mark.parametrize(
    ("the_offer", "the_spec", "expected"),
    [
        pytest.param(offer(), spec(), True, id="defaults-accept-a-plain-offer"),
        pytest.param(offer(), spec(gpuNames=["RTX 4090"]), True, id="gpu-name-exact"),
        pytest.param(offer(), spec(gpuNames=["rtx_4090"]), True, id="gpu-name-underscore-case"),
        pytest.param(offer(), spec(gpuNames=["RTX 3090", "A100"]), False, id="gpu-name-other"),
        pytest.param(offer(gpu_ram_gb=24), spec(minGpuRamGb=24), True, id="gpu-ram-at-min"),
        pytest.param(offer(gpu_ram_gb=23.9), spec(minGpuRamGb=24), False, id="gpu-ram-below"),
        pytest.param(offer(num_gpus=2), spec(), False, id="gpu-count-differs"),
        pytest.param(offer(num_gpus=2), spec(numGpus=2), True, id="gpu-count-equal"),
        pytest.param(offer(reliability=0.98), spec(), True, id="reliability-at-default-min"),
        pytest.param(offer(reliability=0.979), spec(), False, id="reliability-below-min"),
        pytest.param(offer(direct_ports=0), spec(), False, id="no-direct-port"),
        pytest.param(offer(direct_ports=0), spec(minDirectPorts=0), True, id="ports-not-required"),
        pytest.param(offer(price_per_hour=0.5), spec(maxPricePerHour=0.5), True, id="price-at-max"),
        pytest.param(
            offer(price_per_hour=0.51), spec(maxPricePerHour=0.5), False, id="price-above"
        ),
        pytest.param(offer(inet_down_mbps=99), spec(minDownloadMbps=100), False, id="slow-link"),
        pytest.param(offer(inet_down_mbps=100), spec(minDownloadMbps=100), True, id="link-at-min"),
        pytest.param(offer(verified=False), spec(), False, id="unverified-refused"),
        pytest.param(offer(verified=False), spec(verifiedOnly=False), True, id="unverified-ok"),
        pytest.param(offer(country="DE"), spec(countries=["us", "CA"]), False, id="country-not-in"),
        pytest.param(offer(country="CA"), spec(countries=["us", "CA"]), True, id="country-in"),
        pytest.param(offer(country=""), spec(countries=["US"]), False, id="country-unknown-listed"),
        pytest.param(offer(country=""), spec(excludedCountries=["US"]), True, id="unknown-not-x"),
        pytest.param(offer(country="us"), spec(excludedCountries=["US"]), False, id="excluded"),
        pytest.param(
            offer(interruptible_min_bid=None),
            spec(interruptible=True),
            False,
            id="interruptible-needs-a-bid-offer",
        ),
        pytest.param(
            offer(interruptible_min_bid=0.2),
            spec(interruptible=True, bidPrice=0.19),
            False,
            id="bid-below-min-bid",
        ),
        pytest.param(
            offer(interruptible_min_bid=0.2, price_per_hour=0.9),
            spec(interruptible=True, bidPrice=0.25, maxPricePerHour=0.3),
            True,
            id="bid-priced-by-bid-not-dph",
        ),
        pytest.param(
            offer(interruptible_min_bid=0.35),
            spec(interruptible=True, maxPricePerHour=0.3),
            False,
            id="min-bid-above-max-price",
        ),
    ],
)
def test_matches(the_offer: OfferView, the_spec: OfferSpec, expected: bool) -> None:
    assert offers.matches(the_offer, the_spec) is expected


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        pytest.param(offer(price_per_hour=0.3), offer(price_per_hour=0.4), id="cheaper"),
        pytest.param(offer(reliability=0.999), offer(reliability=0.98), id="more-reliable"),
        pytest.param(offer(inet_down_mbps=900), offer(inet_down_mbps=100), id="faster-link"),
        pytest.param(offer(direct_ports=8), offer(direct_ports=1), id="more-ports"),
        pytest.param(
            offer(price_per_hour=0.45, reliability=0.999),
            offer(price_per_hour=0.40, reliability=0.95),
            id="reliability-outweighs-five-cents",
        ),
        pytest.param(
            offer(price_per_hour=0.30, inet_down_mbps=100),
            offer(price_per_hour=0.50, inet_down_mbps=5000),
            id="bandwidth-does-not-outweigh-twenty-cents",
        ),
    ],
)
def test_score_orders(better: OfferView, worse: OfferView) -> None:
    assert offers.score(better, spec()) > offers.score(worse, spec())


def test_score_formula_is_the_documented_one() -> None:
    o = offer(price_per_hour=0.5, reliability=0.99, inet_down_mbps=2000, direct_ports=20)
    assert offers.score(o, spec()) == pytest.approx(-0.5 - 5.0 * 0.01 + 0.10 * 1.0 + 0.002 * 10)


def test_score_uses_the_bid_for_interruptible_pools() -> None:
    o = offer(price_per_hour=2.0, interruptible_min_bid=0.2)
    assert offers.score(o, spec(interruptible=True)) > offers.score(o, spec())


def ids(chosen: list[OfferView]) -> list[int]:
    return [o.id for o in chosen]


def choose(
    candidates: list[OfferView],
    *,
    count: int = 10,
    the_spec: OfferSpec | None = None,
    ledger: list[HostFailure] | None = None,
    unavailable: list[UnavailableOffer] | None = None,
    busy: set[int] | None = None,
    stopped_disk_gb: float = 0.0,
) -> list[int]:
    return ids(
        offers.choose_offers(
            candidates,
            the_spec or spec(),
            stopped_disk_gb=stopped_disk_gb,
            count=count,
            ledger=ledger or [],
            unavailable=unavailable or [],
            busy_machines=busy or set(),
            cooldown=HOUR,
            now=NOW,
        )
    )


def failure(machine_id: int, ago: timedelta, host_id: int | None = None) -> HostFailure:
    return HostFailure(
        machine_id=machine_id, host_id=host_id, reason="LoadingTimeout", time=at(-ago)
    )


CHEAP = offer(1, price_per_hour=0.30)
MID = offer(2, price_per_hour=0.40)
DEAR = offer(3, price_per_hour=0.50)
SAME_MACHINE_AS_CHEAP = offer(4, machine_id=CHEAP.machine_id, price_per_hour=0.35)
FILTERED = offer(5, price_per_hour=0.10, verified=False)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, [1, 2, 3], id="ranked-by-score"),
        pytest.param({"count": 2}, [1, 2], id="count-caps"),
        pytest.param({"count": 0}, [], id="count-zero"),
        pytest.param({"busy": {CHEAP.machine_id}}, [2, 3], id="busy-machine-skipped"),
        pytest.param(
            {"ledger": [failure(CHEAP.machine_id, timedelta(minutes=59))]},
            [2, 3],
            id="machine-cooling-down",
        ),
        pytest.param(
            {"ledger": [failure(CHEAP.machine_id, HOUR)]},
            [1, 2, 3],
            id="cooldown-over-at-exactly-cooldown",
        ),
        pytest.param(
            {"ledger": [failure(9999, timedelta(minutes=1), host_id=MID.host_id)]},
            [1, 3],
            id="host-cooling-down-via-another-machine",
        ),
        pytest.param(
            {"ledger": [failure(9999, timedelta(minutes=1), host_id=None)]},
            [1, 2, 3],
            id="unrelated-failure",
        ),
        pytest.param(
            {"unavailable": [UnavailableOffer(offer_id=1, until=at(timedelta(seconds=1)))]},
            [2, 3],
            id="unavailable-offer-skipped",
        ),
        pytest.param(
            {"unavailable": [UnavailableOffer(offer_id=1, until=at(timedelta(0)))]},
            [1, 2, 3],
            id="unavailable-until-now-is-over",
        ),
        pytest.param({"the_spec": spec(maxPricePerHour=0.45)}, [1, 2], id="filters-apply"),
    ],
)
def test_choose_offers(kwargs: dict[str, Any], expected: list[int]) -> None:
    assert choose([DEAR, FILTERED, MID, CHEAP], **kwargs) == expected


def test_choose_never_picks_the_same_machine_twice() -> None:
    assert choose([SAME_MACHINE_AS_CHEAP, CHEAP, MID]) == [1, 2]


def test_choose_ties_break_by_offer_id() -> None:
    assert choose([offer(7, machine_id=7), offer(3, machine_id=3)]) == [3, 7]


def test_prune_ledger_decays() -> None:
    young = failure(1, timedelta(minutes=10))
    old = failure(2, HOUR)
    assert offers.prune_ledger([old, young], cooldown=HOUR, now=NOW) == [young]


def test_record_failure_prunes_and_appends() -> None:
    young = failure(1, timedelta(minutes=10))
    old = failure(2, 2 * HOUR)
    ledger = offers.record_failure(
        [old, young],
        machine_id=3,
        host_id=30,
        reason="StatusMessageFailure",
        message="no space left on device",
        cooldown=HOUR,
        now=NOW,
    )
    assert ledger == [
        young,
        HostFailure(
            machine_id=3,
            host_id=30,
            reason="StatusMessageFailure",
            message="no space left on device",
            time="2024-05-01T12:00:00Z",
        ),
    ]


def test_record_unavailable_replaces_and_expires() -> None:
    current = [
        UnavailableOffer(offer_id=1, until=at(timedelta(minutes=1))),
        UnavailableOffer(offer_id=2, until=at(-timedelta(seconds=1))),
        UnavailableOffer(offer_id=3, until=at(timedelta(minutes=2))),
    ]
    assert offers.record_unavailable(current, 1, now=NOW) == [
        UnavailableOffer(offer_id=3, until="2024-05-01T12:02:00Z"),
        UnavailableOffer(offer_id=1, until="2024-05-01T12:05:00Z"),
    ]
    assert offers.record_unavailable([], 9, now=NOW, skip=timedelta(seconds=30)) == [
        UnavailableOffer(offer_id=9, until="2024-05-01T12:00:30Z"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2024-05-01T12:00:00Z", NOW, id="zulu"),
        pytest.param("2024-05-01T14:00:00+02:00", NOW, id="offset"),
        pytest.param("2024-05-01T12:00:00", NOW, id="naive-is-utc"),
        pytest.param("2024-05-01T12:00:00.250000Z", NOW + timedelta(milliseconds=250), id="frac"),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


def test_format_time_is_utc_zulu() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=2)))
    assert format_time(local) == "2024-05-01T12:00:00Z"


def test_a_cold_tier_ranks_by_storage_too() -> None:
    """With a cold tier, an offer 1 cent/h cheaper but with storage at $0.50/GB/month (a
    stopped 250 GB disk: $0.17/h) loses to one with storage at $0.05 (about $0.02/h)."""
    cheap_gpu = offer(1, machine_id=1, price_per_hour=0.40, storage_cost=0.50)
    cheap_disk = offer(2, machine_id=2, price_per_hour=0.41, storage_cost=0.05)
    assert choose([cheap_gpu, cheap_disk]) == [1, 2]
    assert choose([cheap_gpu, cheap_disk], stopped_disk_gb=250.0) == [2, 1]
