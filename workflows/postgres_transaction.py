"""One routing decision on PostgreSQL in two round trips: the lock and every read, then every
write and the commit.

The routing lock is a transaction-level advisory lock (``pg_advisory_xact_lock``): every
process and instance on the database takes the same one, and PostgreSQL releases it at COMMIT,
at ROLLBACK, and when a connection dies. The first read pipelines BEGIN, the lock and the
SELECT into one round trip; ``commit`` pipelines every write, COMMIT and the flush (see
``_FLUSH``: the lock is free before the disk is written, the answer waits for it) into one
more. When the last transaction had to wait for the lock (another process held it), the store
takes the lock first instead (``lock_now``, one round trip more), so that the requests its
threads queue while it waits join this transaction: measured 1.1x to 1.9x the throughput
under contention (bench/store_bench.py, 2 processes x 4 threads), and still ahead with the
flush out of the lock.

The reads and the decision's rows are the embedded store's (``SqliteTransaction``: it reads
what the ledger asks for); only the three methods that touch the database differ.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import psycopg

from workflows import ledger
from workflows.errors import StoreError
from workflows.postgres_rows import decoded, read_statement, stored_key, write_statement
from workflows.postgres_url import redact
from workflows.sqlite_transaction import _MISSING, SqliteTransaction

ROUTING_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':routing', 0))"
# The same lock, saying whether it had to wait for another holder (contention), and the
# routing transaction's two settings, riding in the same statement (each statement of a
# pipeline costs about 30 us of the client's CPU): its commit does not wait for the flush
# (see _FLUSH), and its statements run on generic plans. Planning the batched read (a UNION
# ALL over the key tables) and the writes cost the server more than running them, on every
# transaction, as PostgreSQL keeps choosing a custom plan for ``= ANY(array)`` parameters; the
# routing statements' text never changes (keys travel as arrays) and psycopg prepares them,
# so one generic plan per connection serves every call (measured: 0.1 to 0.15 ms less of the
# server's CPU per transaction). Both settings end with the transaction.
_ROUTING_KEY = "hashtextextended(current_schema() || ':routing', 0)"
_TAKE_ROUTING_LOCK = (
    "SELECT set_config('synchronous_commit', 'off', true), "
    "set_config('plan_cache_mode', 'force_generic_plan', true), "
    f"CASE WHEN pg_try_advisory_xact_lock({_ROUTING_KEY}) THEN false "
    f"ELSE (SELECT true FROM pg_advisory_xact_lock({_ROUTING_KEY})) END"
)

# PostgreSQL flushes a commit to disk before it releases the transaction's locks, so with the
# routing lock released at COMMIT every other decision would wait for this one's fsync (on a
# busy disk, most of the lock's time). So the decision commits without waiting for the flush
# (synchronous_commit off, set with the lock: visible at once, the lock free) and, in the same
# round trip, a one-statement transaction that takes a transaction id commits with the
# session's synchronous_commit: its flush covers the WAL up to its own commit record, the
# decision's included, before ``commit`` returns, so nothing is answered before it is durable.
# A decision that read this one's rows commits after it in the WAL and so cannot outlive it in
# a crash; a routing transaction that only read (a replay, the sweep) flushes too before its
# reader acts on what it read.
_FLUSH = "SELECT pg_current_xact_id()"

Connection = psycopg.Connection[tuple[Any, ...]]


def store_error(action: str, exc: BaseException) -> StoreError:
    """A StoreError for a failed database call, without the URL's password."""
    return StoreError(redact(f"{action}: PostgreSQL: {exc}".strip()))


