"""The assignment log's filters, as the console's form and the API take them (query
parameters), read into an ``AssignmentQuery`` and a cursor. A bad value is a
``FilterError`` naming the parameter; an unknown parameter is one too (a typo such as
``rpe=chen`` must not quietly answer the whole log)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from connector.cli_time import TimeError, parse_cli_time
from workflows.config import Config
from workflows.model import OBJECT_KINDS, OUTCOMES, Outcome, one_of
from workflows.store import AssignmentQuery

# The form's names for each source (``flow`` is the Salesforce Flow action's).
SOURCES = {
    "hubspot": "hubspot",
    "salesforce": "salesforce",
    "flow": "salesforce-flow",
    "salesforce-flow": "salesforce-flow",
    "sweep": "sweep",
    "reassign": "reassign",
}
CRMS = ("hubspot", "salesforce", "none")
OBJECTS = OBJECT_KINDS  # contact, company, deal, ticket, lead, account, opportunity, case
PARAMETERS = (
    "since", "until", "rep", "rule", "outcome", "source", "crm", "object", "before", "limit",
)  # fmt: skip
MAX_LIMIT = 500
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MAX_TEXT = 200


class FilterError(ValueError):
    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter


@dataclass(frozen=True)
class LogFilters:
    """What one request asks of the log: the query, the cursor, the page size, and the
    filters as given (to fill the form and build the next page's link)."""

    query: AssignmentQuery
    before: int | None
    limit: int
    given: dict[str, str]
    notes: list[str]  # what a person should know about the filters (an unknown rep)


def read_filters(
    args: Mapping[str, str], config: Config, now: datetime, *, default_limit: int = 50
) -> LogFilters:
    """Read query parameters; empty ones (a form's blank boxes) count as not given."""
    given = {name: value.strip() for name, value in args.items() if value.strip()}
    for name in given:
        if name not in PARAMETERS:
            raise FilterError(name, f"unknown parameter (expected {', '.join(PARAMETERS)})")
    tz = ZoneInfo(config.timezone)
    since = _time(given, "since", tz, now)
    until = _time(given, "until", tz, now, whole_day=True)
    if since and until and until <= since:
        raise FilterError("until", "must be after since")
    rep = given.get("rep")
    notes = []
    if rep is not None and len(rep) > _MAX_TEXT:
        raise FilterError("rep", f"longer than {_MAX_TEXT} characters")
    if rep is not None and rep not in config.reps:
        # Still searched: a rep taken out of app.yaml keeps their history in the log.
        notes.append(f"rep {rep[:40]!r} is not in app.yaml: showing the records that name them")
    rule = given.get("rule")
    if rule is not None and len(rule) > _MAX_TEXT:
        raise FilterError("rule", f"longer than {_MAX_TEXT} characters")
    outcome: Outcome | None = None
    if "outcome" in given:
        try:
            outcome = one_of(given["outcome"], OUTCOMES, "outcome")
        except ValueError:
            raise FilterError("outcome", f"expected one of {', '.join(OUTCOMES)}") from None
    source = _choice(given, "source", tuple(SOURCES))
    query = AssignmentQuery(
        since=since,
        until=until,
        rep=rep,
        rule=rule,
        outcome=outcome,
        source=SOURCES[source] if source else None,
        crm=_choice(given, "crm", CRMS),
        object_type=_choice(given, "object", OBJECTS),
    )
    before = _whole(given, "before", 1, 2**62)
    limit = _whole(given, "limit", 1, MAX_LIMIT) or default_limit
    return LogFilters(query, before, limit, given, notes)


def _choice(given: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    value = given.get(name)
    if value is not None and value not in choices:
        raise FilterError(name, f"expected one of {', '.join(choices)}, got {value[:40]!r}")
    return value


def _whole(given: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    text = given.get(name)
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise FilterError(name, f"expected a whole number from {low} to {high}")
    return int(text)


def _time(
    given: Mapping[str, str], name: str, tz: ZoneInfo, now: datetime, whole_day: bool = False
) -> datetime | None:
    """A date or time (``cli_time``'s grammar); ``until`` with a bare date means to the end
    of that day, as a person reading "until 2026-11-24" expects."""
    text = given.get(name)
    if text is None:
        return None
    try:
        if whole_day and _DATE.fullmatch(text):
            text = (date.fromisoformat(text) + timedelta(days=1)).isoformat()
        return parse_cli_time(text, tz, now)
    except (TimeError, ValueError, OverflowError) as exc:
        raise FilterError(name, str(exc)) from None
