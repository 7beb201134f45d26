"""The PostgreSQL store: several leadrelay instances on one database act as one router.

Selected by ``store: postgresql://user@host/db`` (any libpq URL; ``?pool_size=8`` and
``?pool_timeout=5`` are leadrelay's own). Each process keeps a psycopg connection pool; a
routing decision takes the database-wide routing lock (``workflows.postgres_transaction``),
so one rotation is shared by every process of every instance. Where each ledger row lives is
``workflows.postgres_rows``; the schema and its migrations are ``workflows.postgres_schema``.

Connection faults surface as StoreError (the app answers 503, a retryable answer); the pool
drops a dead connection when it is returned and opens new ones by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, cast

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from workflows import ledger
from workflows.errors import StoreError
from workflows.ledger_store import LedgerStore
from workflows.model import AssignmentRecord
from workflows.postgres_queries import (
    RECORD_SELECT,
    facts_page,
    facts_row,
    log_where,
    page_ids,
    record_of,
    tallies_of,
    tallies_select,
)
from workflows.postgres_schema import schema_problem
from workflows.postgres_shared import PostgresSharedValues, SharedRow, advisory_lock
from workflows.postgres_snapshot import empty_snapshot, snapshot_of_database
from workflows.postgres_transaction import Connection, PostgresTransaction, store_error
from workflows.postgres_url import PostgresUrl, parse_url
from workflows.sqlite_values import decode
from workflows.store import (
    ALL,
    AssignmentFacts,
    AssignmentQuery,
    FactTally,
    LogQuery,
    OutcomeTimes,
    Store,
    TallyQuery,
)

log = logging.getLogger("leadrelay.store")
_PAGE = 500
_FACTS_PAGE = 2000


def connect(url: PostgresUrl) -> Connection:
    """One connection outside any pool (schema checks, the CLI); StoreError when refused."""
    try:
        return psycopg.connect(url.conninfo, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise store_error(f"cannot connect to {url.shown}", exc) from exc


class PostgresStore(LedgerStore):
    """A store on a PostgreSQL database, shared by every process that opens the same URL."""

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """Open the store; StoreError when the server is unreachable or the schema is missing
        or older than this release's (naming the command that upgrades it)."""
        parsed = parse_url(url)
        with connect(parsed) as conn:
            try:
                problem = schema_problem(conn)
            except psycopg.Error as exc:
                raise store_error(f"cannot read the schema of {parsed.shown}", exc) from exc
        if problem:
            raise StoreError(f"cannot use {parsed.shown}: {problem}")
        return cls(parsed)

    @classmethod
    def shared_values_of(cls, url: str) -> PostgresSharedValues:
        """The shared values of the database at ``url``, on a small pool of their own."""
        parsed = parse_url(url)
        return PostgresSharedValues(_pool(parsed, size=1), parsed.pool_timeout, owns_pool=True)

    @classmethod
    def snapshot_of(cls, url: str) -> Store:
        """A scratch copy of the store at ``url`` (empty when it has no schema yet)."""
        parsed = parse_url(url)
        with connect(parsed) as conn:
            try:
                if schema_problem(conn) is None:
                    return snapshot_of_database(conn)
            except psycopg.Error as exc:
                raise store_error(f"cannot copy {parsed.shown}", exc) from exc
        return empty_snapshot()

    def __init__(self, url: PostgresUrl) -> None:
        self.url = url
        self._pool = _pool(url, size=url.pool_size)
        self._shared = PostgresSharedValues(self._pool, url.pool_timeout, owns_pool=False)
        # Whether the last routing transaction waited for the lock: then the next one takes
        # it first (3 round trips, but a bigger batch); alone, 2 round trips a decision.
        self._contended = False

    @contextmanager
    def _connection(self, action: str) -> Iterator[Connection]:
        try:
            with self._pool.connection(timeout=self.url.pool_timeout) as conn:
                yield conn
        except PoolTimeout as exc:
            raise store_error(f"{action}: no connection to {self.url.shown}", exc) from exc
        except psycopg.Error as exc:
            raise store_error(action, exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        """Hold the routing lock (every process on this database) for one decision."""
        with self._connection("could not route") as conn:
            tx = PostgresTransaction(conn)
            try:
                if self._contended:
                    # Another process held the lock last time: wait for it before the router
                    # takes its batch, so the requests queued meanwhile share this commit.
                    tx.lock_now()
                yield tx
            except BaseException:
                tx.abort()
                raise
            tx.commit()
            if tx.waited is not None:
                self._contended = tx.waited

    def _rows(self, sql: str, params: list[Any], action: str) -> list[tuple[Any, ...]]:
        with self._connection(action) as conn:
            return conn.execute(sql, params).fetchall()

    def log(self, query: LogQuery = ALL) -> Iterator[AssignmentRecord]:
        """Stream the log oldest first, a page at a time (memory stays flat on big logs)."""
        where, params = log_where(query)
        last = 0
        while True:
            sql = f"{RECORD_SELECT} WHERE {where} AND l.id > %s ORDER BY l.id LIMIT %s"
            page = self._rows(sql, [*params, last, _PAGE], "could not read the log")
            for _, record, sla in page:
                yield record_of(record, sla)
            if len(page) < _PAGE:
                return
            last = page[-1][0]

    def assignments(
        self, query: AssignmentQuery, *, before: int | None = None, limit: int = 50
    ) -> list[AssignmentRecord]:
        """A page of records matching ``query``, newest first below the cursor ``before``."""
        if limit <= 0:
            return []
        ids_sql, params = page_ids(query, before, limit)
        sql = f"{RECORD_SELECT} WHERE l.id IN ({ids_sql}) ORDER BY l.id DESC"
        rows = self._rows(sql, params, "could not read the assignments")
        return [record_of(record, sla) for _, record, sla in rows]

    def assignment(self, record_id: int) -> AssignmentRecord | None:
        sql = f"{RECORD_SELECT} WHERE l.id = %s"
        rows = self._rows(sql, [record_id], "could not read an assignment")
        return record_of(rows[0][1], rows[0][2]) if rows else None

    def facts(self, query: AssignmentQuery) -> Iterator[AssignmentFacts]:
        """The facts of matching records oldest first, from the projection columns alone."""
        after = 0
        while True:
            sql, params = facts_page(query, after, _FACTS_PAGE)
            page = self._rows(sql, params, "could not read the facts")
            for row in page:
                yield facts_row(row)
            if len(page) < _FACTS_PAGE:
                return
            after = page[-1][0]

    def fact_tallies(self, query: TallyQuery) -> list[FactTally]:
        """The statistics counted by one GROUP BY of the projection columns."""
        sql, params = tallies_select(query)
        with self._connection("could not count the statistics") as conn:
            rows = conn.execute(sql, params).fetchall()
        return tallies_of(rows, len(query.starts))

    def record_outcomes(self, updates: dict[int, OutcomeTimes]) -> None:
        """Merge outcome times into the records' ``outcome:`` rows (the ledger's rule), in
        one commit."""
        if not updates:
            return
        with self.transaction() as tx:
            known = tx.existing({ledger.log_key(i): i for i in updates})
            tx.prefetch_keys(map(ledger.outcome_key, known))
            previous = {i: tx.get(ledger.outcome_key(i)) for i in known}
            tx.apply(ledger.outcome_rows(updates, previous, known))

    def outcomes(self, record_id: int) -> OutcomeTimes | None:
        rows = self._rows(
            "SELECT times::text FROM outcomes WHERE log_id = %s",
            [record_id],
            "could not read outcomes",
        )
        return cast(OutcomeTimes, decode(rows[0][0])) if rows else None

    def outbox_size(self) -> int:
        rows = self._rows("SELECT count(*) FROM outbox", [], "could not count the outbox")
        return int(rows[0][0])

    def lock(self, name: str) -> AbstractContextManager[bool]:
        """A session advisory lock on a connection of its own, freed when its holder dies."""
        return advisory_lock(self.url.conninfo, name)

    def snapshot(self) -> Store:
        """A scratch embedded store filled from one consistent read of this database."""
        with self._connection("could not copy the store") as conn:
            return snapshot_of_database(conn)

    def shared_value(self, name: str) -> AbstractContextManager[SharedRow]:
        return self._shared.shared_value(name)

    def shared_names(self, prefix: str) -> list[str]:
        return self._shared.shared_names(prefix)

    def close(self) -> None:
        self._pool.close()


def _pool(url: PostgresUrl, size: int) -> ConnectionPool[Connection]:
    # min_size 1: a worker keeps one connection warm; the rest open on demand and close
    # after max_idle. A dead connection is discarded when it is returned to the pool.
    return ConnectionPool(
        url.conninfo,
        min_size=1,
        max_size=size,
        kwargs={"autocommit": True, "connect_timeout": 10},
        open=True,
        name="leadrelay",
    )
