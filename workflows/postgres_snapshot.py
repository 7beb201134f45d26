"""Every ledger row of a PostgreSQL store, read consistently: for a dry run's scratch copy
(an embedded store in a private temporary directory) and for ``db import-sqlite``'s check."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from workflows.postgres_rows import STATE, TABLES
from workflows.postgres_transaction import Connection
from workflows.private_files import create_private
from workflows.sqlite_store import SqliteStore
from workflows.sqlite_values import TABLE

_BATCH = 2000


def ledger_rows(conn: Connection) -> Iterator[tuple[str, str]]:
    """(ledger key, JSON text) of every row, table by table, in key order. Call inside one
    REPEATABLE READ transaction for a consistent whole."""
    for table in (*TABLES, STATE):
        columns = f"{table.key}::text, {table.value}::text"
        sql = f"SELECT {columns} FROM {table.name} ORDER BY {table.key}"
        with conn.cursor(name=f"dump_{table.name}") as cursor:  # server-side: memory stays flat
            cursor.itersize = _BATCH
            cursor.execute(sql)
            for part, text in cursor:
                yield table.key_of(part), text


def _scratch() -> tuple[Path, Path]:
    directory = Path(tempfile.mkdtemp(prefix="leadrelay-snapshot-"))  # owner-only
    path = directory / "snapshot.sqlite"
    create_private(path)
    return directory, path


def empty_snapshot() -> SqliteStore:
    """An empty scratch store (the database holds no store yet)."""
    directory, path = _scratch()
    return SqliteStore(path, discard=directory)


def snapshot_of_database(conn: Connection) -> SqliteStore:
    """A scratch embedded store holding every ledger row of the database, as one
    REPEATABLE READ transaction saw them; closing it deletes it."""
    directory, path = _scratch()
    try:
        with sqlite3.connect(path) as scratch:
            # The table sqlitedict makes: the scratch store opens it as its own.
            scratch.execute(f'CREATE TABLE "{TABLE}" (key TEXT PRIMARY KEY, value BLOB)')
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                rows = ledger_rows(conn)
                scratch.executemany(f'INSERT INTO "{TABLE}" (key, value) VALUES (?, ?)', rows)
            finally:
                conn.execute("COMMIT")  # read only: nothing to keep (and no ROLLBACK:
                # psycopg drops its prepared statements after one)
        return SqliteStore(path, discard=directory)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
