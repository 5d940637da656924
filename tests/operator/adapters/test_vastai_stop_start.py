"""Stop and start of a rental (contract §5.6) against respx: the wire body, retries of the
idempotent state change, and a logical failure."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from warmpool.operator import errors
from warmpool.operator.adapters import vastai


@pytest.mark.parametrize(
    ("call", "state"), [("stop_instance", "stopped"), ("start_instance", "running")]
)
async def test_state_change_body_and_retry(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter, call: str, state: str
) -> None:
    route = vastai_mock.put("/api/v0/instances/12/").mock(
        side_effect=[
            httpx.Response(502, json={"msg": "busy"}),
            httpx.Response(200, json={"success": True}),
        ]
    )
    await getattr(vastai_client, call)(12)
    assert route.call_count == 2  # idempotent: retried after a 5xx
    assert json.loads(route.calls.last.request.content) == {"state": state}


async def test_a_refused_start_is_a_logical_error(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    vastai_mock.put("/api/v0/instances/12/").respond(
        200, json={"success": False, "msg": "instance is expired"}
    )
    with pytest.raises(errors.VastaiLogicalError, match="expired"):
        await vastai_client.start_instance(12)
