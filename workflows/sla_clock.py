"""The SLA clock: when a first-touch deadline falls, and how long a first touch took.

``wall`` counts every second. ``working_hours`` counts only the owner's own working hours in
their own time zone: nights, weekends and out-of-office days do not count, and daylight-saving
changes are handled by converting each local working span to UTC on its own day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from workflows.config import Config
from workflows.model import Decision, Rep, SlaClock
from workflows.store import SlaTerms

_DAY = 24 * 60
_HORIZON_DAYS = 400  # a rep with no working time in a year gets the wall clock instead


def to_key(moment: datetime) -> str:
    """A fixed-width UTC text that sorts like the time itself (for the store's due index)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def working_spans(rep: Rep, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The rep's working spans (UTC) from ``start`` on, the first one clipped to ``start``."""
    zone = ZoneInfo(rep.timezone)
    day = start.astimezone(zone).date()
    intervals = rep.hours.intervals if rep.hours is not None else ((0, 7 * _DAY),)
    for _ in range(_HORIZON_DAYS):
        if not any(away.contains(day) for away in rep.out_of_office):
            base = day.weekday() * _DAY
            for first, last in intervals:
                low, high = max(first, base), min(last, base + _DAY)
                if low >= high:
                    continue
                span_start = _local(day, low - base, zone)
                span_end = _local(day, high - base, zone)
                span_start = max(span_start, start)
                if span_end > span_start:
                    yield span_start, span_end
        day += timedelta(days=1)


def _local(day: date, minute: int, zone: ZoneInfo) -> datetime:
    # Built as a naive wall time, then placed in the zone: 24:00 is the next midnight, and a
    # time a DST jump skips (02:30 in spring) lands on the instant the clocks jumped to.
    wall = datetime.combine(day, time(0)) + timedelta(minutes=minute)
    return wall.replace(tzinfo=zone).astimezone(UTC)


def deadline(start: datetime, first_touch: timedelta, clock: SlaClock, rep: Rep | None) -> datetime:
    """``start`` plus ``first_touch``, counted on ``clock`` (``wall`` or ``working_hours``)."""
    start = start.astimezone(UTC)
    if clock != "working_hours" or rep is None:
        return start + first_touch
    left = first_touch
    for span_start, span_end in working_spans(rep, start):
        if span_end - span_start >= left:
            return span_start + left
        left -= span_end - span_start
    return start + first_touch


def elapsed(start: datetime, end: datetime, clock: SlaClock, rep: Rep | None) -> timedelta:
    """Time from ``start`` to ``end`` on ``clock`` (zero when ``end`` is not after ``start``)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return timedelta(0)
    if clock != "working_hours" or rep is None:
        return end - start
    total = timedelta(0)
    for span_start, span_end in working_spans(rep, start):
        if span_start >= end:
            break
        total += min(span_end, end) - span_start
    return total


def sla_terms(config: Config, decision: Decision, now: datetime) -> SlaTerms | None:
    """What the store keeps about a new assignment's SLA, or None when none applies."""
    if decision.outcome == "queued" and decision.queue in config.queues:
        return _queue_terms(config, decision, now)
    if decision.outcome != "assigned" or not decision.rep_id:
        return None
    settings = config.sla_for(decision.rule)
    if settings is None:
        return None
    rep = config.reps.get(decision.rep_id)
    due = deadline(now, settings.first_touch, settings.clock, rep)
    return {
        "deadline": due.isoformat(),
        "due_key": to_key(due),
        "clock": settings.clock,
        "first_touch_s": int(settings.first_touch.total_seconds()),
        "max_reassignments": settings.max_reassignments,
    }


def _queue_terms(config: Config, decision: Decision, now: datetime) -> SlaTerms | None:
    """A lead parked in a queue is still unowned: reps have the queue's own ``first_touch``
    (else the rule's) to pick it up, on the wall clock (a queue keeps no working hours)."""
    settings = config.sla_for(decision.rule)
    queue = config.queues[str(decision.queue)]
    if settings is None:
        return None
    first_touch = queue.first_touch or settings.first_touch
    due = deadline(now, first_touch, "wall", None)
    return {
        "deadline": due.isoformat(),
        "due_key": to_key(due),
        "clock": "wall",
        "first_touch_s": int(first_touch.total_seconds()),
        "max_reassignments": settings.max_reassignments,
        "queue": queue.name,
    }
