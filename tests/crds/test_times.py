"""The one timestamp codec (there were two: microseconds in the controllers, whole
seconds in the decisions; a time written by one was read back by the other)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from warmpool.crds.common import format_time, parse_optional_time, parse_time

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "text"),
    [
        pytest.param(NOW, "2024-05-01T12:00:00Z", id="whole-seconds"),
        pytest.param(NOW + timedelta(microseconds=250000), "2024-05-01T12:00:00.250000Z",
                     id="fraction"),
        pytest.param(NOW + timedelta(microseconds=1), "2024-05-01T12:00:00.000001Z",
                     id="one-microsecond"),
        pytest.param(NOW.astimezone(timezone(timedelta(hours=-5))), "2024-05-01T12:00:00Z",
                     id="offset-becomes-utc"),
    ],
)  # fmt: skip
def test_format_and_parse_round_trip(when: datetime, text: str) -> None:
    assert format_time(when) == text
    assert parse_time(text) == when


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(None, None, id="unset"),
        pytest.param("", None, id="cleared"),
        pytest.param("2024-05-01T12:00:00Z", NOW, id="kubernetes-seconds"),
        pytest.param("2024-05-01T14:00:00+02:00", NOW, id="offset"),
    ],
)
def test_parse_optional_time(text: str | None, expected: datetime | None) -> None:
    assert parse_optional_time(text) == expected


def test_format_none_stays_none() -> None:
    assert format_time(None) is None


def test_parse_time_refuses_what_is_not_a_time() -> None:
    with pytest.raises(ValueError, match="Invalid isoformat"):
        parse_time("yesterday")
