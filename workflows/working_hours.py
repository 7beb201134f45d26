"""Working hours and out-of-office dates as an admin writes them in app.yaml.

``parse_hours("Mon-Fri 09:00-17:30; Sat 10:00-14:00", path)`` gives a :class:`WeeklyHours`
that answers "is this local wall-clock time inside working hours?" with one binary search over
minute-of-week intervals, because the router asks that for every rep on every lead.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from workflows.errors import ConfigError

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_INDEX = {
    **{name.casefold(): i for i, name in enumerate(DAY_NAMES)},
    **{name: i for i, name in enumerate(_FULL_DAY_NAMES)},
}
_DAY = 24 * 60
_WEEK = 7 * _DAY
_ALWAYS_WORDS = frozenset({"always", "24/7"})

HOURS_EXAMPLE = "expected like 'Mon-Fri 09:00-17:30'"
DATES_EXAMPLE = "expected a date like '2026-12-24' or a range like '2026-12-24..2027-01-02'"

# A newline separates spans too, so a YAML block scalar with one span per line also reads.
_SEGMENT_SEPARATORS = re.compile(r"[;,\n]")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class WeeklyHours:
    """A weekly schedule in the rep's local time.

    ``intervals`` are sorted, merged, half-open ``[start, end)`` minute-of-week spans where
    minute 0 is Monday 00:00; a span that wraps past Sunday midnight is stored as two.
    ``text`` is the normalized form for messages; equality compares only the schedule.
    """

    intervals: tuple[tuple[int, int], ...]
    text: str = field(default="", compare=False)

    def contains(self, local: datetime) -> bool:
        """Whether ``local`` (already in the rep's time zone) falls inside working hours.

        Only the weekday and wall-clock minute matter: the start of a span is inside, its end
        is not.
        """
        minute = local.weekday() * _DAY + local.hour * 60 + local.minute
        # The last span starting at or before this minute is the only one that can hold it.
        index = bisect_right(self.intervals, (minute, _WEEK + 1)) - 1
        return index >= 0 and minute < self.intervals[index][1]

    def describe(self) -> str:
        """The normalized text, such as ``Mon-Fri 09:00-17:30`` or ``always``."""
        return self.text

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class DateRange:
    """Calendar dates from ``start`` to ``end``, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"date range ends ({self.end}) before it starts ({self.start})")

    def contains(self, day: date) -> bool:
        """Whether ``day`` is one of the dates in this range (both ends count)."""
        return self.start <= day <= self.end

    def __str__(self) -> str:
        if self.start == self.end:
            return self.start.isoformat()
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


ALWAYS = WeeklyHours(((0, _WEEK),), "always")


def parse_hours(text: str, path: str) -> WeeklyHours:
    """Read working hours such as ``Mon-Fri 09:00-17:30; Sat 10:00-14:00``.

    Spans are separated by ``;`` or ``,``. Days are a name (``Mon``, ``monday``), a range
    (``Mon-Fri``, or wrapping ``Fri-Mon``) or a ``+`` list (``Mon+Wed+Fri``). An end earlier
    than the start runs past midnight into the next day; ``24:00`` may end a span. ``always``
    or ``24/7`` means every minute. Raises :class:`ConfigError` at ``path`` for bad text.
    """
    if not isinstance(text, str):
        raise ConfigError(path, f"working hours must be text, got {text!r}; {HOURS_EXAMPLE}")
    if text.strip().casefold() in _ALWAYS_WORDS:
        return ALWAYS
    segments = [s.strip() for s in _SEGMENT_SEPARATORS.split(text) if s.strip()]
    if not segments:
        raise ConfigError(path, f"no working hours given; {HOURS_EXAMPLE} or 'always'")

    spans: list[tuple[int, int]] = []
    described: list[str] = []
    for segment in segments:
        if segment.casefold() in _ALWAYS_WORDS:
            raise ConfigError(
                path, f"{segment!r} must stand alone, not be one span among others; {HOURS_EXAMPLE}"
            )
        days, start, end = _parse_segment(segment, path)
        described.append(f"{_describe_days(days)} {_clock(start)}-{_clock(end)}")
        for day in days:
            first = day * _DAY + start
            last = day * _DAY + end if end > start else (day + 1) * _DAY + end
            if last > _WEEK:  # Sunday night into Monday morning: split at the week boundary
                spans += [(first, _WEEK), (0, last - _WEEK)]
            else:
                spans.append((first, last))
    return WeeklyHours(_merge(spans), "; ".join(described))


