"""``leadrelay db import-sqlite``: move an embedded store into an empty PostgreSQL store,
verifiably. Every ledger row is copied in one PostgreSQL transaction; before it commits, the
rows of each kind are counted and the log is checksummed on both sides, and any difference
rolls the whole import back."""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from workflows.errors import StoreError
from workflows.postgres_rows import LOG, STATE, TABLES, table_of, write_statements
from workflows.postgres_schema import schema_problem
from workflows.postgres_transaction import ROUTING_LOCK, Connection, store_error
from workflows.sqlite_values import TABLE, decode, encode

_PAGE = 2000


@dataclass(frozen=True)
class Side:
    """What one store holds: rows of each table, and the checksum of its log."""

    counts: dict[str, int]
    log_checksum: str


@dataclass(frozen=True)
class ImportReport:
    embedded: Side
    postgres: Side


class LogChecksum:
    """SHA-256 over the log's records in id order, each in one canonical JSON form (how a
    store spells its JSON text must not matter, only what it holds)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def add(self, record: Any) -> None:
        self._hash.update(encode(record).encode())
        self._hash.update(b"\n")

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _embedded_pages(path: Path) -> Iterator[list[tuple[str, Any]]]:
    if not path.is_file():
        raise StoreError(f"no embedded store at {path}")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from exc
    try:
        db.execute("BEGIN")  # one read transaction: a consistent copy even if it is in use
        last = ""
        sql = f'SELECT key, value FROM "{TABLE}" WHERE key > ? ORDER BY key LIMIT ?'
        while True:
            page = [(key, decode(value)) for key, value in db.execute(sql, (last, _PAGE))]
            if page:
                yield page
            if len(page) < _PAGE:
                return
            last = page[-1][0]
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the embedded store {path}: {exc}") from exc
    finally:
        db.close()


def _postgres_side(conn: Connection) -> Side:
    counts = {}
    for table in (*TABLES, STATE):
        row = conn.execute(f"SELECT count(*) FROM {table.name}").fetchone()
        counts[table.name] = int(row[0]) if row else 0
    checksum = LogChecksum()
    with conn.cursor(name="import_checksum") as cursor:
        cursor.itersize = _PAGE
        cursor.execute("SELECT record::text FROM assignment_log ORDER BY id")
        for (record,) in cursor:
            checksum.add(decode(record))
    return Side(counts, checksum.hexdigest())


def import_sqlite(path: Path, conn: Connection) -> ImportReport:
    """Copy the embedded store at ``path`` into the (empty, current) PostgreSQL store of
    ``conn``; StoreError, with nothing committed, when anything differs."""
    problem = schema_problem(conn)
    if problem:
        raise StoreError(problem)
    try:
        with conn.transaction():
            conn.execute(ROUTING_LOCK)  # no decision lands in the middle of the import
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM assignment_log) "
                "OR EXISTS (SELECT 1 FROM ledger_state)"
            ).fetchone()
            if row and row[0]:
                raise StoreError("the PostgreSQL store is not empty: import into a new database")
            counts: Counter[str] = Counter({table.name: 0 for table in (*TABLES, STATE)})
            checksum = LogChecksum()
            for page in _embedded_pages(path):
                for key, value in page:
                    counts[table_of(key).name] += 1
                    if table_of(key) is LOG:
                        checksum.add(value)
                for sql, params in write_statements(dict(page), ()):
                    conn.execute(sql, params)
            report = ImportReport(Side(dict(counts), checksum.hexdigest()), _postgres_side(conn))
            if report.embedded != report.postgres:
                raise StoreError(
                    f"the copy differs from {path} (nothing was imported): "
                    f"{report.embedded} != {report.postgres}"
                )
    except psycopg.Error as exc:
        raise store_error(f"could not import {path}", exc) from exc
    return report