class PostgresTransaction(SqliteTransaction):
    """Reads under the routing lock, and the buffered writes applied by ``commit``."""

    def __init__(self, conn: Connection) -> None:  # noqa: D107 (no super(): no sqlite3 here)
        self._pg = conn
        self._begun = False
        self._cache: dict[str, Any] = {}
        self._writes: dict[str, Any] = {}
        self._deletes: set[str] = set()
        self._pending: dict[str, None] = {}  # keys to read with the next read
        self._lock_answer: psycopg.Cursor[tuple[Any, ...]] | None = None
        self.waited: bool | None = None  # whether the lock was held by another, once known

    def _begin(self) -> None:
        # Queued inside the caller's pipeline: BEGIN and the lock ride with its statements.
        if not self._begun:
            self._pg.execute("BEGIN")
            self._lock_answer = self._pg.execute(_TAKE_ROUTING_LOCK)
            self._begun = True

    def _note_lock(self) -> None:
        """Once the pipeline that took the lock is back: did it wait for another holder?"""
        if self._lock_answer is not None:
            row = self._lock_answer.fetchone()
            self._lock_answer = None
            self.waited = bool(row and row[-1])

    def lock_now(self) -> None:
        """Take the routing lock before anything is read (one round trip more), so that
        every request that queues in this process meanwhile joins this transaction."""
        try:
            with self._pg.pipeline():
                self._begin()
            self._note_lock()
        except psycopg.Error as exc:
            raise store_error("could not take the routing lock", exc) from exc

    def _get_many(self, keys: Iterable[str]) -> None:
        # Queued, not read: the next ``get`` reads everything queued in one round trip, so a
        # batch of decisions (each prefetching its own keys) costs one read in all.
        self._pending.update(dict.fromkeys(k for k in keys if k not in self._cache))

    def get(self, key: str, default: Any = None) -> Any:
        """One value by key, as last committed (or as this transaction wrote it)."""
        if key not in self._cache:
            self._pending[key] = None
            self._read_pending()
        value = self._cache[key]
        return default if value is _MISSING else value

    def _read_pending(self) -> None:
        wanted = [k for k in self._pending if k not in self._cache]
        self._pending.clear()
        if not wanted:
            return
        sql, params = read_statement(wanted)
        try:
            with self._pg.pipeline():
                self._begin()
                cursor = self._pg.execute(sql, params)
            self._note_lock()
            rows = [decoded(*row) for row in cursor.fetchall()]
        except psycopg.Error as exc:
            raise store_error("could not read the routing state", exc) from exc
        # A key whose text PostgreSQL cannot hold as is reads back escaped: map it home.
        home = {stored_key(key): key for key in wanted if not key.isascii() or "\x00" in key}
        found = {home.get(key, key): value for key, value in rows}
        # With what rode along (a replay's decision); never over what this transaction wrote.
        for key, value in found.items():
            self._cache.setdefault(key, value)
        for key in wanted:
            self._cache.setdefault(key, _MISSING)

    def existing(self, keys: dict[str, int]) -> set[int]:
        """The ids whose log key (``keys``: key -> id) is in the log."""
        log_ids = list(keys.values())
        try:
            with self._pg.pipeline():
                self._begin()
                cursor = self._pg.execute(
                    "SELECT id FROM assignment_log WHERE id = ANY(%s)", (log_ids,)
                )
            self._note_lock()
            return {log_id for (log_id,) in cursor.fetchall()}
        except psycopg.Error as exc:
            raise store_error("could not read the log", exc) from exc

    def scan_keys(self, low: str, high: str, limit: int) -> list[str]:
        """Up to ``limit`` deadline-index (or outbox) keys strictly between ``low`` and
        ``high``."""
        if low.startswith(ledger.OUTBOX):
            return self._scan_outbox(low, limit)
        sql = (
            "SELECT due_key FROM sla_deadlines WHERE due_key > %s AND due_key < %s "
            "ORDER BY due_key LIMIT %s"
        )
        try:
            with self._pg.pipeline():
                self._begin()
                cursor = self._pg.execute(sql, (low, high, limit))
            self._note_lock()
            return [key for (key,) in cursor.fetchall()]
        except psycopg.Error as exc:
            raise store_error("could not read the deadline index", exc) from exc

    def _scan_outbox(self, low: str, limit: int) -> list[str]:
        """Up to ``limit`` outbox keys after ``low`` (an outbox key, or the bare prefix)."""
        after = ledger.outbox_id(low) if low != ledger.OUTBOX else 0
        sql = "SELECT log_id FROM outbox WHERE log_id > %s ORDER BY log_id LIMIT %s"
        try:
            with self._pg.pipeline():
                self._begin()
                cursor = self._pg.execute(sql, (after, limit))
            self._note_lock()
            return [ledger.outbox_key(log_id) for (log_id,) in cursor.fetchall()]
        except psycopg.Error as exc:
            raise store_error("could not read the outbox", exc) from exc

    def commit(self) -> int:
        """Apply the buffered writes and COMMIT, in one round trip; durable on return."""
        if not self._writes and not self._deletes:
            self.end()
            return 0
        statement = write_statement(self._writes, sorted(self._deletes))
        count = len(self._writes) + len(self._deletes)
        self._writes.clear()
        self._deletes.clear()
        try:
            with self._pg.pipeline():
                self._begin()
                self._pg.execute(*statement)
                self._pg.execute("COMMIT")
                self._pg.execute(_FLUSH)
            self._note_lock()
        except psycopg.Error as exc:
            self._cache.clear()  # it holds the writes that were just refused
            self.abort()
            raise store_error("could not record the assignment", exc) from exc
        finally:
            self._begun = False
        return count

    def end(self) -> None:
        """End a transaction that wrote nothing (releasing the lock)."""
        if self._begun:
            self._begun = False
            try:
                with self._pg.pipeline():
                    # COMMIT, not ROLLBACK: after a ROLLBACK psycopg drops every prepared
                    # statement. What was read may be another decision not yet flushed: it is
                    # made durable before anyone acts on it (a replay's answer, a sweep).
                    self._pg.execute("COMMIT")
                    self._pg.execute(_FLUSH)
            except psycopg.Error as exc:
                raise store_error("could not end a transaction", exc) from exc

    def abort(self) -> None:
        """Roll back after a failure; a dead connection is left for the pool to discard."""
        self._begun = False
        if not self._pg.closed and not self._pg.broken:
            # An unusable connection is left as it is: the pool replaces it.
            with contextlib.suppress(psycopg.Error):
                self._pg.execute("ROLLBACK")
