"""Whether a rep can take a lead now, judged on the rep's own wall clock."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from workflows.availability import (
    SKIP_CODES,
    Requirement,
    Skip,
    local_day,
    local_now,
    unavailability,
)
from workflows.model import Rep
from workflows.working_hours import parse_date_ranges, parse_hours

BUSINESS_HOURS = "Mon-Fri 09:00-17:30"


def rep(**overrides: Any) -> Rep:
    values: dict[str, Any] = {
        "id": "alice",
        "name": "Alice",
        "timezone": "America/Los_Angeles",
        "hours": parse_hours(BUSINESS_HOURS, "x"),
    }
    values.update(overrides)
    return Rep(**values)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# Wednesday 2026-06-10 19:00 UTC is 12:00 in Los Angeles (PDT, UTC-7): squarely in hours.
WORKING = utc(2026, 6, 10, 19, 0)


def code(skip: Skip | None) -> str | None:
    return skip.code if skip else None


# --- local time ------------------------------------------------------------------------------


def test_local_now_converts_into_the_reps_zone() -> None:
    local = local_now(rep(), WORKING)
    assert local.tzinfo == ZoneInfo("America/Los_Angeles")
    assert (local.hour, local.minute) == (12, 0)
    assert local == WORKING  # the same instant, only the wall clock differs


def test_local_now_accepts_any_aware_zone() -> None:
    tokyo = WORKING.astimezone(ZoneInfo("Asia/Tokyo"))
    fixed = WORKING.astimezone(timezone(timedelta(hours=-3)))
    assert local_now(rep(), tokyo) == local_now(rep(), fixed) == local_now(rep(), WORKING)
    assert local_now(rep(), tokyo).hour == 12


def test_local_day_can_differ_from_the_utc_date() -> None:
    late_utc = utc(2026, 6, 10, 3, 0)  # still the evening of June 9 in Los Angeles
    assert local_day(rep(), late_utc) == date(2026, 6, 9)
    assert local_day(rep(timezone="Asia/Tokyo"), utc(2026, 6, 9, 20, 0)) == date(2026, 6, 10)


def test_naive_now_is_rejected() -> None:
    naive = datetime(2026, 6, 10, 19, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        local_now(rep(), naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        local_day(rep(), naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        unavailability(rep(), naive, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        unavailability(rep(hours=None, active=False), naive, 0)  # checked before any reason


# --- available -------------------------------------------------------------------------------


def test_available_rep_has_no_reason() -> None:
    assert unavailability(rep(), WORKING, 0) is None


def test_rep_without_hours_or_cap_is_always_available() -> None:
    night_owl = rep(hours=None, daily_cap=None)
    for hour in range(0, 24, 3):
        assert unavailability(night_owl, utc(2026, 6, 13, hour, 0), 10_000) is None


# --- each reason -----------------------------------------------------------------------------


def test_excluded() -> None:
    skip = unavailability(rep(), WORKING, 0, excluded=frozenset({"alice"}))
    assert skip == Skip("excluded", "excluded: previously owned this lead")
    assert str(skip) == "excluded: previously owned this lead"
    assert unavailability(rep(), WORKING, 0, excluded=frozenset({"bob"})) is None


def test_inactive() -> None:
    skip = unavailability(rep(active=False), WORKING, 0)
    assert code(skip) == "inactive"
    assert str(skip) == "inactive: marked active: false in app.yaml"


def test_out_of_office_names_the_range() -> None:
    away = rep(out_of_office=parse_date_ranges(["2026-06-01", "2026-06-08..2026-06-12"], "x"))
    skip = unavailability(away, WORKING, 0)
    assert skip == Skip("out_of_office", "out of office 2026-06-08..2026-06-12")


def test_out_of_office_ends_are_inclusive_in_the_reps_time_zone() -> None:
    away = rep(hours=None, out_of_office=parse_date_ranges(["2026-12-24..2027-01-02"], "x"))
    # 2026-12-24 07:59 UTC is still Dec 23 in Los Angeles; 08:00 UTC is local midnight.
    assert unavailability(away, utc(2026, 12, 24, 7, 59), 0) is None
    assert code(unavailability(away, utc(2026, 12, 24, 8, 0), 0)) == "out_of_office"
    assert code(unavailability(away, utc(2027, 1, 3, 7, 59), 0)) == "out_of_office"  # Jan 2
    assert unavailability(away, utc(2027, 1, 3, 8, 0), 0) is None  # Jan 3 local
    skip = unavailability(away, utc(2027, 1, 2, 20, 0), 0)
    assert str(skip) == "out of office 2026-12-24..2027-01-02"


def test_single_out_of_office_day() -> None:
    away = rep(hours=None, out_of_office=parse_date_ranges([date(2026, 6, 10)], "x"))
    assert str(unavailability(away, WORKING, 0)) == "out of office 2026-06-10"
    assert unavailability(away, WORKING + timedelta(days=1), 0) is None


def test_outside_hours_detail_shows_local_time_zone_and_hours() -> None:
    saturday = utc(2026, 6, 13, 17, 14)  # Sat 10:14 PDT
    skip = unavailability(rep(), saturday, 0)
    assert skip == Skip(
        "outside_hours",
        "outside working hours: Sat 10:14 in America/Los_Angeles (Mon-Fri 09:00-17:30)",
    )


def test_outside_hours_at_the_end_of_the_day() -> None:
    assert unavailability(rep(), utc(2026, 6, 11, 0, 29), 0) is None  # Wed 17:29 PDT
    skip = unavailability(rep(), utc(2026, 6, 11, 0, 30), 0)  # Wed 17:30 PDT
    assert str(skip) == (
        "outside working hours: Wed 17:30 in America/Los_Angeles (Mon-Fri 09:00-17:30)"
    )


def test_daily_cap() -> None:
    capped = rep(daily_cap=25)
    assert unavailability(capped, WORKING, 24) is None
    assert unavailability(capped, WORKING, 25) == Skip(
        "daily_cap", "daily cap reached: 25 of 25 today"
    )
    assert str(unavailability(capped, WORKING, 30)) == "daily cap reached: 30 of 25 today"


def test_daily_cap_of_zero_takes_nothing() -> None:
    assert code(unavailability(rep(daily_cap=0), WORKING, 0)) == "daily_cap"


def test_missing_language() -> None:
    english = rep(languages=frozenset({"en"}))
    skip = unavailability(english, WORKING, 0, Requirement(languages=frozenset({"es"})))
    assert skip == Skip("missing_language", "does not speak es")
    several = Requirement(languages=frozenset({"fr", "es", "en", "de"}))
    assert str(unavailability(english, WORKING, 0, several)) == "does not speak de, es or fr"


def test_missing_skill() -> None:
    generalist = rep(skills=frozenset({"saas"}))
    skip = unavailability(generalist, WORKING, 0, Requirement(skills=frozenset({"healthcare"})))
    assert skip == Skip("missing_skill", "lacks skill healthcare")
    both = Requirement(skills=frozenset({"healthcare", "fintech", "saas"}))
    assert (
        str(unavailability(generalist, WORKING, 0, both)) == "lacks skills fintech and healthcare"
    )


def test_rep_must_have_every_required_language_and_skill() -> None:
    specialist = rep(languages=frozenset({"en", "es"}), skills=frozenset({"healthcare", "saas"}))
    need = Requirement(languages=frozenset({"es", "en"}), skills=frozenset({"healthcare"}))
    assert unavailability(specialist, WORKING, 0, need) is None
    assert unavailability(specialist, WORKING, 0, Requirement()) is None
    assert unavailability(rep(), WORKING, 0, Requirement()) is None


def test_requirements_compare_casefolded() -> None:
    requirement = Requirement(languages=frozenset({"ES"}), skills=frozenset({"HealthCare "}))
    assert requirement.languages == frozenset({"es"})
    assert requirement.skills == frozenset({"healthcare"})
    specialist = rep(languages=frozenset({"es"}), skills=frozenset({"healthcare"}))
    assert unavailability(specialist, WORKING, 0, requirement) is None
    # Reps built by hand with mixed case still match.
    shouty = rep(languages=frozenset({"ES"}), skills=frozenset({"HEALTHCARE"}))
    assert unavailability(shouty, WORKING, 0, requirement) is None
    assert Requirement(languages=frozenset({"Es"})) == Requirement(languages=frozenset({"es"}))


def test_skip_and_requirement_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Skip("inactive", "x").code = "y"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Requirement().languages = frozenset()  # type: ignore[misc]


def test_reasons_come_in_a_fixed_order() -> None:
    """With every reason true at once, removing them one by one reveals each code in turn."""
    saturday = utc(2026, 6, 13, 17, 14)
    need = Requirement(languages=frozenset({"es"}), skills=frozenset({"healthcare"}))
    everything_wrong: dict[str, Any] = {
        "active": False,
        "out_of_office": parse_date_ranges(["2026-06-13"], "x"),
        "hours": parse_hours(BUSINESS_HOURS, "x"),
        "daily_cap": 1,
    }
    fixes: dict[str, Any] = {
        "inactive": {"active": True},
        "out_of_office": {"out_of_office": ()},
        "outside_hours": {"hours": None},
        "daily_cap": {"daily_cap": None},
        "missing_language": {"languages": frozenset({"es"})},
        "missing_skill": {"skills": frozenset({"healthcare"})},
    }
    excluded: frozenset[str] = frozenset({"alice"})
    seen = []
    while True:
        skip = unavailability(rep(**everything_wrong), saturday, 5, need, excluded)
        if skip is None:
            break
        seen.append(skip.code)
        if skip.code == "excluded":
            excluded = frozenset()
        else:
            everything_wrong.update(fixes[skip.code])
    assert seen == list(SKIP_CODES)
    assert seen == [
        "excluded", "inactive", "out_of_office", "outside_hours", "daily_cap",
        "missing_language", "missing_skill",
    ]  # fmt: skip


# --- time zones ------------------------------------------------------------------------------


def test_rep_in_los_angeles_is_working_when_new_york_has_closed() -> None:
    new_york = rep(id="nina", name="Nina", timezone="America/New_York")
    los_angeles = rep()
    evening_east = utc(2026, 6, 10, 22, 0)  # Wed 18:00 EDT, 15:00 PDT
    assert code(unavailability(new_york, evening_east, 0)) == "outside_hours"
    assert "Wed 18:00 in America/New_York" in str(unavailability(new_york, evening_east, 0))
    assert unavailability(los_angeles, evening_east, 0) is None
    morning_east = utc(2026, 6, 10, 14, 0)  # Wed 10:00 EDT, 07:00 PDT
    assert unavailability(new_york, morning_east, 0) is None
    assert code(unavailability(los_angeles, morning_east, 0)) == "outside_hours"


def test_friday_evening_in_los_angeles_is_saturday_in_utc() -> None:
    friday_evening = utc(2026, 6, 13, 0, 30)  # Sat 00:30 UTC, Fri 17:30 PDT: just closed
    assert str(unavailability(rep(), friday_evening, 0)).startswith(
        "outside working hours: Fri 17:30"
    )
    assert unavailability(rep(), friday_evening - timedelta(minutes=1), 0) is None


def test_daily_cap_resets_at_midnight_in_reps_own_time_zone() -> None:
    """The caller counts a rep's leads per ``local_day``; that day turns at the rep's midnight."""
    los_angeles = rep(hours=None, daily_cap=2)
    tokyo = rep(id="kenji", name="Kenji", timezone="Asia/Tokyo", hours=None, daily_cap=2)
    assigned: dict[tuple[str, date], int] = {}

    def take(person: Rep, now: datetime) -> bool:
        key = (person.id, local_day(person, now))
        if unavailability(person, now, assigned.get(key, 0)) is not None:
            return False
        assigned[key] = assigned.get(key, 0) + 1
        return True

    # UTC midnight passes: a new UTC day, but still June 10 in Los Angeles (17:00 PDT).
    assert take(los_angeles, utc(2026, 6, 10, 23, 0))
    assert take(los_angeles, utc(2026, 6, 11, 0, 0))
    assert not take(los_angeles, utc(2026, 6, 11, 6, 59))  # 23:59 PDT, still June 10
    assert take(los_angeles, utc(2026, 6, 11, 7, 0))  # 00:00 PDT June 11: the cap reset
    assert local_day(los_angeles, utc(2026, 6, 11, 6, 59)) == date(2026, 6, 10)
    assert local_day(los_angeles, utc(2026, 6, 11, 7, 0)) == date(2026, 6, 11)

    # Tokyo's day turns at 15:00 UTC, long before UTC midnight.
    assert take(tokyo, utc(2026, 6, 10, 14, 0))
    assert take(tokyo, utc(2026, 6, 10, 14, 30))
    assert not take(tokyo, utc(2026, 6, 10, 14, 59))
    assert take(tokyo, utc(2026, 6, 10, 15, 0))  # 00:00 JST June 11
    skip = unavailability(tokyo, utc(2026, 6, 10, 14, 59), 2)
    assert str(skip) == "daily cap reached: 2 of 2 today"


def test_working_hours_follow_the_dst_change() -> None:
    """The same UTC time of day is in hours one week and outside the next, as clocks shift."""
    new_york = rep(id="nina", name="Nina", timezone="America/New_York")
    berlin = rep(id="bert", name="Bert", timezone="Europe/Berlin")

    # New York springs forward on Sunday 2026-03-08: 13:30 UTC moves from 08:30 to 09:30.
    before, after = utc(2026, 3, 6, 13, 30), utc(2026, 3, 13, 13, 30)
    assert str(unavailability(new_york, before, 0)) == (
        "outside working hours: Fri 08:30 in America/New_York (Mon-Fri 09:00-17:30)"
    )
    assert unavailability(new_york, after, 0) is None

    # New York falls back on Sunday 2026-11-01: 13:30 UTC moves from 09:30 back to 08:30.
    before, after = utc(2026, 10, 30, 13, 30), utc(2026, 11, 6, 13, 30)
    assert unavailability(new_york, before, 0) is None
    assert "Fri 08:30 in America/New_York" in str(unavailability(new_york, after, 0))

    # Berlin changes three weeks later (2026-03-29): on New York's change it stays put.
    for moment in (utc(2026, 3, 6, 7, 30), utc(2026, 3, 13, 7, 30), utc(2026, 3, 27, 7, 30)):
        assert "08:30 in Europe/Berlin" in str(unavailability(berlin, moment, 0))
    assert unavailability(berlin, utc(2026, 4, 3, 7, 30), 0) is None  # 09:30 CEST

    # Between the two changes New York and Berlin are five hours apart, then six again: the
    # same 16:15 UTC is 12:15 in New York both weeks but moves from 17:15 to 18:15 in Berlin.
    before, after = utc(2026, 3, 27, 16, 15), utc(2026, 4, 3, 16, 15)
    assert local_now(new_york, before).hour == local_now(new_york, after).hour == 12
    assert unavailability(berlin, before, 0) is None
    assert str(unavailability(berlin, after, 0)) == (
        "outside working hours: Fri 18:15 in Europe/Berlin (Mon-Fri 09:00-17:30)"
    )


def test_hours_on_the_night_clocks_change() -> None:
    """On the spring-forward night 02:00-03:00 does not exist; the rep's clock skips it."""
    night = rep(timezone="America/New_York", hours=parse_hours("Sun 01:00-03:00", "x"))
    assert unavailability(night, utc(2026, 3, 8, 6, 59), 0) is None  # 01:59 EST
    skip = unavailability(night, utc(2026, 3, 8, 7, 0), 0)  # one minute later: 03:00 EDT
    assert str(skip) == ("outside working hours: Sun 03:00 in America/New_York (Sun 01:00-03:00)")
    # Falling back, 01:00-02:00 happens twice, and both are in hours.
    assert unavailability(night, utc(2026, 11, 1, 5, 30), 0) is None  # 01:30 EDT
    assert unavailability(night, utc(2026, 11, 1, 6, 30), 0) is None  # 01:30 EST


def test_every_skip_code_is_covered() -> None:
    assert set(SKIP_CODES) == {
        "inactive", "out_of_office", "outside_hours", "daily_cap", "missing_language",
        "missing_skill", "excluded",
    }  # fmt: skip
