"""The embedded store: one sqlitedict table of JSON values, safe across threads and processes.

Keys (``workflows.ledger`` names them and decides their values) share one table so that a
transaction's writes land in a single SQLite commit. sqlitedict creates the table and serves
the log listing, and the file stays readable with ``SqliteDict(path, tablename="leadrelay",
decode=json.loads)``. A routing transaction reads and commits through one plain sqlite3
connection instead (``workflows.sqlite_transaction``): each call through sqlitedict's worker
thread costs two thread hand-offs (about 200 µs here), and a failed COMMIT kills that thread
and leaves its callers waiting.

Transactions are serialized by a thread lock plus an ``flock`` on a lock file beside the
database, so gunicorn workers sharing the file never hand out the same turn. Values are JSON,
never pickles: readable, and safe across refactors. The store's other files sit beside the
database too (``workflows.sqlite_files``): named locks, shared values, scratch snapshots.

Durability: WAL with ``synchronous=NORMAL`` by default, so a committed decision survives a crash
of the process (it is in the WAL file when the transaction ends); ``synchronous=FULL``
(``sqlite:///path?synchronous=full``) also survives power loss, at an fsync per commit.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, cast

from sqlitedict import SqliteDict

from workflows import ledger, log_projection, sqlite_projection, sqlite_queries
from workflows.errors import ConfigError, StoreError
from workflows.ledger_store import LedgerStore
from workflows.model import AssignmentRecord
from workflows.private_files import create_private, make_private_dirs, open_private
from workflows.sqlite_checkpoint import SAFETY_PAGES, WalCheckpointer
from workflows.sqlite_files import (
    SharedFile,
    SharedFiles,
    checked_name,
    held_lock,
    unusable,
)
from workflows.sqlite_transaction import TABLE, SqliteTransaction, decode, encode
from workflows.store import (
    ALL,
    AssignmentFacts,
    AssignmentQuery,
    FactTally,
    LogQuery,
    OutcomeTimes,
    TallyQuery,
)

log = logging.getLogger("leadrelay.store")
_PAGE = 500
_FACTS_PAGE = 5000


def sqlite_path(url: str) -> Path:
    """The database file of a ``sqlite:///path?options`` store URL."""
    return Path(url.removeprefix("sqlite:///").partition("?")[0])


