"""The times the CLI accepts wherever it asks for one (``--at``, ``--since``, ``--now``).

The grammar, case-insensitive::

    TIME := ISO-8601            2026-12-01T09:30, 2026-12-01 (app.yaml's timezone unless an
                                offset is given: 2026-12-01T09:30+01:00, ...Z)
          | now | today | yesterday      today and yesterday: local midnight in app.yaml's
                                         timezone
          | DURATION [ago]      that long before now: 30m, 2h, 7d, 1h30m, 2h ago
          | in DURATION         that long after now: in 2h

DURATION is app.yaml's duration syntax (``sla.first_touch``): days, hours, minutes, seconds.

Whatever the form, the time must fall in the years ``FIRST_YEAR`` to ``LAST_YEAR`` in app.yaml's
timezone: routing a lead in year 1 or 9999 is a typo, and the calendar arithmetic further on
(working hours, time zones a few hours either side) overflows at Python's own limits.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo

from workflows.config_schema import _as_duration  # app.yaml's own duration syntax
from workflows.errors import LeadError
from workflows.model import parse_datetime

FIRST_YEAR, LAST_YEAR = 1970, 2999
TIME_HELP = (
    "ISO-8601 (in app.yaml's timezone unless it has an offset), now, today, yesterday "
    "(local midnight), a duration ago (30m, 2h, 7d, 1h30m ago) or in DURATION; "
    f"between the years {FIRST_YEAR} and {LAST_YEAR}"
)
_EXPECTED = (
    "expected an ISO-8601 time (2026-12-01T09:30), now, today, yesterday, "
    "a duration ago (30m, 2h, 7d, 1h30m ago) or in DURATION (in 2h)"
)


class TimeError(ValueError):
    """A CLI time that the grammar above does not read."""


def parse_cli_time(text: str, tz: tzinfo, now: datetime) -> datetime:
    """Read ``text`` as the grammar above says; an aware UTC datetime.

    ``now`` (aware) anchors the relative forms; ``tz`` is app.yaml's ``timezone``.
    """
    words = " ".join(text.lower().split())
    if not words:
        raise TimeError(f"{_EXPECTED}; got {_shown(text)}")
    outside = TimeError(f"{_shown(text)} is not between the years {FIRST_YEAR} and {LAST_YEAR}")
    try:
        moment = _read(words, text, tz, now)
        local_year = moment.astimezone(tz).year
    except OverflowError:  # past Python's year 1 or 9999, in UTC or in app.yaml's timezone
        raise outside from None
    except LeadError:
        raise TimeError(f"{_EXPECTED}; got {_shown(text)}") from None
    if not FIRST_YEAR <= local_year <= LAST_YEAR:
        raise outside
    return moment


def _read(words: str, text: str, tz: tzinfo, now: datetime) -> datetime:
    if words == "now":
        return now.astimezone(UTC)
    if words in ("today", "yesterday"):
        day = now.astimezone(tz).date() - timedelta(days=1 if words == "yesterday" else 0)
        return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    if words.startswith("in "):
        return (now + _duration(words[3:], text)).astimezone(UTC)
    span = _as_duration_or_none(words.removesuffix(" ago"))
    if span is not None:
        return (now - span).astimezone(UTC)
    moment = parse_datetime("time", text, tz)
    assert moment is not None  # the text is not empty
    return moment


def _duration(words: str, text: str) -> timedelta:
    span = _as_duration_or_none(words)
    if span is None:
        raise TimeError(f"{_EXPECTED}; got {_shown(text)}")
    return span


def _as_duration_or_none(words: str) -> timedelta | None:
    try:
        span = _as_duration(words)
    except ValueError:  # not a duration (or a number thousands of digits long)
        return None
    return span if isinstance(span, timedelta) else None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")
