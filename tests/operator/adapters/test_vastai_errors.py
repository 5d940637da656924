"""The status → error table, retries, Retry-After, backoff, deadline, redaction, metrics."""

from __future__ import annotations

import email.utils
import logging
import time
from typing import Any

import httpx
import pytest
import respx
from prometheus_client import REGISTRY
from pydantic import SecretStr

from warmpool.operator import errors
from warmpool.operator.adapters import vastai

REQUEST = vastai.CreateInstanceRequest(image="img", disk_gb=10, label="warmpool.a.b.c")


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, {"error": "invalid_args", "msg": "bad"}, errors.VastaiBadRequestError),
        (401, {"error": "auth_error", "msg": "Invalid user key"}, errors.VastaiAuthError),
        (403, {"error": "not_authorized"}, errors.VastaiAuthError),
        (404, {"msg": "Invalid user key"}, errors.VastaiAuthError),
        (404, {"error": "not_found"}, errors.VastaiNotFoundError),
        (410, {"error": "gone"}, errors.VastaiNotFoundError),
        (422, {"msg": "?"}, errors.VastaiBadRequestError),
    ],
    ids=["400", "401", "403", "404-bad-key", "404", "410", "422"],
)
async def test_permanent_errors_are_not_retried(
    vastai_client: vastai.VastaiClient,
    vastai_mock: respx.MockRouter,
    status: int,
    body: dict[str, Any],
    error: type[errors.VastaiError],
) -> None:
    route = vastai_mock.post("/api/v0/bundles/").respond(status, json=body)
    with pytest.raises(error) as info:
        await vastai_client.search_offers({})
    assert type(info.value) is error
    assert info.value.status == status
    assert info.value.endpoint == vastai.SEARCH
    assert route.call_count == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_retried_then_succeeds(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter, fake_time: Any, status: int
) -> None:
    route = vastai_mock.post("/api/v0/bundles/").mock(
        side_effect=[httpx.Response(status, text="bad gateway")] * 2
        + [httpx.Response(200, json={"offers": []})]
    )
    assert await vastai_client.search_offers({}) == []
    assert route.call_count == 3
    assert len(fake_time.sleeps) == 2


async def test_backoff_is_jittered_exponential_and_bounded_by_attempts(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter, fake_time: Any
) -> None:
    route = vastai_mock.get("/api/v0/instances/5/").respond(503)
    with pytest.raises(errors.VastaiServerError):
        await vastai_client.show_instance(5)
    assert route.call_count == 5  # max_attempts
    assert len(fake_time.sleeps) == 4
    # random exponential: attempt n waits uniformly in [0, min(8, 0.5 * 2**n)]
    for n, slept in enumerate(fake_time.sleeps, start=1):
        assert 0 <= slept <= min(8.0, 0.5 * 2**n)


async def test_timeouts_are_retried_for_idempotent_calls(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    route = vastai_mock.get("/api/v0/instances/5/").mock(
        side_effect=[
            httpx.ReadTimeout("slow"),
            httpx.ConnectError("refused"),
            httpx.Response(200, json={"instances": {"id": 5}}),
        ]
    )
    instance = await vastai_client.show_instance(5)
    assert instance is not None
    assert instance.id == 5
    assert route.call_count == 3


async def test_timeout_error_class_after_exhaustion(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    vastai_mock.get("/api/v1/instances/").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(errors.VastaiTimeoutError) as info:
        await vastai_client.list_instances()
    assert isinstance(info.value, errors.VastaiTransientError)


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(500), httpx.Response(502), httpx.Response(504), httpx.ReadTimeout("slow")],
    ids=["500", "502", "504", "timeout"],
)
async def test_create_is_never_retried_after_ambiguous_failure(
    vastai_client: vastai.VastaiClient,
    vastai_mock: respx.MockRouter,
    fake_time: Any,
    failure: Any,
) -> None:
    """The rental may exist after a lost answer: a blind retry could rent a second
    machine. The caller reconciles with find_instances_by_label instead."""
    route = vastai_mock.put("/api/v0/asks/7/")
    if isinstance(failure, Exception):
        route.mock(side_effect=failure)
    else:
        route.mock(return_value=failure)
    with pytest.raises(errors.VastaiTransientError):
        await vastai_client.create_instance(7, REQUEST)
    assert route.call_count == 1
    assert fake_time.sleeps == []


async def test_create_is_retried_after_429(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter, fake_time: Any
) -> None:
    route = vastai_mock.put("/api/v0/asks/7/").mock(
        side_effect=[
            httpx.Response(
                429, json={"detail": "API requests too frequent endpoint threshold=4.5"}
            ),
            httpx.Response(200, json={"success": True, "new_contract": 99}),
        ]
    )
    created = await vastai_client.create_instance(7, REQUEST)
    assert created.instance_id == 99
    assert route.call_count == 2
    assert fake_time.sleeps == [4.5]


@pytest.mark.parametrize(
    ("headers", "text", "expected"),
    [
        ({"Retry-After": "3"}, "API requests too frequent", 3.0),
        ({}, "API requests too frequent: endpoint threshold=2.5", 2.5),
        ({"Retry-After": "7", "X-Other": "1"}, '{"detail": "threshold=4.5"}', 7.0),
    ],
    ids=["header", "threshold-text", "header-wins"],
)
async def test_retry_after_is_honoured(
    vastai_client: vastai.VastaiClient,
    vastai_mock: respx.MockRouter,
    fake_time: Any,
    headers: dict[str, str],
    text: str,
    expected: float,
) -> None:
    vastai_mock.get("/api/v1/instances/").mock(
        side_effect=[
            httpx.Response(429, headers=headers, text=text),
            httpx.Response(200, json={"instances": [], "next_token": None}),
        ]
    )
    assert await vastai_client.list_instances() == []
    assert fake_time.sleeps == [expected]


