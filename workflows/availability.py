"""Can this rep take a lead right now? If not, a reason a CRM admin can read in the log.

Every time check happens in the rep's own time zone: working hours, out-of-office dates and
the daily cap (which resets at the rep's local midnight) all follow the rep's wall clock,
including its daylight-saving changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from workflows.model import Rep
from workflows.working_hours import DAY_NAMES

# The order unavailability() checks them in.
SKIP_CODES = (
    "excluded",
    "inactive",
    "out_of_office",
    "outside_hours",
    "daily_cap",
    "missing_language",
    "missing_skill",
)


@dataclass(frozen=True)
class Skip:
    """Why a rep was passed over: a stable ``code`` for programs, a ``detail`` for people."""

    code: str
    detail: str

    def __str__(self) -> str:
        return self.detail


def _casefolded(values: Iterable[str]) -> frozenset[str]:
    return frozenset(value.strip().casefold() for value in values)


@dataclass(frozen=True)
class Requirement:
    """What a lead needs from its rep: every listed language and every listed skill.

    Values are casefolded on construction, so ``Requirement(languages={"ES"})`` matches a rep
    who speaks ``es``.
    """

    languages: frozenset[str] = frozenset()
    skills: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # A frozen dataclass can only normalize its fields through object.__setattr__.
        object.__setattr__(self, "languages", _casefolded(self.languages))
        object.__setattr__(self, "skills", _casefolded(self.skills))


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(
            f"now must be timezone-aware (for example datetime.now(timezone.utc)), got {now!r}"
        )


def local_now(rep: Rep, now: datetime) -> datetime:
    """``now`` (an aware datetime in any zone) on the rep's wall clock."""
    _require_aware(now)
    return now.astimezone(ZoneInfo(rep.timezone))


def local_day(rep: Rep, now: datetime) -> date:
    """The rep's local calendar date at ``now``: daily caps reset at the rep's midnight."""
    return local_now(rep, now).date()


def _join(words: Iterable[str], conjunction: str) -> str:
    """``a``, ``a or b``, ``a, b or c``: sorted, so the same gap reads the same every time."""
    ordered = sorted(words)
    if len(ordered) == 1:
        return ordered[0]
    return f"{', '.join(ordered[:-1])} {conjunction} {ordered[-1]}"


def unavailability(
    rep: Rep,
    now: datetime,
    assigned_today: int,
    require: Requirement | None = None,
    excluded: frozenset[str] = frozenset(),
) -> Skip | None:
    """``None`` when ``rep`` can take a lead at ``now``, else the first reason they cannot.

    Reasons are checked in this order: excluded (``rep.id`` in ``excluded``), inactive,
    out_of_office, outside_hours, daily_cap, missing_language, missing_skill.
    ``assigned_today`` counts the rep's assignments on their local day (see :func:`local_day`).
    ``now`` must be timezone-aware; a naive datetime raises ``ValueError``.
    """
    _require_aware(now)
    if rep.id in excluded:
        return Skip("excluded", "excluded: previously owned this lead")
    if not rep.active:
        return Skip("inactive", "inactive: marked active: false in app.yaml")

    local = local_now(rep, now)
    today = local.date()
    for away in rep.out_of_office:
        if away.contains(today):
            return Skip("out_of_office", f"out of office {away}")
    if rep.hours is not None and not rep.hours.contains(local):
        clock = f"{DAY_NAMES[local.weekday()]} {local:%H:%M}"
        return Skip(
            "outside_hours",
            f"outside working hours: {clock} in {rep.timezone} ({rep.hours.describe()})",
        )
    if rep.daily_cap is not None and assigned_today >= rep.daily_cap:
        return Skip("daily_cap", f"daily cap reached: {assigned_today} of {rep.daily_cap} today")

    if require is not None:
        if require.languages:
            missing = require.languages - _casefolded(rep.languages)
            if missing:
                return Skip("missing_language", f"does not speak {_join(missing, 'or')}")
        if require.skills:
            missing = require.skills - _casefolded(rep.skills)
            if missing:
                noun = "skill" if len(missing) == 1 else "skills"
                return Skip("missing_skill", f"lacks {noun} {_join(missing, 'and')}")
    return None
