"""The embedded store's ``assignments`` table: the log's projection, its indexes, its upkeep.

One row per log record (columns: ``workflows.log_projection``), written in the same SQLite
commit as the key-value rows it derives from, so a query never sees a record half-recorded.
A store file made before the table existed gets it built once, on open, from its rows.

A process of an older leadrelay may keep writing the same file after the table exists (a
rolling restart): it knows nothing of the projection. So triggers on the key-value table note
every projected key such a writer changes in ``assignments_stale``; a commit here raises a
flag (``assignments_writer``) for its own duration, which the triggers read to leave its rows
alone, and projects what is noted (what an older writer left) along with its own rows, in the
same transaction. Reads catch up first whenever something is noted (``stale``).
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from workflows.log_projection import COLUMNS, LATER_COLUMNS, LOG_COLUMNS, Projection, project
from workflows.sqlite_values import TABLE, decode

log = logging.getLogger("leadrelay.store")

PROJECTION = "assignments"
STALE = "assignments_stale"
WRITER = "assignments_writer"
_MAX_PARAMS = 30_000  # SQLite allows 32,766 parameters per statement
_BUILD_PAGE = 5_000

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {PROJECTION} (
    id INTEGER PRIMARY KEY,
    decided_at TEXT NOT NULL,
    crm TEXT NOT NULL,
    object_type TEXT NOT NULL,
    lead_id TEXT NOT NULL,
    source TEXT NOT NULL,
    rule TEXT NOT NULL,
    outcome TEXT NOT NULL,
    previous_owner TEXT,
    new_owner TEXT,
    sla_status TEXT,
    sla_outcome TEXT,
    sla_deadline TEXT,
    ttft_s REAL,
    rotations INTEGER,
    writeback_status TEXT,
    contacted_at TEXT,
    converted_at TEXT,
    disqualified_at TEXT
)
"""
# One index per filter, each ending in id: a filtered page is a range of one index, read
# backwards from the cursor, already in id order (no sort, however many records match).
FILTERED = (
    "new_owner",
    "previous_owner",
    "rule",
    "source",
    "decided_at",
    "crm",
    "object_type",
    "outcome",
)


def index_name(column: str) -> str:
    return f"{PROJECTION}_by_{column}"


_INDEXES = [
    f"CREATE INDEX IF NOT EXISTS {index_name(column)} ON {PROJECTION} ({column}, id)"
    for column in FILTERED
]


_KINDS = ("log:", "sla:", "wb:", "outcome:")  # the keys the projection follows
_PROJECTED = " OR ".join(f"{{row}}.key GLOB '{kind}*'" for kind in _KINDS)
_TRIGGERS = [
    (f"{STALE}_on_{event.lower()}", event, row)
    for event, row in (("INSERT", "new"), ("UPDATE", "new"), ("DELETE", "old"))
]
_TRACKING = [
    f"CREATE TABLE IF NOT EXISTS {STALE} (key TEXT PRIMARY KEY) WITHOUT ROWID",
    # 1 only inside a commit of this code, which projects its own rows: set at its start,
    # cleared before its end, so no other connection ever reads it as 1.
    f"CREATE TABLE IF NOT EXISTS {WRITER} (projecting INTEGER NOT NULL)",
    f"INSERT INTO {WRITER} (projecting) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM {WRITER})",
    *(f"DROP TRIGGER IF EXISTS {name}" for name, _, _ in _TRIGGERS),
    *(
        f'CREATE TRIGGER {name} AFTER {event} ON "{TABLE}" '
        f"WHEN ({_PROJECTED.format(row=row)}) AND NOT (SELECT projecting FROM {WRITER}) "
        # Not INSERT OR IGNORE: the writing statement's own conflict rule (an upsert's)
        # would override it, and a key noted twice would fail that writer's commit.
        f"BEGIN INSERT INTO {STALE} (key) SELECT {row}.key "
        f"WHERE NOT EXISTS (SELECT 1 FROM {STALE} WHERE key = {row}.key); END"
        for name, event, row in _TRIGGERS
    ),
]
START_PROJECTING = f"UPDATE {WRITER} SET projecting = 1"
_STOP_PROJECTING = f"UPDATE {WRITER} SET projecting = 0"


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return found is not None


def exists(conn: sqlite3.Connection) -> bool:
    """Whether the projection is there, with its tracking of other writers (the writer
    flag's table is made last, in the same transaction as the rest)."""
    return _has_table(conn, WRITER)


def stale(conn: sqlite3.Connection) -> bool:
    """Whether some writer changed projected rows without projecting them."""
    return conn.execute(f"SELECT 1 FROM {STALE} LIMIT 1").fetchone() is not None