def _parse_segment(segment: str, path: str) -> tuple[list[int], int, int]:
    """Split ``Mon-Fri 09:00-17:30`` into sorted day indexes and start/end minutes of the day."""
    # Day names hold no digits, so the times start at the first digit.
    match = re.search(r"\d", segment)
    if match is None:
        raise ConfigError(path, f"{segment!r} has no times; {HOURS_EXAMPLE}")
    days_text, times_text = segment[: match.start()].strip(), segment[match.start() :]
    if not days_text:
        raise ConfigError(path, f"{segment!r} names no days; {HOURS_EXAMPLE}")
    times = [t.strip() for t in times_text.split("-")]
    if len(times) != 2:
        raise ConfigError(
            path, f"{times_text.strip()!r} in {segment!r} is not a start-end time; {HOURS_EXAMPLE}"
        )
    start = _parse_time(times[0], segment, path, is_end=False)
    end = _parse_time(times[1], segment, path, is_end=True)
    if start == end:
        raise ConfigError(
            path,
            f"{segment!r} starts and ends at the same time; for a whole day write 00:00-24:00",
        )
    return _parse_days(days_text, segment, path), start, end


def _parse_days(text: str, segment: str, path: str) -> list[int]:
    days: set[int] = set()
    for part in text.split("+"):
        names = [name.strip() for name in part.split("-")]
        if len(names) > 2:
            raise ConfigError(
                path, f"{part.strip()!r} in {segment!r} is not a day range; {HOURS_EXAMPLE}"
            )
        first, last = (_day_index(name, segment, path) for name in (names[0], names[-1]))
        # Counting forward from the first day makes Fri-Mon wrap through the weekend.
        days.update((first + step) % 7 for step in range((last - first) % 7 + 1))
    return sorted(days)


def _day_index(name: str, segment: str, path: str) -> int:
    if not name:
        raise ConfigError(path, f"{segment!r} is missing a day name; {HOURS_EXAMPLE}")
    index = _DAY_INDEX.get(name.casefold())
    if index is None:
        raise ConfigError(
            path,
            f"{name!r} in {segment!r} is not a day (use Mon..Sun or Monday..Sunday); "
            f"{HOURS_EXAMPLE}",
        )
    return index


def _parse_time(text: str, segment: str, path: str, *, is_end: bool) -> int:
    match = _TIME.fullmatch(text)
    hour, minute = (int(match[1]), int(match[2])) if match else (-1, -1)
    if not match or minute > 59 or hour > 24 or (hour == 24 and minute):
        raise ConfigError(
            path, f"{text!r} in {segment!r} is not a time from 00:00 to 24:00; {HOURS_EXAMPLE}"
        )
    if hour == 24 and not is_end:
        raise ConfigError(
            path, f"{segment!r} starts at 24:00, which can only end a span; {HOURS_EXAMPLE}"
        )
    return hour * 60 + minute


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def _describe_days(days: list[int]) -> str:
    """Write a set of days compactly: runs of three or more as ranges (``Fri-Mon``)."""
    if len(days) == 7:
        return "Mon-Sun"
    chosen = set(days)
    parts = []
    for first in days:
        if (first - 1) % 7 in chosen:
            continue  # not the start of a run
        length = 1
        while (first + length) % 7 in chosen:
            length += 1
        run = [DAY_NAMES[(first + i) % 7] for i in range(length)]
        parts.append(f"{run[0]}-{run[-1]}" if length >= 3 else "+".join(run))
    return "+".join(parts)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_date_ranges(items: list[Any] | None, path: str) -> tuple[DateRange, ...]:
    """Read out-of-office dates: ``2026-12-24..2027-01-02`` (both ends included), a single
    ``2026-12-24``, or ``date`` objects as YAML gives for bare dates.

    An empty or missing list means none. Errors name the item, as ``path[1]``.
    """
    if items is None:
        return ()
    if not isinstance(items, (list, tuple)):
        raise ConfigError(
            path, f"expected a list such as ['2026-12-24..2027-01-02'], got {items!r}"
        )
    return tuple(_parse_date_range(item, f"{path}[{i}]") for i, item in enumerate(items))


def _parse_date_range(item: Any, path: str) -> DateRange:
    # A datetime is a date subclass, but out-of-office is whole days: say so, don't guess.
    if isinstance(item, datetime):
        raise ConfigError(path, f"{item.isoformat(sep=' ')!r} has a time of day; {DATES_EXAMPLE}")
    if isinstance(item, date):
        return DateRange(item, item)
    if not isinstance(item, str):
        raise ConfigError(path, f"{item!r} is not a date; {DATES_EXAMPLE}")
    parts = [part.strip() for part in item.split("..")]
    if len(parts) > 2:
        raise ConfigError(path, f"{item!r} is not a date range; {DATES_EXAMPLE}")
    start, end = (_parse_date(part, item, path) for part in (parts[0], parts[-1]))
    if end < start:
        raise ConfigError(path, f"{item!r} ends ({end}) before it starts ({start})")
    return DateRange(start, end)


def _parse_date(text: str, item: str, path: str) -> date:
    # fromisoformat alone also takes "20261224" and week dates; admins should see one format.
    if not _ISO_DATE.fullmatch(text):
        where = "" if text == item else f" in {item!r}"
        raise ConfigError(path, f"{text!r}{where} is not a date; {DATES_EXAMPLE}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(path, f"{text!r} is not a real calendar date") from None
