"""The console's queries on the embedded store's ``assignments`` table, fast at millions of rows.

A page is newest first below a cursor id (``facts``: oldest first above one). Every filter is
an equality or a time range on a column with an index ending in id, so a page is read from one
index range, already in id order, stopping at the page's end. Two filters need more than one
equality and are split into branches, each a plain conjunction:

- ``rep`` (new OR previous owner) is one branch per column;
- ``rule`` (the rule, or any rule under it) is one branch per rule path that exists under the
  prefix, found by a skip scan of the rule index (a seek per distinct path).

Each branch reads at most a page and the page keeps the best of them; once it is full, the
next branch reads only ids that would still make it.

Which index a branch reads is chosen here, not by SQLite's planner: its statistics are those
of whenever ANALYZE last ran, and without them it picked a common value's index for a
combination and sorted every match. Here each candidate index is probed with a capped count
(how many rows it would hand over, up to ``_PROBE``) and the one with the fewest is read
(``INDEXED BY``); a time range counts too, but read from its index the rows need a sort, so it
wins only when it holds fewer than ``_PROBE``. A wider range with an end in the past starts
reading below the newest id inside it, not from the top of the log.
"""

from __future__ import annotations

import collections
import itertools
import sqlite3
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from workflows.ledger import text
from workflows.log_projection import COLUMNS, from_time_key, time_key
from workflows.sqlite_projection import PROJECTION, index_name
from workflows.store import AssignmentQuery, FactTally, TallyQuery

_PROBE = 20_000  # rows counted at most per candidate index
_MAX_RULES = 64  # past this many rule paths under a prefix: one range branch instead
_MAX_ID = 2**63 - 1


