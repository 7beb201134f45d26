"""The SLA clock: deadlines and time to first touch, on the wall clock or the owner's hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from conftest import at

from workflows.model import Rep
from workflows.sla_clock import deadline, elapsed, to_key
from workflows.working_hours import DateRange, parse_hours

NINE_TO_FIVE = parse_hours("Mon-Fri 09:00-17:00", "hours")


def ny_rep(**extra) -> Rep:
    return Rep("alice", "Alice", "America/New_York", hours=NINE_TO_FIVE, **extra)


def test_wall_clock_adds_the_first_touch_time():
    start = at("2026-11-27 16:55")  # a Friday
    assert deadline(start, timedelta(minutes=15), "wall", ny_rep()) == at("2026-11-27 17:10")


def test_working_hours_deadline_inside_the_day():
    start = at("2026-11-24 10:00")
    assert deadline(start, timedelta(minutes=15), "working_hours", ny_rep()) == at(
        "2026-11-24 10:15"
    )


def test_working_hours_deadline_carries_over_the_weekend():
    start = at("2026-11-27 16:55")  # Friday, 5 working minutes left
    due = deadline(start, timedelta(minutes=15), "working_hours", ny_rep())
    assert due == at("2026-11-30 09:10")  # Monday


def test_assignment_at_night_starts_counting_next_morning():
    start = at("2026-11-24 23:30")
    due = deadline(start, timedelta(minutes=15), "working_hours", ny_rep())
    assert due == at("2026-11-25 09:15")


def test_out_of_office_days_do_not_count():
    rep = ny_rep(out_of_office=(DateRange(date(2026, 11, 30), date(2026, 12, 1)),))
    start = at("2026-11-27 16:55")
    due = deadline(start, timedelta(minutes=15), "working_hours", rep)
    assert due == at("2026-12-02 09:10")


def test_the_owners_own_time_zone_counts():
    tokyo = Rep("kenji", "Kenji", "Asia/Tokyo", hours=NINE_TO_FIVE)
    start = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # 17:00 in Tokyo: the day just ended
    due = deadline(start, timedelta(minutes=15), "working_hours", tokyo)
    assert due == datetime(2026, 11, 25, 0, 15, tzinfo=UTC)  # 09:15 Tokyo next day


def test_deadline_across_spring_forward_counts_real_working_time():
    always = Rep("night", "Night", "America/New_York", hours=parse_hours("always", "h"))
    start = at("2026-03-08 01:30")  # clocks jump from 02:00 to 03:00
    due = deadline(start, timedelta(hours=1), "working_hours", always)
    assert due - start == timedelta(hours=1)
    assert due == at("2026-03-08 03:30")


def test_deadline_across_fall_back_counts_real_working_time():
    always = Rep("night", "Night", "America/New_York", hours=parse_hours("always", "h"))
    start = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, before the repeat hour
    due = deadline(start, timedelta(hours=1), "working_hours", always)
    assert due == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST: an hour later


def test_nine_to_five_is_eight_real_hours_on_the_dst_day():
    weekend = Rep("w", "W", "America/New_York", hours=parse_hours("Sun 09:00-17:00", "h"))
    start = at("2026-03-08 00:00")
    due = deadline(start, timedelta(hours=8), "working_hours", weekend)
    assert due == at("2026-03-08 17:00")


def test_rep_with_no_hours_counts_every_minute():
    rep = Rep("any", "Any", "America/New_York")
    start = at("2026-11-28 23:00")
    assert deadline(start, timedelta(minutes=15), "working_hours", rep) == at("2026-11-28 23:15")


def test_rep_never_working_falls_back_to_the_wall_clock():
    rep = ny_rep(out_of_office=(DateRange(date(2026, 1, 1), date(2028, 1, 1)),))
    start = at("2026-11-24 10:00")
    assert deadline(start, timedelta(minutes=15), "working_hours", rep) == at("2026-11-24 10:15")


def test_elapsed_counts_only_working_time():
    rep = ny_rep()
    start, touch = at("2026-11-27 16:55"), at("2026-11-30 09:07")
    assert elapsed(start, touch, "working_hours", rep) == timedelta(minutes=12)
    assert elapsed(start, touch, "wall", rep) == touch - start
    assert elapsed(touch, start, "wall", rep) == timedelta(0)


def test_due_keys_sort_like_times():
    early = at("2026-11-24 09:59:59")
    late = datetime(2026, 11, 24, 15, 0, 0, 1, tzinfo=UTC)
    assert to_key(early) < to_key(late)
    assert len(to_key(early)) == len(to_key(late))
