"""The operator's machine-address allowance setting (issue 15)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from warmpool.operator.controllers import shards
from warmpool.operator.settings import OperatorSettings


def test_allowed_machine_networks_default_empty_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert OperatorSettings().allowed_machine_networks == []
    monkeypatch.setenv("WARMPOOL_ALLOWED_MACHINE_NETWORKS", '["127.0.0.0/8", "::1/128"]')
    assert OperatorSettings().allowed_machine_networks == ["127.0.0.0/8", "::1/128"]


def test_a_bad_cidr_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="allowed_machine_networks"):
        OperatorSettings(allowed_machine_networks=["127.0.0.0/33"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, [], id="unset-every-namespace"),
        pytest.param("gpu", ["gpu"], id="one"),
        pytest.param("gpu, team-b,", ["gpu", "team-b"], id="several"),
    ],
)
def test_served_namespaces(value: str | None, expected: list[str]) -> None:
    assert OperatorSettings(namespace=value).served_namespaces == expected


def test_operator_daily_budget_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARMPOOL_OPERATOR_DAILY_BUDGET_USD", "250")
    monkeypatch.setenv("WARMPOOL_OPERATOR_BUDGET_ON_EXCEEDED", "Block")
    settings = OperatorSettings()
    assert (settings.operator_daily_budget_usd, settings.operator_budget_on_exceeded) == (
        250.0,
        "Block",
    )
    monkeypatch.setenv("WARMPOOL_OPERATOR_BUDGET_ON_EXCEEDED", "Ignore")
    with pytest.raises(ValueError, match="operator_budget_on_exceeded"):
        OperatorSettings()


def test_label_shards_have_their_own_kopf_names() -> None:
    """Two label shards never share a finalizer (Kopf removes its finalizer from objects
    no handler of it matches); unsharded, the names stay what they were."""
    unsharded = OperatorSettings()
    gold = OperatorSettings(pool_selector="tier=gold")
    silver = OperatorSettings(pool_selector="tier=silver")
    named = OperatorSettings(pool_selector="tier in (gold, platinum)", shard_name="gold")
    assert shards.persistence_names(unsharded.shard_key) == (shards.PREFIX, shards.FINALIZER)
    assert shards.FINALIZER == "warmpool.dev/kopf-finalizer"  # the name before shards had theirs
    names = {shards.persistence_names(s.shard_key) for s in (gold, silver, named)}
    assert len(names) == 3
    assert shards.persistence_names(named.shard_key)[1] == "warmpool.dev/kopf-finalizer-gold"
    assert gold.shard_key == OperatorSettings(pool_selector="tier=gold").shard_key  # stable
