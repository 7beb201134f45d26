"""Working hours and out-of-office dates: parsing, matching and the errors admins see."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from workflows.errors import ConfigError
from workflows.working_hours import DateRange, WeeklyHours, parse_date_ranges, parse_hours

# 2026-06-01 is a Monday; DAY[n] is that week's weekday n (0 = Monday).
DAY = {n: date(2026, 6, 1) + timedelta(days=n) for n in range(7)}
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def at(weekday: int, clock: str) -> datetime:
    hour, minute = map(int, clock.split(":"))
    day = DAY[weekday]
    return datetime(day.year, day.month, day.day, hour, minute)


def config_error(text: str, path: str = "reps[0].hours") -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_hours(text, path)
    return caught.value


# --- parse_hours: what it accepts ------------------------------------------------------------


def test_weekday_business_hours() -> None:
    hours = parse_hours("Mon-Fri 09:00-17:30", "x")
    assert hours.contains(at(MON, "09:00"))  # start is inside
    assert hours.contains(at(WED, "12:00"))
    assert hours.contains(at(FRI, "17:29"))
    assert not hours.contains(at(FRI, "17:30"))  # end is outside
    assert not hours.contains(at(MON, "08:59"))
    assert not hours.contains(at(SAT, "12:00"))
    assert not hours.contains(at(SUN, "12:00"))
    assert hours.describe() == "Mon-Fri 09:00-17:30"


def test_seconds_do_not_matter_only_the_minute() -> None:
    hours = parse_hours("Mon 09:00-17:30", "x")
    assert hours.contains(at(MON, "17:29").replace(second=59, microsecond=999_999))
    assert not hours.contains(at(MON, "08:59").replace(second=59))


def test_aware_datetimes_use_their_own_wall_clock() -> None:
    hours = parse_hours("Mon 09:00-10:00", "x")
    tokyo = timezone(timedelta(hours=9))
    assert hours.contains(at(MON, "09:30").replace(tzinfo=tokyo))
    assert not hours.contains(at(MON, "09:30").replace(tzinfo=UTC) + timedelta(hours=1))


def test_several_segments_with_semicolons_and_commas() -> None:
    hours = parse_hours("Mon-Thu 09:00-17:00; Fri 09:00-12:00, Sat 10:00-14:00", "x")
    assert hours.contains(at(THU, "16:59"))
    assert hours.contains(at(FRI, "11:59"))
    assert not hours.contains(at(FRI, "12:00"))
    assert hours.contains(at(SAT, "10:00"))
    assert not hours.contains(at(SUN, "10:00"))
    assert hours.describe() == "Mon-Thu 09:00-17:00; Fri 09:00-12:00; Sat 10:00-14:00"


def test_split_shift_on_the_same_day() -> None:
    hours = parse_hours("Mon-Fri 08:00-12:00; Mon-Fri 13:00-17:00", "x")
    assert hours.contains(at(TUE, "11:59"))
    assert not hours.contains(at(TUE, "12:30"))
    assert hours.contains(at(TUE, "13:00"))


def test_day_names_are_case_insensitive_and_may_be_full() -> None:
    short = parse_hours("Mon-Fri 09:00-17:30", "x")
    assert parse_hours("monday-FRIDAY 09:00-17:30", "x") == short
    assert parse_hours("MON-fri 09:00-17:30", "x") == short
    assert parse_hours("monday-friday 09:00-17:30", "x").describe() == "Mon-Fri 09:00-17:30"


def test_plus_joined_day_list() -> None:
    hours = parse_hours("Mon+Wed+Fri 10:00-16:00", "x")
    assert hours.contains(at(MON, "10:00"))
    assert not hours.contains(at(TUE, "10:00"))
    assert hours.contains(at(WED, "10:00"))
    assert not hours.contains(at(THU, "10:00"))
    assert hours.contains(at(FRI, "10:00"))
    assert hours.describe() == "Mon+Wed+Fri 10:00-16:00"


def test_wrapping_day_range() -> None:
    hours = parse_hours("Fri-Mon 10:00-14:00", "x")
    assert {day for day in range(7) if hours.contains(at(day, "12:00"))} == {FRI, SAT, SUN, MON}
    assert hours.describe() == "Fri-Mon 10:00-14:00"


def test_a_range_from_a_day_to_itself_is_that_day() -> None:
    hours = parse_hours("Wed-Wed 09:00-10:00", "x")
    assert {day for day in range(7) if hours.contains(at(day, "09:30"))} == {WED}


def test_hours_wrap_past_midnight() -> None:
    hours = parse_hours("Sun-Thu 22:00-06:00", "x")
    assert hours.contains(at(MON, "03:00"))  # Sunday's night shift
    assert hours.contains(at(SUN, "22:00"))
    assert hours.contains(at(THU, "23:59"))
    assert hours.contains(at(FRI, "05:59"))  # Thursday's night shift ends Friday morning
    assert not hours.contains(at(FRI, "06:00"))
    assert not hours.contains(at(FRI, "23:00"))  # Friday has no shift of its own
    assert not hours.contains(at(SAT, "03:00"))
    assert not hours.contains(at(SUN, "03:00"))  # nothing started on Saturday night
    assert not hours.contains(at(WED, "12:00"))
    assert hours.describe() == "Sun-Thu 22:00-06:00"


def test_saturday_night_shift_wraps_into_monday_of_the_next_week() -> None:
    hours = parse_hours("Sun 20:00-02:00", "x")
    assert hours.contains(at(SUN, "23:59"))
    assert hours.contains(at(MON, "00:00"))
    assert hours.contains(at(MON, "01:59"))
    assert not hours.contains(at(MON, "02:00"))
    assert not hours.contains(at(SUN, "19:59"))
    assert hours.intervals[0] == (0, 120)  # split at the week boundary, so lookups stay simple


def test_24_00_ends_the_day() -> None:
    hours = parse_hours("Sat 18:00-24:00", "x")
    assert hours.contains(at(SAT, "23:59"))
    assert not hours.contains(at(SUN, "00:00"))
    whole_day = parse_hours("Tue 00:00-24:00", "x")
    assert whole_day.contains(at(TUE, "00:00"))
    assert whole_day.contains(at(TUE, "23:59"))
    assert not whole_day.contains(at(WED, "00:00"))
    assert not whole_day.contains(at(MON, "23:59"))
    assert whole_day.describe() == "Tue 00:00-24:00"


@pytest.mark.parametrize("text", ["always", "24/7", " Always ", "ALWAYS"])
def test_always_means_every_minute(text: str) -> None:
    hours = parse_hours(text, "x")
    for day in range(7):
        for clock in ("00:00", "12:34", "23:59"):
            assert hours.contains(at(day, clock))
    assert hours.describe() == "always"


def test_single_digit_hours_and_spaces_are_normalized() -> None:
    hours = parse_hours("  mon - fri   9:00 - 17:30 ;  sat+sun 10:00-12:00 ; ", "x")
    assert hours.describe() == "Mon-Fri 09:00-17:30; Sat+Sun 10:00-12:00"
    assert hours.contains(at(MON, "09:00"))


def test_describe_compacts_day_lists() -> None:
    assert parse_hours("Mon+Tue+Wed 09:00-17:00", "x").describe() == "Mon-Wed 09:00-17:00"
    assert parse_hours("Sun+Mon+Sat 09:00-17:00", "x").describe() == "Sat-Mon 09:00-17:00"
    assert parse_hours("Mon-Sun 09:00-17:00", "x").describe() == "Mon-Sun 09:00-17:00"
    assert parse_hours("Fri-Thu 09:00-17:00", "x").describe() == "Mon-Sun 09:00-17:00"
    assert parse_hours("Mon-Wed+Fri 09:00-17:00", "x").describe() == "Mon-Wed+Fri 09:00-17:00"
    assert parse_hours("Fri+Mon+Mon 09:00-17:00", "x").describe() == "Mon+Fri 09:00-17:00"


@pytest.mark.parametrize(
    "text",
    [
        "Mon-Fri 09:00-17:30",
        "Sun-Thu 22:00-06:00; Sat 10:00-14:00",
        "Fri-Mon 00:00-24:00",
        "Mon+Wed+Fri 07:15-07:45, Tue 23:00-01:00",
        "always",
    ],
)
def test_describe_reads_back_to_the_same_schedule(text: str) -> None:
    hours = parse_hours(text, "x")
    again = parse_hours(hours.describe(), "x")
    assert again == hours
    assert again.describe() == hours.describe()
    assert str(hours) == hours.describe()


def test_overlapping_segments_merge() -> None:
    hours = parse_hours("Mon 09:00-12:00; Mon 11:00-14:00; Mon 14:00-15:00", "x")
    assert hours.intervals == ((9 * 60, 15 * 60),)


def test_equal_schedules_compare_equal_whatever_their_spelling() -> None:
    assert parse_hours("Mon+Tue 09:00-17:00", "x") == parse_hours("monday-tuesday 9:00-17:00", "x")
    assert hash(parse_hours("Mon 09:00-10:00", "x")) == hash(parse_hours("mon 9:00-10:00", "x"))


def test_weekly_hours_are_frozen() -> None:
    hours = parse_hours("Mon 09:00-10:00", "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        hours.text = "changed"  # type: ignore[misc]
    assert isinstance(hours, WeeklyHours)


def test_contains_agrees_with_a_minute_by_minute_reference() -> None:
    text = "Sun-Tue 21:30-02:15; Thu+Sat 08:00-24:00, Fri 00:00-00:01"
    hours = parse_hours(text, "x")
    # (days, start minute, end minute) spelled out by hand, independent of the parser.
    spans = [
        ((SUN, MON, TUE), 21 * 60 + 30, 2 * 60 + 15),
        ((THU, SAT), 8 * 60, 24 * 60),
        ((FRI,), 0, 1),
    ]
    week = 7 * 24 * 60
    expected = [False] * week
    for days, start, end in spans:
        length = end - start if end > start else end + 24 * 60 - start
        for day in days:
            for offset in range(length):
                expected[(day * 24 * 60 + start + offset) % week] = True
    monday = datetime(2026, 6, 1)
    for minute in range(week):
        moment = monday + timedelta(minutes=minute)
        assert hours.contains(moment) is expected[minute], moment


# --- parse_hours: errors ---------------------------------------------------------------------


def test_error_keeps_the_path_and_shows_the_expected_format() -> None:
    error = config_error("Mon-Fri 9am-5pm", "reps[2].hours")
    assert error.path == "reps[2].hours"
    assert "'9am'" in error.message
    assert "expected like 'Mon-Fri 09:00-17:30'" in error.message
    assert str(error).startswith("reps[2].hours: ")


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("Mun-Fri 09:00-17:30", "'Mun'"),
        ("Mon-Fryday 09:00-17:30", "'Fryday'"),
        ("Mon-Wed-Fri 09:00-17:30", "'Mon-Wed-Fri'"),
        ("Mon++Wed 09:00-17:30", "'Mon++Wed 09:00-17:30'"),
        ("Mon-Fri", "'Mon-Fri'"),
        ("09:00-17:30", "'09:00-17:30'"),
        ("Mon-Fri 09:00", "'09:00'"),
        ("Mon-Fri 09:00-17:30-18:00", "'09:00-17:30-18:00'"),
        ("Mon-Fri 25:00-26:00", "'25:00'"),
        ("Mon-Fri 09:60-17:00", "'09:60'"),
        ("Mon-Fri 09:00-24:30", "'24:30'"),
        ("Mon-Fri 0900-1730", "'0900'"),
        ("Mon 24:00-06:00", "'Mon 24:00-06:00'"),
        ("Mon 09:00-09:00", "'Mon 09:00-09:00'"),
        ("Mon-Fri 09:00-17:30; Sat 10:00-1400", "'1400'"),
        ("always; Mon 09:00-10:00", "'always'"),
        ("never", "'never'"),
    ],
)
def test_invalid_hours_quote_the_bad_part(text: str, quoted: str) -> None:
    error = config_error(text)
    assert error.path == "reps[0].hours"
    assert quoted in error.message
    assert "expected like 'Mon-Fri 09:00-17:30'" in error.message or "00:00-24:00" in error.message


def test_same_start_and_end_suggests_a_whole_day() -> None:
    assert "00:00-24:00" in config_error("Mon 00:00-00:00").message


@pytest.mark.parametrize("text", ["", "   ", ";", " , ; "])
def test_empty_hours_are_an_error(text: str) -> None:
    error = config_error(text, "defaults.hours")
    assert error.path == "defaults.hours"
    assert "expected like 'Mon-Fri 09:00-17:30'" in error.message


@pytest.mark.parametrize("value", [None, 9, ["Mon-Fri 09:00-17:30"]])
def test_hours_that_are_not_text_are_an_error(value: object) -> None:
    error = config_error(value, "reps[1].hours")  # type: ignore[arg-type]
    assert error.path == "reps[1].hours"
    assert "must be text" in error.message


# --- out-of-office dates ---------------------------------------------------------------------


def test_date_range_includes_both_ends() -> None:
    (holiday,) = parse_date_ranges(["2026-12-24..2027-01-02"], "x")
    assert holiday == DateRange(date(2026, 12, 24), date(2027, 1, 2))
    assert not holiday.contains(date(2026, 12, 23))
    assert holiday.contains(date(2026, 12, 24))
    assert holiday.contains(date(2026, 12, 31))
    assert holiday.contains(date(2027, 1, 1))
    assert holiday.contains(date(2027, 1, 2))
    assert not holiday.contains(date(2027, 1, 3))
    assert str(holiday) == "2026-12-24..2027-01-02"


def test_single_dates_as_text_or_yaml_dates() -> None:
    ranges = parse_date_ranges(
        ["2026-12-24", date(2026, 12, 31), " 2027-01-05 .. 2027-01-06 "], "x"
    )
    assert ranges == (
        DateRange(date(2026, 12, 24), date(2026, 12, 24)),
        DateRange(date(2026, 12, 31), date(2026, 12, 31)),
        DateRange(date(2027, 1, 5), date(2027, 1, 6)),
    )
    assert ranges[0].contains(date(2026, 12, 24))
    assert not ranges[0].contains(date(2026, 12, 25))
    assert str(ranges[1]) == "2026-12-31"  # a one-day range reads as the day itself


def test_str_reads_back_to_the_same_range() -> None:
    for text in ("2026-12-24..2027-01-02", "2026-12-24"):
        (parsed,) = parse_date_ranges([text], "x")
        assert str(parsed) == text
        assert parse_date_ranges([str(parsed)], "x") == (parsed,)


def test_no_dates() -> None:
    assert parse_date_ranges([], "x") == ()
    assert parse_date_ranges(None, "x") == ()  # a YAML key left empty


def test_date_range_end_before_start_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_date_ranges(["2026-12-24", "2027-01-02..2026-12-24"], "reps[3].out_of_office")
    assert caught.value.path == "reps[3].out_of_office[1]"
    assert "'2027-01-02..2026-12-24'" in caught.value.message
    assert "before it starts" in caught.value.message
    with pytest.raises(ValueError):
        DateRange(date(2026, 1, 2), date(2026, 1, 1))


@pytest.mark.parametrize(
    ("item", "quoted"),
    [
        ("Christmas", "'Christmas'"),
        ("2026-12-24..", "''"),
        ("2026-12-24..2026-12-26..2026-12-28", "'2026-12-24..2026-12-26..2026-12-28'"),
        ("24/12/2026", "'24/12/2026'"),
        ("20261224", "'20261224'"),
        ("2026-02-30", "'2026-02-30'"),
        ("2026-12-24..2026-13-01", "'2026-13-01'"),
        (20261224, "20261224"),
        (datetime(2026, 12, 24, 9, 0), "'2026-12-24 09:00:00' has a time of day"),
    ],
)
def test_invalid_dates_name_the_item(item: object, quoted: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_date_ranges(["2026-12-01", "2026-12-02", item], "reps[0].out_of_office")
    assert caught.value.path == "reps[0].out_of_office[2]"
    assert quoted in caught.value.message


def test_out_of_office_that_is_not_a_list_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_date_ranges("2026-12-24..2027-01-02", "reps[0].out_of_office")  # type: ignore[arg-type]
    assert caught.value.path == "reps[0].out_of_office"
    assert "expected a list" in caught.value.message
