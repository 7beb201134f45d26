"""The times people type where the CLI asks for one: ISO-8601, now, today, yesterday, 2h ago."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from connector.cli_time import TimeError, parse_cli_time

NEW_YORK = ZoneInfo("America/New_York")
# Monday 2 November 2026, 10:00 in New York: the day after daylight saving time ended.
NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", "2026-11-02T15:00"),
        ("today", "2026-11-02T05:00"),  # midnight EST
        ("yesterday", "2026-11-01T04:00"),  # midnight EDT: the clocks changed since
        ("Yesterday ", "2026-11-01T04:00"),
        ("30m", "2026-11-02T14:30"),
        ("2h", "2026-11-02T13:00"),
        ("7d", "2026-10-26T15:00"),
        ("1h30m ago", "2026-11-02T13:30"),
        ("2h  ago", "2026-11-02T13:00"),
        ("in 2h", "2026-11-02T17:00"),
        ("2026-12-01T09:30", "2026-12-01T14:30"),  # app.yaml's timezone
        ("2026-12-01", "2026-12-01T05:00"),
        ("2026-12-01T09:30Z", "2026-12-01T09:30"),
        ("2026-12-01T09:30+01:00", "2026-12-01T08:30"),
    ],
)
def test_a_cli_time_reads_iso_and_the_relative_times_people_type(text, expected):
    assert parse_cli_time(text, NEW_YORK, NOW) == utc(expected)


@pytest.mark.parametrize(
    "text",
    ["", "  ", "soon", "2 hours", "2x", "ago", "in", "in yesterday", "-2h", "2026-13-01",
     "9" * 5000 + "d", "99999999999d ago", "in 999999999d", "\ud800"],
)  # fmt: skip
def test_a_time_the_grammar_does_not_read_is_a_clear_error(text):
    with pytest.raises(TimeError) as caught:
        parse_cli_time(text, NEW_YORK, NOW)
    message = str(caught.value)
    assert "expected an ISO-8601 time" in message or "too far from now" in message
