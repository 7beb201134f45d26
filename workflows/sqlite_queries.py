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

import itertools
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from workflows.ledger import text
from workflows.log_projection import COLUMNS, time_key
from workflows.sqlite_projection import PROJECTION, index_name
from workflows.store import AssignmentQuery

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