class SqliteStore(LedgerStore):
    """The default store: a SQLite file through sqlitedict, WAL-journaled."""

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        """``sqlite:///relative/path``, ``sqlite:////absolute/path``, ``?synchronous=full``."""
        if not url.startswith("sqlite:///"):
            raise ConfigError("store", f"expected sqlite:///path, got {url!r}")
        query = url.partition("?")[2]
        options = dict(part.partition("=")[::2] for part in query.split("&") if part)
        return cls(sqlite_path(url), synchronous=options.get("synchronous", "normal"))

    @classmethod
    def shared_values_of(cls, url: str) -> SharedFiles:
        """The shared values of the store at ``url``, without opening or creating it."""
        return SharedFiles(sqlite_path(url))

    @classmethod
    def snapshot_of(cls, url: str) -> SqliteStore:
        """A scratch copy of the store at ``url``; an empty one when its file does not exist
        yet (the live store is not created)."""
        if not sqlite_path(url).exists():
            return cls._scratch()
        live = cls.from_url(url)
        try:
            return live.snapshot()
        finally:
            live.close()

    @classmethod
    def _scratch(cls, fill: Any = None) -> SqliteStore:
        directory = Path(tempfile.mkdtemp(prefix="leadrelay-snapshot-"))  # owner-only
        path = directory / "snapshot.sqlite"
        try:
            if fill is not None:
                create_private(path)  # VACUUM INTO fills an empty file, keeping its mode
                fill(path)
            return cls(path, discard=directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def __init__(
        self, path: Path, synchronous: str = "normal", *, discard: Path | None = None
    ) -> None:
        if synchronous.lower() not in ("normal", "full"):
            raise StoreError(f"synchronous must be normal or full, not {synchronous!r}")
        self.path = Path(path)
        problem = unusable(self.path)
        if problem:
            raise StoreError(f"cannot use {self.path}: {problem}")
        try:
            make_private_dirs(self.path.parent)
            self._lock_file = open_private(f"{self.path}.lock")  # held open
            create_private(self.path)  # before SQLite creates it 0644 (and its -wal, -shm)
            # gunicorn boots its workers together: switching a new file to WAL while another
            # process opens it fails at once with "database is locked", whatever the timeout.
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                self._open(synchronous)
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        except (OSError, sqlite3.Error) as exc:
            if hasattr(self, "_lock_file"):
                self._lock_file.close()
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        self._thread_lock = threading.Lock()
        self._pid = os.getpid()
        self._discard = discard  # a snapshot's directory, removed on close
        self._shared = SharedFiles(self.path)

    def _open(self, synchronous: str) -> None:
        self._db = SqliteDict(
            str(self.path),
            tablename=TABLE,
            journal_mode="WAL",
            autocommit=False,
            encode=encode,
            decode=decode,
            outer_stack=False,  # sqlitedict's default captures a stack trace per query
        )
        self._db.conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._db.commit(blocking=True)
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        # Checkpoints run on a background thread (sqlite_checkpoint.py), not inside a commit.
        self._conn.execute(f"PRAGMA wal_autocheckpoint={SAFETY_PAGES}")
        self._conn.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")
        self._checkpointer = WalCheckpointer(self.path, self._routing_lock)
        sqlite_projection.ensure(self._conn)  # under the flock: built once, by one process
        self._reader = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None
        )
        self._read_lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        """Hold the routing lock (all threads, all processes) for one decision."""
        if os.getpid() != self._pid:
            # sqlitedict's worker thread does not survive fork(): open the store after forking.
            raise StoreError("store opened in another process; open it again after fork")
        with self._routing_lock():
            tx = SqliteTransaction(self._conn)
            yield tx
            rows = tx.commit()
        if rows:
            try:
                self._checkpointer.committed(rows)
            except Exception:  # the decision is on disk: never report it as failed
                log.exception("could not schedule a WAL checkpoint")

    @contextmanager
    def _routing_lock(self) -> Iterator[None]:
        # The thread lock first: threads of one process queue here, not on the lock file.
        with self._thread_lock:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def log(self, query: LogQuery = ALL) -> Iterator[AssignmentRecord]:
        """Stream the log oldest first, a page at a time (memory stays flat on big logs)."""
        if query.lead:
            ids = self._lead_log_ids(query.lead, query.crm)
            rows: Iterable[Any] = (self._db.get(ledger.log_key(i)) for i in ids)
        else:
            rows = self._scan("log:", "log;")
        page: list[AssignmentRecord] = []
        for row in rows:
            if row is None:
                continue
            record = AssignmentRecord.from_dict(row)
            if not query.matches(record):
                continue
            page.append(record)
            if len(page) >= _PAGE:
                yield from self._with_sla(page)
                page = []
        yield from self._with_sla(page)

    def assignments(
        self, query: AssignmentQuery, *, before: int | None = None, limit: int = 50
    ) -> list[AssignmentRecord]:
        """A page of records matching ``query``, newest first below the cursor ``before``,
        from the projection's indexes (``workflows.sqlite_queries``)."""
        with self._reading() as conn:
            ids = sqlite_queries.page_ids(conn, query, before, limit)
            return self._records(conn, ids)

    def assignment(self, record_id: int) -> AssignmentRecord | None:
        """One record by its log id, with its SLA state in ``extra["sla"]``."""
        with self._reading() as conn:
            found = self._records(conn, [record_id])
        return found[0] if found else None

    def facts(self, query: AssignmentQuery) -> Iterator[AssignmentFacts]:
        """Stream the facts of matching records oldest first, a page per read: from the
        projection alone, no decision decoded."""
        after = 0
        edges: sqlite_queries.Edges = {}
        while True:
            with self._reading() as conn:
                page = sqlite_queries.facts_page(conn, query, after, _FACTS_PAGE, edges)
            for row in page:
                yield log_projection.facts_of(row)
            if len(page) < _FACTS_PAGE:
                return
            after = page[-1][0]  # its id

    def fact_tallies(self, query: TallyQuery) -> list[FactTally]:
        """The statistics counted by one GROUP BY on the projection (``sqlite_queries``)."""
        with self._reading() as conn:
            return sqlite_queries.fact_tallies(conn, query)

    def record_outcomes(self, updates: dict[int, OutcomeTimes]) -> None:
        """Merge outcome times into the records' ``outcome:`` rows, in one commit."""
        if not updates:
            return
        with self.transaction() as tx:
            known = tx.existing({ledger.log_key(i): i for i in updates})
            tx.prefetch_keys(map(ledger.outcome_key, known))
            previous = {i: tx.get(ledger.outcome_key(i)) for i in known}
            tx.apply(ledger.outcome_rows(updates, previous, known))

    def outcomes(self, record_id: int) -> OutcomeTimes | None:
        """What is known of a record's outcomes, if anything."""
        with self._reading() as conn:
            value = sqlite_projection.values(conn, [ledger.outcome_key(record_id)])
        found = value.get(ledger.outcome_key(record_id))
        return cast(OutcomeTimes, found) if found else None

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The reader connection in one read transaction (a consistent view), off the
        routing lock: a console query never holds up a decision."""
        if os.getpid() != self._pid:
            raise StoreError("store opened in another process; open it again after fork")
        with self._read_lock:
            if sqlite_projection.stale(self._reader):  # an older leadrelay wrote rows
                self._catch_up()
            self._reader.execute("BEGIN")
            try:
                yield self._reader
            finally:
                self._reader.execute("COMMIT")

    def _catch_up(self) -> None:
        """Project what writers that do not project left noted, under the routing lock."""
        with self._routing_lock():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                sqlite_projection.project_commit(self._conn, {}, ())
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    @staticmethod
    def _records(conn: sqlite3.Connection, ids: list[int]) -> list[AssignmentRecord]:
        keys = [ledger.log_key(i) for i in ids] + [ledger.sla_key(i) for i in ids]
        values = sqlite_projection.values(conn, keys)
        records = []
        for log_id in ids:
            row = values.get(ledger.log_key(log_id))
            if row is None:
                continue
            record = AssignmentRecord.from_dict(row)
            state = values.get(ledger.sla_key(log_id))
            if state is not None:
                record.extra["sla"] = state
            records.append(record)
        return records

    def _with_sla(self, records: list[AssignmentRecord]) -> list[AssignmentRecord]:
        # The SLA state lives beside the log row; a view of it rides along in ``extra``.
        if not records:
            return records
        with self.transaction() as tx:
            tx.prefetch_keys(ledger.sla_key(r.id) for r in records)
            for record in records:
                state = tx.get(ledger.sla_key(record.id))
                if state is not None:
                    record.extra["sla"] = state
        return records

    def _lead_log_ids(self, lead_id: str, crm: str | None) -> list[int]:
        ids: list[int] = []
        wanted = ledger.text(lead_id)
        for key, value in self._scan(*ledger.lead_range(crm), with_keys=True):
            if ledger.lead_id_of(key) == wanted:
                ids.extend(value["log_ids"])
        return sorted(ids)

    def _scan(self, low: str, high: str, with_keys: bool = False) -> Iterator[Any]:
        sql = f'SELECT key, value FROM "{TABLE}" WHERE key > ? AND key < ? ORDER BY key LIMIT ?'
        last = low
        while True:
            page = list(self._db.conn.select(sql, (last, high, _PAGE)))
            for key, value in page:
                decoded = decode(value)
                yield (key, decoded) if with_keys else decoded
            if len(page) < _PAGE:
                return
            last = page[-1][0]

    def outbox_size(self) -> int:
        """Counted on the reader connection: never under the routing lock."""
        low, high = ledger.outbox_range()
        with self._reading() as conn:
            sql = f'SELECT COUNT(*) FROM "{TABLE}" WHERE key > ? AND key < ?'
            return int(conn.execute(sql, (low, high)).fetchone()[0])

    def lock(self, name: str) -> AbstractContextManager[bool]:
        """``<db>.<name>.lock``, flocked without waiting."""
        return held_lock(Path(f"{self.path}.{checked_name(name)}.lock"))

    def snapshot(self) -> SqliteStore:
        """A consistent scratch copy in a private temporary directory, taken under the routing
        lock; closing it deletes it."""

        def fill(path: Path) -> None:
            with self.transaction():
                self._db.conn.select_one("VACUUM INTO ?", (str(path),))

        return self._scratch(fill)

    def shared_value(self, name: str) -> AbstractContextManager[SharedFile]:
        """``<db>.<name>``: a small owner-only file, read and written under its own flock."""
        return self._shared.shared_value(name)

    def shared_names(self, prefix: str) -> list[str]:
        return self._shared.shared_names(prefix)

    def close(self) -> None:
        """Flush and close; the store cannot be used afterwards (a snapshot is deleted)."""
        self._checkpointer.close()
        self._db.close()
        self._conn.close()
        self._reader.close()
        self._lock_file.close()
        self._shared.close()
        if self._discard is not None:
            shutil.rmtree(self._discard, ignore_errors=True)
