"""T2: the account call (``GET /users/current/``) behind the spend reconciliation."""

from __future__ import annotations

import logging

import pytest
import respx

from warmpool.operator import errors
from warmpool.operator.adapters import vastai

USER = {
    "id": 4242,
    "email": "someone@example.com",
    "balance": -3.25,
    "credit": "87.5000 ",
    "ssh_key": None,
    "key_id": 1,
    "host_agreement_accepted": False,
    "api_key": "never-read",
}


async def test_show_user_reads_the_credit(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter, vastai_key: str
) -> None:
    route = vastai_mock.get("/api/v0/users/current/").respond(200, json=USER)
    account = await vastai_client.show_user()
    assert (account.id, account.credit, account.balance) == (4242, 87.5, -3.25)
    assert account.remaining == 87.5  # the credit left, not the invoice balance
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {vastai_key}"
    assert vastai_key not in str(request.url)
    assert not hasattr(account, "api_key") and not hasattr(account, "email")


@pytest.mark.parametrize(
    ("body", "remaining"),
    [
        pytest.param({"balance": 12.0}, 12.0, id="balance-when-no-credit"),
        pytest.param({"credit": None, "balance": "4"}, 4.0, id="null-credit"),
        pytest.param({"id": 1}, None, id="neither"),
    ],
)
async def test_remaining_credit(
    vastai_client: vastai.VastaiClient,
    vastai_mock: respx.MockRouter,
    body: dict[str, object],
    remaining: float | None,
) -> None:
    vastai_mock.get("/api/v0/users/current/").respond(200, json=body)
    assert (await vastai_client.show_user()).remaining == remaining


async def test_a_refused_key_is_named_not_shown(
    vastai_client: vastai.VastaiClient,
    vastai_mock: respx.MockRouter,
    vastai_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A key lacking ``user_read`` (a scoped key) answers 403: the error says so, and
    neither it nor the logs carry the key the server echoed."""
    caplog.set_level(logging.DEBUG)
    vastai_mock.get("/api/v0/users/current/").respond(
        403, json={"success": False, "error": "not_authorized", "msg": f"key {vastai_key}"}
    )
    with pytest.raises(errors.VastaiAuthError) as refused:
        await vastai_client.show_user()
    assert vastai_key not in str(refused.value)
    assert vastai_key not in caplog.text


async def test_not_an_account(
    vastai_client: vastai.VastaiClient, vastai_mock: respx.MockRouter
) -> None:
    vastai_mock.get("/api/v0/users/current/").respond(200, json=["not", "an", "account"])
    with pytest.raises(errors.VastaiMalformedResponseError, match="Account"):
        await vastai_client.show_user()