@dataclass
class Branch:
    """One conjunction: equalities, a time range, an optional rule-prefix range."""

    equal: dict[str, Any] = field(default_factory=dict)
    since: str | None = None
    until: str | None = None
    rule_prefix: str | None = None

    def where(self) -> tuple[list[str], list[Any]]:
        clauses = [f"{column} = ?" for column in self.equal]
        params = list(self.equal.values())
        if self.since is not None:
            clauses.append("decided_at >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("decided_at < ?")
            params.append(self.until)
        if self.rule_prefix is not None:
            clauses.append("(rule = ? OR (rule >= ? AND rule < ?))")
            params += [self.rule_prefix, f"{self.rule_prefix}/", f"{self.rule_prefix}0"]
        return clauses, params


def page_ids(
    conn: sqlite3.Connection, query: AssignmentQuery, before: int | None, limit: int
) -> list[int]:
    """Up to ``limit`` ids matching ``query`` below ``before``, newest first."""
    return _ids(conn, query, before, limit, newest_first=True)


Edges = dict[tuple[str | None, str | None], int | None]


def facts_page(
    conn: sqlite3.Connection, query: AssignmentQuery, after: int, limit: int, edges: Edges
) -> list[tuple[Any, ...]]:
    """Up to ``limit`` projection rows (values in ``COLUMNS`` order) matching ``query`` above
    ``after``, oldest first.

    ``edges`` keeps the lowest id inside each time range from page to page (a stream's
    pages share it: a record appended later has a higher id, so it never moves)."""
    ids = _ids(conn, query, after, limit, newest_first=False, edges=edges)
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    sql = f"SELECT {','.join(COLUMNS)} FROM {PROJECTION} WHERE id IN ({marks}) ORDER BY id"
    return conn.execute(sql, ids).fetchall()


def _ids(
    conn: sqlite3.Connection,
    query: AssignmentQuery,
    cursor: int | None,
    limit: int,
    *,
    newest_first: bool,
    edges: Edges | None = None,
) -> list[int]:
    """The page, branch by branch: once a page is full, the next branch reads only ids that
    would still make it (above the page's last id, newest first), so a branch with few
    matches does not read back through the whole log for them."""
    if limit <= 0:
        return []
    page: list[int] = []
    for branch in _branches(conn, query):
        bound = page[-1] if len(page) == limit else None
        sql, params = _branch_select(conn, branch, cursor, bound, limit, newest_first, edges)
        if sql is None:
            continue
        found = {log_id for (log_id,) in conn.execute(sql, params)}
        page = sorted(found.union(page), reverse=newest_first)[:limit]
    return page


def _branch_select(
    conn: sqlite3.Connection,
    branch: Branch,
    cursor: int | None,
    bound: int | None,
    limit: int,
    newest_first: bool,
    edges: Edges | None,
) -> tuple[str | None, list[Any]]:
    """The SELECT of one branch's page, between ``cursor`` and ``bound`` (exclusive), on the
    index it reads best; None: nothing can match."""
    clauses, params = branch.where()
    past: list[str] = []
    past_params: list[Any] = []
    if cursor is not None:
        past.append("id < ?" if newest_first else "id > ?")
        past_params.append(cursor)
    if bound is not None:
        past.append("id > ?" if newest_first else "id < ?")
        past_params.append(bound)
    index = _best_index(conn, branch, past, past_params)
    if index is None:
        return None, []
    if index != "decided_at":
        # A range that ends before the cursor's side of the log: start at its edge instead of
        # reading through every newer (older, for facts) record first.
        edge = branch.until if newest_first else branch.since
        if edge is not None:
            span = (branch.since, branch.until)
            if edges is not None and span in edges:
                inside = edges[span]
            else:
                inside = _edge_of_range(conn, branch, newest_first)
                if edges is not None:
                    edges[span] = inside
            if inside is None:
                return None, []
            past.append("id <= ?" if newest_first else "id >= ?")
            past_params.append(inside)
    order = "DESC" if newest_first else "ASC"
    using = "NOT INDEXED" if index == "id" else f"INDEXED BY {index_name(index)}"
    where = " AND ".join(clauses + past) or "1"
    sql = f"SELECT id FROM {PROJECTION} {using} WHERE {where} ORDER BY id {order} LIMIT ?"
    return sql, params + past_params + [limit]


# Likely the most selective first: each probe's cap is the fewest rows found so far.
_PROBE_ORDER = ("new_owner", "previous_owner", "rule", "source", "outcome", "object_type", "crm")


def _best_index(
    conn: sqlite3.Connection, branch: Branch, past: list[str], past_params: list[Any]
) -> str | None:
    """The column whose index hands over the fewest rows past the cursor ("id": the table
    itself, in id order); None when an index shows that nothing can match."""
    best, fewest = "id", _PROBE
    for column in sorted(branch.equal, key=_PROBE_ORDER.index):
        count = _probe(conn, column, [f"{column} = ?", *past],
                       [branch.equal[column], *past_params], fewest)  # fmt: skip
        if count == 0:
            return None
        if count < fewest or best == "id":
            best, fewest = column, count
    if branch.since is not None or branch.until is not None:
        clauses, params = Branch(since=branch.since, until=branch.until).where()
        in_range = _probe(conn, "decided_at", clauses + past, params + past_params, fewest)
        if in_range == 0:
            return None
        if in_range < fewest:
            return "decided_at"  # fewer rows in the range than behind any equality: sort them
    return best


def _probe(
    conn: sqlite3.Connection, column: str, clauses: list[str], params: list[Any], cap: int
) -> int:
    """How many rows the index on ``column`` hands over for ``clauses``, up to ``cap``."""
    sql = (
        f"SELECT count(*) FROM (SELECT 1 FROM {PROJECTION} INDEXED BY {index_name(column)} "
        f"WHERE {' AND '.join(clauses)} LIMIT ?)"
    )
    return int(conn.execute(sql, [*params, cap]).fetchone()[0])


def _edge_of_range(conn: sqlite3.Connection, branch: Branch, newest_first: bool) -> int | None:
    """The highest (``newest_first``) or lowest id decided inside the branch's time range,
    from a covering scan of its index; None when the range holds nothing."""
    if newest_first:
        latest = conn.execute(f"SELECT max(decided_at) FROM {PROJECTION}").fetchone()[0]
        if latest is not None and branch.until is not None and latest < branch.until:
            return _MAX_ID  # the range reaches past the newest record: no edge to find
    clauses, params = Branch(since=branch.since, until=branch.until).where()
    edge = "max" if newest_first else "min"
    sql = (
        f"SELECT {edge}(id) FROM {PROJECTION} INDEXED BY {index_name('decided_at')} "
        f"WHERE {' AND '.join(clauses)}"
    )
    found = conn.execute(sql, params).fetchone()[0]
    return None if found is None else int(found)


def _branches(conn: sqlite3.Connection, query: AssignmentQuery) -> list[Branch]:
    """The conjunctions whose union is ``query``; none when nothing can match. Values are
    compared as the projection keeps them (``ledger.text``), never as patterns."""
    common: dict[str, Any] = {
        column: text(wanted)
        for column, wanted in (
            ("outcome", query.outcome),
            ("source", query.source),
            ("crm", query.crm),
            ("object_type", query.object_type),
        )
        if wanted is not None
    }
    choices: list[list[dict[str, Any]]] = []
    prefix = None
    if query.rep is not None:
        rep = text(query.rep)
        choices.append([{"new_owner": rep}, {"previous_owner": rep}])
    if query.rule is not None:
        rules = _rules_under(conn, text(query.rule))
        if rules is None:
            prefix = text(query.rule)
        elif not rules:
            return []
        else:
            choices.append([{"rule": rule} for rule in rules])
    since = None if query.since is None else time_key(query.since)
    until = None if query.until is None else time_key(query.until)
    if since is not None and until is not None and since >= until:
        return []
    return [
        Branch(
            {**common, **{k: v for part in picked for k, v in part.items()}}, since, until, prefix
        )  # fmt: skip
        for picked in itertools.product(*choices)
    ]


def _rules_under(conn: sqlite3.Connection, rule: str) -> list[str] | None:
    """Every rule path that is ``rule`` or under it (``rule/...``), by a skip scan of the rule
    index; None when there are more than _MAX_RULES."""
    exact = f"SELECT 1 FROM {PROJECTION} WHERE rule = ? LIMIT 1"
    found = [rule] if conn.execute(exact, (rule,)).fetchone() else []
    low, high = f"{rule}/", f"{rule}0"  # "0" sorts right after "/"
    sql = f"SELECT rule FROM {PROJECTION} WHERE rule >= ? AND rule < ? ORDER BY rule LIMIT 1"
    while len(found) <= _MAX_RULES:
        row = conn.execute(sql, (low, high)).fetchone()
        if row is None:
            return found
        found.append(row[0])
        low = row[0] + "\x00"  # the next distinct path: just above this one
    return None


# --- the statistics, counted in the table ----------------------------------------------------
#
# One scan of the decisions since the earliest time asked for: SQLite reduces each row to a
# short key of what the counts depend on (its group, and one integer of bits: which periods it
# falls in, its SLA status, its flags), and a C-coded ``collections.Counter`` counts equal keys;
# Python then rolls ~40,000 distinct keys up into the groups. Measured at a million rows, this
# is two to three times faster than the same counts as SQL aggregates (a GROUP BY sorts every
# row, and each conditional sum evaluates its condition again for every row), and every column
# a row hands to Python costs about as much as the scan itself: hence one integer of bits.

_TALLY_PROBE = 100_000  # fewer rows than this in the range: read them through its index


def _micros(column: str) -> str:
    """A time-key column as exact integer microseconds (julianday's doubles are not exact)."""
    return (
        f"(CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) * 1000000"
        f" + CAST(substr({column}, 21, 6) AS INTEGER))"
    )


# The bits of a row's key: when it was decided, then what happened to it.
_IN_PERIOD, _NOT_MATURE, _AFTER_NOW, _CONTACTED, _CONVERTED, _LATE = 1, 2, 4, 8, 16, 32
_SLA_SHIFT, _SLA_OUTCOME_SHIFT, _STARTS_SHIFT = 6, 8, 10
_SLA_NONE, _SLA_OPEN, _SLA_ESCALATED = 0, 1, 2  # 3: any other status
_AWAY_NONE, _AWAY_ROTATED, _AWAY_ESCALATED = 0, 1, 2
_FLAGS = (
    "(decided_at >= :since) + 2 * (decided_at > :mature_before) + 4 * (decided_at > :now)"
    " + 8 * (contacted_at IS NOT NULL)"
    f" + 16 * (CASE WHEN converted_at IS NULL THEN 0 "
    f"ELSE {_micros('converted_at')} - {_micros('decided_at')} <= :window_us END)"
    " + 32 * coalesce(sla_deadline < :now, 0)"
    " + 64 * (CASE WHEN sla_status IS NULL THEN 0 WHEN sla_status = 'open' THEN 1"
    " WHEN sla_status = 'escalated' THEN 2 ELSE 3 END)"
    " + 256 * (CASE sla_outcome WHEN 'rotated' THEN 1 WHEN 'escalated' THEN 2 ELSE 0 END)"
    "{starts}"
)
_KEY = (
    "CASE WHEN outcome = 'assigned' THEN new_owner END",
    "rule",
    "source",
    _FLAGS,
    "CASE WHEN writeback_status = 'failed' THEN decided_at END",
)


def fact_tallies(conn: sqlite3.Connection, query: TallyQuery) -> list[FactTally]:
    """``Store.fact_tallies`` from the ``assignments`` table (see above)."""
    params: dict[str, Any] = {
        "earliest": time_key(query.earliest),
        "since": time_key(query.since),
        "now": time_key(query.now),
        "mature_before": time_key(query.now - query.window),
        "window_us": query.window // timedelta(microseconds=1),
    }
    starts = ""
    for i, start in enumerate(query.starts):
        params[f"start{i}"] = time_key(start)
        starts += f" + {1 << (_STARTS_SHIFT + i)} * (decided_at >= :start{i})"
    scan = _scan(conn, params)
    if scan is None:
        return []
    key = ", ".join(_KEY).replace("{starts}", starts)
    counted = collections.Counter(conn.execute(f"SELECT {key} FROM {scan}", params))
    tallies = _roll_up(counted, len(query.starts))
    firsts = _first_ids(conn, [t.rep for t in tallies.values() if t.leads], params)
    for tally in tallies.values():
        tally.first_id = firsts.get(tally.rep)
    if query.ttfts:
        _add_ttfts(conn, tallies, scan, params)
    return sorted(tallies.values(), key=lambda t: t.key)


def _scan(conn: sqlite3.Connection, params: dict[str, Any]) -> str | None:
    """The FROM and WHERE of the rows decided since ``earliest``: a short range through its
    index (a lookup per row), a long one straight from the table from the lowest id in it
    (every row below that id was decided before); None when there are none."""
    probe = (
        f"SELECT count(*) FROM (SELECT 1 FROM {PROJECTION} INDEXED BY "
        f"{index_name('decided_at')} WHERE decided_at >= ? LIMIT {_TALLY_PROBE})"
    )
    found = conn.execute(probe, (params["earliest"],)).fetchone()[0]
    if found == 0:
        return None
    if found < _TALLY_PROBE:
        return f"{PROJECTION} INDEXED BY {index_name('decided_at')} WHERE decided_at >= :earliest"
    params["low"] = _edge_of_range(conn, Branch(since=params["earliest"]), newest_first=False)
    return f"{PROJECTION} NOT INDEXED WHERE id >= :low AND decided_at >= :earliest"


def _add_ttfts(
    conn: sqlite3.Connection, tallies: dict[Any, FactTally], scan: str, params: dict[str, Any]
) -> None:
    """Each group's times to first touch in the period, sorted (as plain tuples: a median
    needs every value, no count will do)."""
    sql = (
        f"SELECT new_owner, rule, source, sla_status IS NULL, ttft_s FROM {scan} "
        "AND decided_at >= :since AND decided_at <= :now AND ttft_s IS NOT NULL "
        "AND outcome = 'assigned' AND new_owner IS NOT NULL"
    )
    lists: dict[tuple[str, str, str, int], list[float]] = collections.defaultdict(list)
    for rep, rule, source, no_sla, ttft in conn.execute(sql, params):
        lists[rep, rule, source, no_sla].append(ttft)
    for (rep, rule, source, no_sla), values in lists.items():
        values.sort()
        tally = tallies[rep, rule, source]
        if no_sla:
            tally.ttfts_other = values
        else:
            tally.ttfts_sla = values


def _roll_up(counted: collections.Counter[Any], starts: int) -> dict[Any, FactTally]:
    groups: dict[tuple[str | None, str, str], FactTally] = {}
    for (rep, rule, source, flags, failed), n in counted.items():
        tally = groups.get((rep, rule, source))
        if tally is None:
            tally = FactTally(rep, rule, source, since_starts=[0] * starts)
            groups[rep, rule, source] = tally
        if failed is not None and flags & _IN_PERIOD:
            tally.failed_writebacks += n
            oldest = from_time_key(failed)
            if tally.oldest_failed is None or (oldest and oldest < tally.oldest_failed):
                tally.oldest_failed = oldest
        if rep is None or flags & _AFTER_NOW:
            continue
        tally.up_to_now += n
        for i in range(starts):
            if flags >> (_STARTS_SHIFT + i) & 1:
                tally.since_starts[i] += n
        if not flags & _IN_PERIOD:
            continue
        tally.leads += n
        if flags & _CONTACTED:
            tally.contacted += n
        converted = n if flags & _CONVERTED else 0
        if flags & _NOT_MATURE:
            tally.converted_recently += converted
        else:
            tally.mature += n
            tally.converted += converted
        status = flags >> _SLA_SHIFT & 3
        if status == _SLA_NONE:
            continue
        tally.under_sla += n
        away = flags >> _SLA_OUTCOME_SHIFT & 3
        if away != _AWAY_NONE:
            tally.rotated_away += n
        if away == _AWAY_ESCALATED:
            tally.escalated_away += n
        if status == _SLA_ESCALATED:
            tally.escalations_received += n
        if status == _SLA_OPEN and flags & _LATE:
            tally.open_breaches += n
    return groups


def _first_ids(
    conn: sqlite3.Connection, reps: list[str | None], params: dict[str, Any]
) -> dict[str | None, int]:
    """The lowest id each rep was assigned in the period, read from the rep's index from the
    period's lowest id on (one short seek per rep)."""
    period = "decided_at >= :since AND decided_at <= :now"
    low = conn.execute(
        f"SELECT min(id) FROM {PROJECTION} INDEXED BY {index_name('decided_at')} WHERE {period}",
        params,
    ).fetchone()[0]
    firsts: dict[str | None, int] = {}
    sql = (
        f"SELECT id FROM {PROJECTION} INDEXED BY {index_name('new_owner')} "
        f"WHERE new_owner = :rep AND id >= :low AND outcome = 'assigned' AND {period} "
        "ORDER BY id LIMIT 1"
    )
    for rep in dict.fromkeys(reps):
        found = conn.execute(sql, {**params, "rep": rep, "low": low}).fetchone()
        if found is not None:
            firsts[rep] = found[0]
    return firsts
