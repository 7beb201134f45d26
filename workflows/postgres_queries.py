"""The log's queries in SQL: the filters of ``LogQuery`` and ``AssignmentQuery`` as WHERE
clauses on the indexed columns of ``assignment_log``, and its rows back as records and facts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from workflows.model import AssignmentRecord
from workflows.postgres_rows import safe
from workflows.sqlite_transaction import decode
from workflows.store import AssignmentFacts, AssignmentQuery, LogQuery, SlaState

Where = tuple[list[str], list[Any]]

# A log row with the states kept beside it.
RECORD_SELECT = (
    "SELECT l.id, l.record::text, s.state::text FROM assignment_log l "
    "LEFT JOIN sla_states s ON s.log_id = l.id"
)
FACTS_SELECT = (
    "SELECT l.id, l.record::text, s.state::text, w.state::text, o.times::text "
    "FROM assignment_log l LEFT JOIN sla_states s ON s.log_id = l.id "
    "LEFT JOIN writebacks w ON w.log_id = l.id LEFT JOIN outcomes o ON o.log_id = l.id"
)


def log_where(query: LogQuery) -> Where:
    clauses: list[str] = []
    params: list[Any] = []
    if query.since:
        clauses.append("l.decided_at >= %s")
        params.append(query.since)
    if query.rep:
        clauses.append("(l.new_owner = %s OR l.previous_owner = %s)")
        params += [safe(query.rep)] * 2
    if query.lead:
        clauses.append("l.lead_id = %s")
        params.append(safe(query.lead))
    if query.crm:
        clauses.append("l.crm = %s")
        params.append(safe(query.crm))
    return clauses, params


def assignment_where(query: AssignmentQuery) -> Where:
    clauses, params = log_where(LogQuery(since=query.since, rep=query.rep, crm=query.crm))
    if query.until:
        clauses.append("l.decided_at < %s")
        params.append(query.until)
    if query.rule:
        clauses.append("(l.rule = %s OR starts_with(l.rule, %s))")
        params += [safe(query.rule), safe(f"{query.rule}/")]
    for column, wanted in (
        ("outcome", query.outcome),
        ("source", query.source),
        ("object_type", query.object_type),
    ):
        if wanted is not None:
            clauses.append(f"l.{column} = %s")
            params.append(safe(wanted))
    return clauses, params


def where_sql(clauses: list[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


def record_of(record: str, sla: str | None) -> AssignmentRecord:
    """A record as the log keeps it, its SLA state riding along in ``extra["sla"]``."""
    made = AssignmentRecord.from_dict(decode(record))
    if sla is not None:
        made.extra["sla"] = decode(sla)
    return made


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def facts_of(
    record: str, sla: str | None, writeback: str | None, times: str | None
) -> AssignmentFacts:
    """One log row flattened for statistics."""
    made = AssignmentRecord.from_dict(decode(record))
    state = cast(SlaState, decode(sla)) if sla else None
    status = decode(writeback)["status"] if writeback else None
    seen: dict[str, Any] = decode(times) if times else {}
    return AssignmentFacts(
        id=made.id,
        decided_at=made.decided_at,
        crm=made.crm,
        object_type=made.object_type,
        lead_id=made.lead_id,
        source=made.source,
        rule=made.rule,
        outcome=made.decision.outcome,
        previous_owner=made.previous_owner,
        new_owner=made.new_owner,
        sla_status=state["status"] if state else None,
        sla_outcome=state.get("outcome") if state else None,
        sla_deadline=_time(state.get("deadline")) if state else None,
        ttft_s=state.get("ttft_s") if state else None,
        rotations=state["rotations"] if state else 0,
        writeback_status=status,
        contacted_at=_time(seen.get("contacted_at")),
        converted_at=_time(seen.get("converted_at")),
        disqualified_at=_time(seen.get("disqualified_at")),
    )
