"""What every instance on one database shares besides routing: small values (the HubSpot API
budget and its pause) in a row-locked table, and named locks (the sweep) held as session
advisory locks on a dedicated connection, so PostgreSQL frees them when their holder dies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from workflows.postgres_transaction import Connection, store_error
from workflows.sqlite_files import checked_name

_NAMED_LOCK = "hashtextextended(current_schema() || ':lock:' || %s, 0)"


class SharedRow:
    """One row of ``shared_values``, locked FOR UPDATE while its context is open."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.data = data
        self.written = False

    @property
    def where(self) -> str:
        return f"PostgreSQL table shared_values, row {self.name!r}"

    def read(self) -> bytes:
        return self.data

    def write(self, data: bytes) -> None:
        self.data = bytes(data)
        self.written = True


class PostgresSharedValues:
    """The shared values of one database, through a connection pool."""

    def __init__(self, pool: ConnectionPool[Connection], timeout: float, owns_pool: bool) -> None:
        self._pool = pool
        self._timeout = timeout
        self._owns_pool = owns_pool

    @contextmanager
    def _connection(self, action: str) -> Iterator[Connection]:
        try:
            with self._pool.connection(timeout=self._timeout) as conn:
                yield conn
        except PoolTimeout as exc:
            raise store_error(f"{action}: no database connection", exc) from exc
        except psycopg.Error as exc:
            raise store_error(action, exc) from exc

    @contextmanager
    def shared_value(self, name: str) -> Iterator[SharedRow]:
        """The row ``name``, locked against every other process until the context exits."""
        checked_name(name)
        action = f"could not use the shared value {name!r}"
        with self._connection(action) as conn, conn.transaction():
            # NULL data: a row only reserved to be locked, never written (not listed).
            with conn.pipeline():
                conn.execute(
                    "INSERT INTO shared_values (name, data) VALUES (%s, NULL) "
                    "ON CONFLICT (name) DO NOTHING",
                    (name,),
                )
                cursor = conn.execute(
                    "SELECT data FROM shared_values WHERE name = %s FOR UPDATE", (name,)
                )
            (data,) = cursor.fetchone() or (None,)
            row = SharedRow(name, bytes(data or b""))
            yield row
            if row.written:
                conn.execute("UPDATE shared_values SET data = %s WHERE name = %s", (row.data, name))

    def shared_names(self, prefix: str) -> list[str]:
        with self._connection("could not list the shared values") as conn:
            rows = conn.execute(
                "SELECT name FROM shared_values WHERE data IS NOT NULL AND starts_with(name, %s) "
                "ORDER BY name",
                (prefix,),
            ).fetchall()
        return [name for (name,) in rows]

    def close(self) -> None:
        if self._owns_pool:
            self._pool.close()


@contextmanager
def advisory_lock(conninfo: str, name: str) -> Iterator[bool]:
    """True while holding the session advisory lock ``name`` on a connection of its own
    (closed on exit, or by the server when this process dies); False at once if taken."""
    checked_name(name)
    try:
        conn = psycopg.connect(conninfo, autocommit=True)
    except psycopg.Error as exc:
        raise store_error(f"could not take the lock {name!r}", exc) from exc
    with conn:
        try:
            row = conn.execute(f"SELECT pg_try_advisory_lock({_NAMED_LOCK})", (name,)).fetchone()
        except psycopg.Error as exc:
            raise store_error(f"could not take the lock {name!r}", exc) from exc
        yield bool(row and row[0])
        # Closing the connection releases the lock: no unlock round trip needed.
