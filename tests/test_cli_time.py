"""The times people type where the CLI asks for one: ISO-8601, now, today, yesterday, 2h ago."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import yaml
from click.testing import CliRunner
from conftest import config_data

from connector.cli import main
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
    assert "expected an ISO-8601 time" in message or "between the years 1970 and 2999" in message


OUTSIDE = [
    "0001-01-01",  # used to reach the router and overflow there
    "0001-01-01T00:00+14:00",  # before year 1 in UTC
    "1969-12-31",
    "1970-01-01T00:00Z",  # 1969 in New York
    "3000-01-01",
    "9999-12-31",  # used to be accepted while 9999-12-31T23:59 was "too far"
    "9999-12-31T23:59",
    "9999-12-31T23:59-14:00",
    "in 999999999d",
    "99999999999d ago",
    "400000d ago",  # year 931: no overflow, still no sane time
    "in 400000d",
]


@pytest.mark.parametrize("text", OUTSIDE)
def test_a_time_outside_the_years_1970_to_2999_is_refused_whatever_its_form(text):
    with pytest.raises(TimeError, match="is not between the years 1970 and 2999"):
        parse_cli_time(text, NEW_YORK, NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1970-01-01", "1970-01-01T05:00"), ("2999-12-31T23:59", "3000-01-01T04:59")],
)
def test_the_first_and_last_moments_of_the_range_are_accepted(text, expected):
    assert parse_cli_time(text, NEW_YORK, NOW) == utc(expected)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["route", '{"id": "A"}', "--at", "{time}"], "--at"),
        (["simulate", "{csv}", "--at", "{time}"], "--at"),
        (["log", "--since", "{time}"], "--since"),
        (["sweep", "--once", "--now", "{time}"], "--now"),
    ],
)
@pytest.mark.parametrize("time", ["0001-01-01", "9999-12-31", "9999-12-31T23:59"])
def test_every_time_option_refuses_an_absurd_year_as_a_usage_error_naming_it(
    tmp_path, args, option, time
):
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(config_data(store="sqlite:///state.sqlite")))
    leads = tmp_path / "leads.csv"
    leads.write_text("id\nA\n")
    argv = [arg.replace("{time}", time).replace("{csv}", str(leads)) for arg in args]
    result = CliRunner().invoke(main, ["--config", str(config), *argv])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert "is not between the years 1970 and 2999" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