def project_commit(
    conn: sqlite3.Connection, writes: Mapping[str, Any], deletes: Collection[str]
) -> None:
    """Inside the caller's transaction, which ran ``START_PROJECTING`` before it wrote
    ``writes`` and removed ``deletes``: project them, and whatever another writer left noted
    as stale, then clear the notes and the flag."""
    noted = [key for (key,) in conn.execute(f"SELECT key FROM {STALE}")]
    conn.execute(_STOP_PROJECTING)
    others = [key for key in noted if key not in writes and key not in deletes]
    found = values(conn, others)
    projection = project(
        {**found, **writes}, [*(key for key in others if key not in found), *deletes]
    )
    _warn_unreadable(projection.unreadable)
    apply_projection(conn, projection)
    if noted:
        conn.execute(f"DELETE FROM {STALE}")


def _warn_unreadable(keys: list[str]) -> None:
    if keys:
        shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
        log.warning("left out of the assignment index (not a record leadrelay wrote): %s", shown)


def values(conn: sqlite3.Connection, keys: list[str]) -> dict[str, Any]:
    """The decoded values of those ``keys`` that are in the store."""
    found: dict[str, Any] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        sql = f'SELECT key, value FROM "{TABLE}" WHERE key IN ({",".join("?" * len(chunk))})'
        found.update((key, decode(value)) for key, value in conn.execute(sql, chunk))
    return found


def ensure(conn: sqlite3.Connection) -> None:
    """Create the projection if the file has none, filled from its rows, in one transaction.

    The caller holds the store's flock, so no other process of this version commits
    meanwhile; BEGIN IMMEDIATE keeps out every other writer for the build.
    """
    if exists(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _has_table(conn, PROJECTION):  # checked again inside the write lock
            records = _count(conn, "log:")
            if records:
                log.info("building the assignment index: %d records", records)
            conn.execute(_SCHEMA)
            for kind in _KINDS:
                for page in _pages(conn, kind):
                    projection = project(page)
                    _warn_unreadable(projection.unreadable)
                    apply_projection(conn, projection)
            for statement in _INDEXES:
                conn.execute(statement)
        # Also for a table made before the writer flag: its triggers noted every writer's keys.
        for statement in _TRACKING:
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _count(conn: sqlite3.Connection, prefix: str) -> int:
    sql = f'SELECT count(*) FROM "{TABLE}" WHERE key > ? AND key < ?'
    return int(conn.execute(sql, (prefix, _after(prefix))).fetchone()[0])


def _after(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)  # "log:" -> "log;"


def _pages(conn: sqlite3.Connection, prefix: str) -> Iterator[dict[str, Any]]:
    sql = f'SELECT key, value FROM "{TABLE}" WHERE key > ? AND key < ? ORDER BY key LIMIT ?'
    last = prefix
    while True:
        page = conn.execute(sql, (last, _after(prefix), _BUILD_PAGE)).fetchall()
        if page:
            yield {key: decode(value) for key, value in page}
        if len(page) < _BUILD_PAGE:
            return
        last = page[-1][0]


def apply_projection(conn: sqlite3.Connection, projection: Projection) -> None:
    """Apply ``projection`` inside the caller's transaction."""
    if projection.removals:
        for chunk in _chunks(projection.removals, 1):
            marks = ",".join("?" * len(chunk))
            conn.execute(f"DELETE FROM {PROJECTION} WHERE id IN ({marks})", chunk)
    if projection.inserts:
        rows = list(projection.inserts.values())
        for chunk in _chunks(rows, len(COLUMNS)):
            conn.execute(_insert_sql(len(chunk)), [row[c] for row in chunk for c in COLUMNS])
    by_columns: dict[tuple[str, ...], list[list[Any]]] = {}
    for log_id, columns in projection.updates.items():
        names = tuple(columns)
        by_columns.setdefault(names, []).append([*columns.values(), log_id])
    for names, params in by_columns.items():
        assignments = ", ".join(f"{name} = ?" for name in names)
        conn.executemany(f"UPDATE {PROJECTION} SET {assignments} WHERE id = ?", params)


@functools.cache
def _insert_sql(count: int) -> str:
    row = f"({','.join('?' * len(COLUMNS))})"
    # A log row is written once; should it come again (a rebuild), its later columns are
    # kept unless this commit sets them too.
    keep = ", ".join(f"{c} = excluded.{c}" for c in LOG_COLUMNS[1:])
    later = ", ".join(f"{c} = coalesce(excluded.{c}, {c})" for c in LATER_COLUMNS)
    return (
        f"INSERT INTO {PROJECTION} ({','.join(COLUMNS)}) VALUES {','.join([row] * count)} "
        f"ON CONFLICT(id) DO UPDATE SET {keep}, {later}"
    )


def _chunks(rows: Sequence[Any], params_per_row: int) -> Iterator[Sequence[Any]]:
    size = max(1, _MAX_PARAMS // params_per_row)
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
