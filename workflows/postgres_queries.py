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

from workflows.log_projection import COLUMNS, facts_of, from_time_key, time_key
from workflows.model import AssignmentRecord
from workflows.postgres_rows import safe
from workflows.sqlite_values import decode
from workflows.store import AssignmentFacts, AssignmentQuery, FactTally, LogQuery, TallyQuery

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


# The console's statistics (``Store.fact_tallies``): one GROUP BY, each count an aggregate with
# a FILTER, so PostgreSQL counts in one hashed pass; the times to first touch as sorted arrays.
_IN_PERIOD = "decided_at >= %(since)s AND decided_at <= %(now)s"
_SLA = f"{_IN_PERIOD} AND sla_status IS NOT NULL"
_CONVERTED = (
    "converted_at IS NOT NULL "
    "AND converted_at::timestamp - decided_at::timestamp <= %(window)s::interval"
)
_TALLIED = {  # FactTally's counts, each of the rows where its condition holds
    "leads": _IN_PERIOD,
    "up_to_now": "decided_at <= %(now)s",
    "under_sla": _SLA,
    "rotated_away": f"{_SLA} AND sla_outcome IN ('rotated', 'escalated')",
    "escalated_away": f"{_SLA} AND sla_outcome = 'escalated'",
    "escalations_received": f"{_SLA} AND sla_status = 'escalated'",
    "open_breaches": f"{_SLA} AND sla_status = 'open' AND sla_deadline < %(now)s",
    "contacted": f"{_IN_PERIOD} AND contacted_at IS NOT NULL",
    "mature": f"{_IN_PERIOD} AND decided_at <= %(mature_before)s",
    "converted": f"{_IN_PERIOD} AND decided_at <= %(mature_before)s AND {_CONVERTED}",
    "converted_recently": f"{_IN_PERIOD} AND decided_at > %(mature_before)s AND {_CONVERTED}",
}
_FAILED = "writeback_status = 'failed' AND decided_at >= %(since)s"


def tallies_select(query: TallyQuery) -> tuple[str, dict[str, Any]]:
    """The SELECT of ``fact_tallies``' groups: rep (None: no assignment), rule, source, the
    lowest id in the period, ``_TALLIED``'s counts, the times to first touch with and without
    an SLA status, the counts since each start, the failed write-backs and the oldest."""
    params: dict[str, Any] = {
        "earliest": time_key(query.earliest),
        "since": time_key(query.since),
        "now": time_key(query.now),
        "mature_before": time_key(query.now - query.window),
        "window": query.window,
    }
    measures = [f"min(id) FILTER (WHERE {_IN_PERIOD})"]
    measures += [f"count(*) FILTER (WHERE {condition})" for condition in _TALLIED.values()]
    for condition in (f"{_SLA}", f"{_IN_PERIOD} AND sla_status IS NULL"):
        measures.append(
            f"array_agg(ttft_s ORDER BY ttft_s) FILTER (WHERE {condition} AND ttft_s IS NOT NULL)"
            if query.ttfts
            else "NULL"
        )
    for i, start in enumerate(query.starts):
        params[f"start{i}"] = time_key(start)
        measures.append(
            f"count(*) FILTER (WHERE decided_at <= %(now)s AND decided_at >= %(start{i})s)"
        )
    measures += [f"count(*) FILTER (WHERE {_FAILED})", f"min(decided_at) FILTER (WHERE {_FAILED})"]
    sql = (
        f"SELECT rep, rule, source, {', '.join(measures)} FROM ("
        "SELECT *, CASE WHEN outcome = 'assigned' THEN new_owner END AS rep "
        "FROM assignment_log WHERE decided_at >= %(earliest)s) AS decided "
        "GROUP BY rep, rule, source"
    )
    return sql, params


def tallies_of(rows: list[tuple[Any, ...]], starts: int) -> list[FactTally]:
    """``tallies_select``'s rows as ``FactTally``s, ordered by their key, each with the
    lowest id its rep was assigned in the period."""
    tallies = []
    for rep, rule, source, first_id, *values in rows:
        counts = dict(zip(_TALLIED, values, strict=False))
        ttfts_sla, ttfts_other = values[len(_TALLIED) : len(_TALLIED) + 2]
        since_starts = values[len(_TALLIED) + 2 : len(_TALLIED) + 2 + starts]
        failed, oldest = values[-2:]
        tally = FactTally(
            rep, rule, source, since_starts=[0] * starts, failed_writebacks=failed,
            oldest_failed=from_time_key(oldest),
        )  # fmt: skip
        if rep is not None:
            tally = FactTally(
                rep, rule, source, first_id=first_id, since_starts=list(since_starts),
                ttfts_sla=list(ttfts_sla or []), ttfts_other=list(ttfts_other or []),
                failed_writebacks=failed, oldest_failed=from_time_key(oldest), **counts,
            )  # fmt: skip
        tallies.append(tally)
    firsts: dict[str, int] = {}
    for tally in tallies:
        if tally.rep is not None and tally.first_id is not None:
            firsts[tally.rep] = min(firsts.get(tally.rep, tally.first_id), tally.first_id)
    for tally in tallies:
        tally.first_id = None if tally.rep is None else firsts.get(tally.rep)
    return sorted(tallies, key=lambda t: t.key)
