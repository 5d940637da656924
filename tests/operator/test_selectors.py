"""The shard's pool label selector: the API server's syntax, parsed and matched purely."""

from __future__ import annotations

import pytest

from warmpool.operator import selectors
from warmpool.operator.settings import OperatorSettings


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        pytest.param("", {}, True, id="empty-selects-all"),
        pytest.param("tier=gold", {"tier": "gold"}, True, id="equal"),
        pytest.param("tier==gold", {"tier": "silver"}, False, id="double-equal-other"),
        pytest.param("tier!=gold", {}, True, id="not-equal-absent"),
        pytest.param("tier!=gold", {"tier": "gold"}, False, id="not-equal-same"),
        pytest.param("tier in (gold, silver)", {"tier": "silver"}, True, id="in"),
        pytest.param("tier notin (gold,silver)", {"tier": "gold"}, False, id="notin"),
        pytest.param("tier", {"tier": ""}, True, id="exists"),
        pytest.param("!canary", {"canary": "1"}, False, id="not-exists"),
        pytest.param("tier in (gold),!canary", {"tier": "gold"}, True, id="all-hold"),
        pytest.param(
            "tier in (gold),!canary", {"tier": "gold", "canary": "y"}, False, id="one-fails"
        ),
        pytest.param("example.com/team=a", {"example.com/team": "a"}, True, id="prefixed-key"),
    ],
)
def test_selects(selector: str, labels: dict[str, str], selected: bool) -> None:
    assert selectors.selects(selectors.parse_selector(selector), labels) is selected


def test_a_bad_selector_is_refused_by_the_settings_naming_the_requirement() -> None:
    with pytest.raises(ValueError, match="'tier >< gold'"):
        OperatorSettings(pool_selector="tier=gold, tier >< gold")