async def test_parse_retry_after_http_date_and_reset() -> None:
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert vastai.parse_retry_after({"retry-after": date}, "", now=now) == pytest.approx(30, abs=1)
    assert vastai.parse_retry_after({"x-ratelimit-reset": str(now + 60)}, "", now=now) == (
        pytest.approx(60)
    )
    assert vastai.parse_retry_after({}, "too frequent", now=now) is None


async def test_rate_limited_without_hint_uses_backoff(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter, fake_time: Any
) -> None:
    vastai_mock.get("/api/v1/instances/").mock(
        side_effect=[
            httpx.Response(429, json={"success": False, "error": "rate_limit_exceeded"}),
            httpx.Response(200, json={"instances": [], "next_token": None}),
        ]
    )
    await vastai_client.list_instances()
    [slept] = fake_time.sleeps
    assert 0 <= slept <= 1.0


async def test_deadline_stops_retries_early(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter, fake_time: Any
) -> None:
    """Retry-After beyond the total deadline (e.g. the daily search quota): give up now."""
    route = vastai_mock.post("/api/v0/bundles/").respond(
        429,
        headers={"Retry-After": "600"},
        json={"error": "search_quota_exceeded", "msg": "daily quota"},
    )
    with pytest.raises(errors.VastaiRateLimitedError) as info:
        await vastai_client.search_offers({})
    assert info.value.retry_after == 600
    assert route.call_count == 1
    assert fake_time.sleeps == []


async def test_deadline_bounds_the_total_time(
    vastai_mock: respx.MockRouter, vastai_http: httpx.AsyncClient, fake_time: Any
) -> None:
    client = vastai.VastaiClient(
        vastai_http,
        base_url="https://vast.test",
        api_key=SecretStr("k"),
        deadline=10.0,
        max_attempts=100,
        sleep=fake_time.sleep,
        clock=fake_time,
    )
    route = vastai_mock.post("/api/v0/bundles/").respond(429, headers={"Retry-After": "3"})
    with pytest.raises(errors.VastaiRateLimitedError):
        await client.search_offers({})
    assert sum(fake_time.sleeps) < 10.0
    assert route.call_count == 4  # t=0, 3, 6, 9; the next wait would pass the deadline


async def test_per_attempt_timeout_is_capped_by_remaining_deadline(
    vastai_mock: respx.MockRouter, vastai_http: httpx.AsyncClient, fake_time: Any
) -> None:
    client = vastai.VastaiClient(
        vastai_http,
        base_url="https://vast.test",
        api_key=SecretStr("k"),
        timeout=15.0,
        deadline=4.0,
        sleep=fake_time.sleep,
        clock=fake_time,
    )
    route = vastai_mock.post("/api/v0/bundles/").respond(200, json={"offers": []})
    await client.search_offers({})
    assert route.calls.last.request.extensions["timeout"]["read"] == pytest.approx(4.0)


async def test_key_never_in_logs_or_errors(
    vastai_client: vastai.VastaiClient,
    vastai_mock: respx.MockRouter,
    vastai_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    vastai_mock.post("/api/v0/bundles/").respond(
        401, json={"error": "auth_error", "msg": f"Invalid user key {vastai_key}"}
    )
    vastai_mock.get("/api/v0/instances/1/").mock(side_effect=httpx.ConnectError(vastai_key))
    with pytest.raises(errors.VastaiAuthError) as auth:
        await vastai_client.search_offers({})
    with pytest.raises(errors.VastaiTimeoutError) as transport:
        await vastai_client.show_instance(1)
    for exc in (auth.value, transport.value):
        assert vastai_key not in str(exc)
        assert vastai_key not in repr(exc.args)
        assert exc.__cause__ is None or vastai_key not in str(exc.__cause__)
    assert "vastai" in caplog.text  # per-attempt debug logs exist
    assert vastai_key not in caplog.text


async def test_metrics_use_route_templates(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    def count(endpoint: str, code: str) -> float:
        value = REGISTRY.get_sample_value(
            "warmpool_vastai_requests_total", {"endpoint": endpoint, "code": code}
        )
        return value or 0.0

    before_ok = count(vastai.DESTROY, "200")
    before_gone = count(vastai.DESTROY, "404")
    vastai_mock.delete("/api/v0/instances/31337/").mock(
        side_effect=[httpx.Response(200, json={"success": True}), httpx.Response(404)]
    )
    await vastai_client.destroy_instance(31337)
    await vastai_client.destroy_instance(31337)
    assert count(vastai.DESTROY, "200") == before_ok + 1
    assert count(vastai.DESTROY, "404") == before_gone + 1
    assert vastai.DESTROY == "DELETE /api/v0/instances/{id}/"
    for metric in REGISTRY.collect():
        if metric.name.startswith("warmpool_vastai"):
            for sample in metric.samples:
                assert "31337" not in str(sample.labels)
    hist = REGISTRY.get_sample_value(
        "warmpool_vastai_request_seconds_count", {"endpoint": vastai.DESTROY}
    )
    assert hist is not None
    assert hist >= 2
