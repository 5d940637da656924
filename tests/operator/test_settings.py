"""The operator's machine-address allowance setting (issue 15)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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
