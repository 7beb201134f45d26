"""The console's queries on the embedded store's ``assignments`` table, fast at millions of rows.

A page is newest first below a cursor id. Every filter is an equality or a range on a column
with an index ending in id, so SQLite reads one index backwards from the cursor and stops at
the page's end. Two filters are more than one equality, and are split into branches that each
read one index range in id order:

- ``rep`` (new OR previous owner) is one branch per column;
- ``rule`` (the rule, or any rule under it) is one branch per rule path that exists under the
  prefix, found by a skip scan of the rule index (a seek per distinct path).

Each branch takes at most a page (``LIMIT``) and the union keeps the newest page of them all,
so the cost stays a few pages of index reads however many records match.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Sequence
from typing import Any

from workflows.log_projection import COLUMNS, time_key
from workflows.sqlite_projection import PROJECTION
from workflows.store import AssignmentQuery

# Past this many branches, one branch with a range on the rule instead (it then sorts).
_MAX_BRANCHES = 64

Branch = tuple[str, list[Any]]  # a WHERE clause and its parameters


def page_ids(
    conn: sqlite3.Connection, query: AssignmentQuery, before: int | None, limit: int
) -> list[int]:
    """Up to ``limit`` ids matching ``query`` below ``before``, newest first."""
    branches = _branches(conn, query)
    if not branches or limit <= 0:
        return []
    cursor: list[Any] = [] if before is None else [before]
    below = "" if before is None else " AND id < ?"
    selects = [
        f"SELECT id FROM {PROJECTION} WHERE {where}{below} ORDER BY id DESC LIMIT ?"
        for where, _ in branches
    ]
    params = [p for (_, ps) in branches for p in (*ps, *cursor, limit)]
    if len(selects) == 1:
        sql = selects[0]
    else:
        union = " UNION ".join(f"SELECT id FROM ({select})" for select in selects)
        sql = f"{union} ORDER BY id DESC LIMIT ?"
        params.append(limit)
    return [log_id for (log_id,) in conn.execute(sql, params)]


def facts_page(
    conn: sqlite3.Connection, query: AssignmentQuery, after: int, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` projection rows matching ``query`` above ``after``, oldest first."""
    branches = _branches(conn, query)
    if not branches or limit <= 0:
        return []
    columns = ",".join(COLUMNS)
    selects = [
        f"SELECT {{}} FROM {PROJECTION} WHERE {where} AND id > ? ORDER BY id LIMIT ?"
        for where, _ in branches
    ]
    params = [p for (_, ps) in branches for p in (*ps, after, limit)]
    if len(selects) == 1:
        sql = selects[0].format(columns)
    else:
        union = " UNION ".join(f"SELECT id FROM ({select.format('id')})" for select in selects)
        sql = (
            f"SELECT {columns} FROM {PROJECTION} WHERE id IN "
            f"(SELECT id FROM ({union}) ORDER BY id LIMIT ?) ORDER BY id"
        )
        params.append(limit)
    return [dict(zip(COLUMNS, row, strict=True)) for row in conn.execute(sql, params)]


def _branches(conn: sqlite3.Connection, query: AssignmentQuery) -> list[Branch]:
    """The WHERE clauses whose union is ``query``; none when nothing can match."""
    common: list[Branch] = []
    if query.since is not None:
        common.append(("decided_at >= ?", [time_key(query.since)]))
    if query.until is not None:
        common.append(("decided_at < ?", [time_key(query.until)]))
    for column, wanted in (
        ("outcome", query.outcome),
        ("source", query.source),
        ("crm", query.crm),
        ("object_type", query.object_type),
    ):
        if wanted is not None:
            common.append((f"{column} = ?", [wanted]))
    choices: list[list[Branch]] = []
    if query.rep is not None:
        choices.append([("new_owner = ?", [query.rep]), ("previous_owner = ?", [query.rep])])
    if query.rule is not None:
        rules = _rules_under(conn, query.rule)
        if not rules:
            return []
        choices.append(rules)
    branches = []
    for picked in itertools.product(*choices):
        parts = [*common, *picked]
        where = " AND ".join(clause for clause, _ in parts) or "1"
        branches.append((where, [p for _, params in parts for p in params]))
    return branches


def _rules_under(conn: sqlite3.Connection, rule: str) -> list[Branch]:
    """One branch per rule path that is ``rule`` or under it (``rule/...``), or one range
    branch when there are too many; empty when none exists."""
    found = [rule] if _exists(conn, "rule = ?", [rule]) else []
    low, high = f"{rule}/", f"{rule}0"  # "0" sorts right after "/"
    sql = f"SELECT rule FROM {PROJECTION} WHERE rule >= ? AND rule < ? ORDER BY rule LIMIT 1"
    while len(found) <= _MAX_BRANCHES:
        row = conn.execute(sql, (low, high)).fetchone()
        if row is None:
            return [("rule = ?", [path]) for path in found]
        found.append(row[0])
        low = row[0] + "\x00"  # the next distinct path: just above this one
    return [("(rule = ? OR (rule >= ? AND rule < ?))", [rule, f"{rule}/", f"{rule}0"])]


def _exists(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> bool:
    sql = f"SELECT 1 FROM {PROJECTION} WHERE {where} LIMIT 1"
    return conn.execute(sql, params).fetchone() is not None
