"""The log's queries in SQL: ``LogQuery`` and ``AssignmentQuery`` as WHERE clauses on the
projection columns of ``assignment_log`` (``workflows.log_projection``, the columns the
embedded store's queries read too), and its rows back as records and facts.

A page of ``assignments`` is newest first below a cursor id; ``rep`` (new OR previous owner)
is two branches, each reading one index (``(column, id)``) backwards and stopping at the
page's end, so a page costs a few index pages however many records match.
"""

from __future__ import annotations

import itertools
from typing import Any

from workflows.log_projection import COLUMNS, facts_of, time_key
from workflows.model import AssignmentRecord
from workflows.postgres_rows import safe
from workflows.sqlite_values import decode
from workflows.store import AssignmentFacts, AssignmentQuery, LogQuery

Branch = tuple[str, list[Any]]  # a WHERE clause and its parameters

# A log row with the SLA state kept beside it.
RECORD_SELECT = (
    "SELECT l.id, l.record::text, s.state::text FROM assignment_log l "
    "LEFT JOIN sla_states s ON s.log_id = l.id"
)
FACTS_SELECT = f"SELECT {', '.join(COLUMNS)} FROM assignment_log"


def log_where(query: LogQuery) -> Branch:
    """The WHERE clause (on ``l``) of the log's own filters."""
    clauses: list[str] = []
    params: list[Any] = []
    if query.since:
        clauses.append("l.decided_at >= %s")
        params.append(time_key(query.since))
    if query.rep:
        clauses.append("(l.new_owner = %s OR l.previous_owner = %s)")
        params += [safe(query.rep)] * 2
    if query.lead:
        clauses.append("l.lead_id = %s")
        params.append(safe(query.lead))
    if query.crm:
        clauses.append("l.crm = %s")
        params.append(safe(query.crm))
    return " AND ".join(clauses) or "true", params


def branches(query: AssignmentQuery) -> list[Branch]:
    """WHERE clauses whose union is ``query`` (``rep`` makes two)."""
    common: list[Branch] = []
    if query.since is not None:
        common.append(("decided_at >= %s", [time_key(query.since)]))
    if query.until is not None:
        common.append(("decided_at < %s", [time_key(query.until)]))
    if query.rule is not None:
        rule = safe(query.rule)
        # "0" sorts right after "/": the range is every rule under this one.
        common.append(("(rule = %s OR (rule >= %s AND rule < %s))", [rule, f"{rule}/", f"{rule}0"]))
    for column, wanted in (
        ("outcome", query.outcome),
        ("source", query.source),
        ("crm", query.crm),
        ("object_type", query.object_type),
    ):
        if wanted is not None:
            common.append((f"{column} = %s", [safe(wanted)]))
    choices: list[list[Branch]] = []
    if query.rep is not None:
        rep = safe(query.rep)
        choices.append([("new_owner = %s", [rep]), ("previous_owner = %s", [rep])])
    found = []
    for picked in itertools.product(*choices):
        parts = [*common, *picked]
        where = " AND ".join(clause for clause, _ in parts) or "true"
        found.append((where, [p for _, params in parts for p in params]))
    return found


def page_ids(query: AssignmentQuery, before: int | None, limit: int) -> tuple[str, list[Any]]:
    """The SELECT of up to ``limit`` ids matching ``query`` below ``before``, newest first."""
    below = "" if before is None else " AND id < %s"
    selects, params = [], []
    for where, values in branches(query):
        selects.append(
            f"(SELECT id FROM assignment_log WHERE {where}{below} ORDER BY id DESC LIMIT %s)"
        )
        params += [*values, *([] if before is None else [before]), limit]
    sql = f"SELECT id FROM ({' UNION '.join(selects)}) AS page ORDER BY id DESC LIMIT %s"
    return sql, [*params, limit]


def facts_page(query: AssignmentQuery, after: int, limit: int) -> tuple[str, list[Any]]:
    """The SELECT of up to ``limit`` projection rows matching ``query`` above ``after``."""
    parts = branches(query)
    where = " OR ".join(f"({clause})" for clause, _ in parts)
    params = [p for _, values in parts for p in values]
    sql = f"{FACTS_SELECT} WHERE ({where}) AND id > %s ORDER BY id LIMIT %s"
    return sql, [*params, after, limit]


def record_of(record: str, sla: str | None) -> AssignmentRecord:
    """A record as the log keeps it, its SLA state riding along in ``extra["sla"]``."""
    made = AssignmentRecord.from_dict(decode(record))
    if sla is not None:
        made.extra["sla"] = decode(sla)
    return made


def facts_row(row: tuple[Any, ...]) -> AssignmentFacts:
    """A row of ``facts_page`` (the projection's ``COLUMNS``, in order) as facts."""
    return facts_of(row)
