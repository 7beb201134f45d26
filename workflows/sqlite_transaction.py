"""One routing decision's reads (cached, batched) and its single atomic write, in SQLite.

Reads go through a plain sqlite3 connection, batched (``prefetch``); writes are buffered and
applied in one SQLite transaction when the decision ends. What to write is the ledger's call
(``workflows.ledger``): this class reads what the ledger asks for and applies its rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from workflows import ledger
from workflows.errors import StoreError
from workflows.model import AssignmentRecord, WritebackStatus
from workflows.sqlite_projection import START_PROJECTING, project_commit
from workflows.sqlite_values import TABLE, decode, encode
from workflows.store import LeadHistory, SlaState, SlaTerms, WriteBack

__all__ = ["TABLE", "SqliteTransaction", "decode", "encode"]

_MAX_ROWS_PER_STATEMENT = 400  # SQLite allows 32,766 parameters per statement
_MISSING = object()  # read, and absent from the store
_UNREAD = object()


class SqliteTransaction:
    """Reads under the routing lock, and the buffered writes applied by ``commit``."""

    def __init__(self, reader: sqlite3.Connection) -> None:
        self._conn = reader
        self._cache: dict[str, Any] = {}
        self._writes: dict[str, Any] = {}
        self._deletes: set[str] = set()

    def _get_many(self, keys: Iterable[str]) -> None:
        wanted = [k for k in dict.fromkeys(keys) if k not in self._cache]
        if not wanted:
            return
        marks = ",".join("?" * len(wanted))
        sql = f'SELECT key, value FROM "{TABLE}" WHERE key IN ({marks})'
        found = {key: decode(value) for key, value in self._conn.execute(sql, wanted)}
        # Only a read that succeeded may say a key is absent: a failed one leaves no trace.
        for key in wanted:
            self._cache[key] = found.get(key, _MISSING)

    def existing(self, keys: dict[str, int]) -> set[int]:
        """The ids whose key (``keys``: key -> id) is in the store, no value decoded."""
        found: set[int] = set()
        names = list(keys)
        for start in range(0, len(names), _MAX_ROWS_PER_STATEMENT):
            chunk = names[start : start + _MAX_ROWS_PER_STATEMENT]
            sql = f'SELECT key FROM "{TABLE}" WHERE key IN ({",".join("?" * len(chunk))})'
            found.update(keys[key] for (key,) in self._conn.execute(sql, chunk))
        return found

    def scan_keys(self, low: str, high: str, limit: int) -> list[str]:
        """Up to ``limit`` keys strictly between ``low`` and ``high``, in order."""
        sql = f'SELECT key FROM "{TABLE}" WHERE key > ? AND key < ? ORDER BY key LIMIT ?'
        return [key for (key,) in self._conn.execute(sql, (low, high, limit))]

    def prefetch_keys(self, keys: Iterable[str]) -> None:
        """Read these keys in one round trip."""
        self._get_many(keys)

    def get(self, key: str, default: Any = None) -> Any:
        """One value by key, as last committed (or as this transaction wrote it)."""
        value = self._cache.get(key, _UNREAD)
        if value is _UNREAD:  # not prefetched: one round trip for this key alone
            self._get_many([key])
            value = self._cache[key]
        return default if value is _MISSING else value

    def writeback(self, record_id: int) -> WriteBack | None:
        value = self.get(ledger.writeback_key(record_id))
        return cast(WriteBack, dict(value)) if value else None

    def sla(self, record_id: int) -> SlaState | None:
        value = self.get(ledger.sla_key(record_id))
        return cast(SlaState, dict(value)) if value else None

    def history(self, crm: str, lead_id: str, object_type: str = "") -> LeadHistory:
        key = ledger.lead_key(crm, lead_id, object_type)
        return cast(LeadHistory, self.get(key) or ledger.new_history())

    def claim_writeback(self, record_id: int, lease: timedelta, now: datetime) -> bool:
        claimed = ledger.claim(self.get(ledger.writeback_key(record_id)), lease, now)
        if claimed is None:
            return False
        self.put(ledger.writeback_key(record_id), claimed)
        return True

    def prefetch(
        self,
        *,
        pools: Iterable[str] = (),
        idempotency_key: str | None = None,
        email: str | None = None,
        domain: str | None = None,
        lead: tuple[str, str, str] | None = None,
        reps: Iterable[str] = (),
    ) -> None:
        keys = [ledger.SEQ, *map(ledger.pool_key, pools), *map(ledger.count_key, reps)]
        if idempotency_key:
            keys.append(ledger.idem_key(idempotency_key))
        if email:
            keys.append(ledger.email_key(email))
        if domain:
            keys.append(ledger.domain_key(domain))
        if lead:
            keys.append(ledger.lead_key(*lead))
        self._get_many(keys)

    def seen(self, idempotency_key: str) -> AssignmentRecord | None:
        log_id = self.get(ledger.idem_key(idempotency_key))
        if log_id is None:
            return None
        row = self.get(ledger.log_key(log_id))
        return AssignmentRecord.from_dict(row) if row else None

    def pool_state(self, pool: str) -> dict[str, Any]:
        # A deep copy: a dry run or a failed commit must leave the cached state untouched.
        return cast(dict[str, Any], decode(encode(self.get(ledger.pool_key(pool), {}))))

    def daily_count(self, rep: str) -> tuple[str, int]:
        day, count = self.get(ledger.count_key(rep), ("", 0))
        return str(day), int(count)

    def previous_owner(self, email: str | None, domain: str | None) -> str | None:
        if email:
            owner = self.get(ledger.email_key(email))
            if owner:
                return str(owner)
        if domain:
            owner = self.get(ledger.domain_key(domain))
            if owner:
                return str(owner)
        return None

    def lead_owners(self, crm: str, lead_id: str, object_type: str = "") -> list[str]:
        return list(self.history(crm, lead_id, object_type)["owners"])

    def record(
        self,
        record: AssignmentRecord,
        *,
        pool_states: dict[str, dict[str, Any]],
        daily_counts: dict[str, tuple[str, int]],
        now: datetime,
        writeback: WritebackStatus | None = None,
        sla: SlaTerms | None = None,
        aliases: Sequence[str] = (),
        outbox: dict[str, Any] | None = None,
    ) -> AssignmentRecord:
        record.id = int(self.get(ledger.SEQ, 0)) + 1  # the router's fresh record, in place
        history = self.history(record.crm, record.lead_id, record.object_type)
        previous = ledger.superseded_sla(record, history)
        rows = ledger.record_rows(
            record,
            history=history,
            previous_sla=self.sla(previous) if previous else None,
            pool_states=pool_states,
            daily_counts=daily_counts,
            writeback=writeback,
            terms=sla,
            aliases=aliases,
            now=now,
            outbox=outbox,
        )
        self.apply(rows)
        return record

    def apply(self, rows: ledger.Rows) -> None:
        """Buffer the ledger's rows: its deletes, then its writes."""
        for key in rows.deletes:
            self.delete(key)
        # put() for each row, in bulk: a decision writes about ten.
        self._writes.update(rows.writes)
        self._cache.update(rows.writes)
        if self._deletes:
            self._deletes.difference_update(rows.writes)

    def put(self, key: str, value: Any) -> None:
        """Buffer a write; the transaction applies all of them at once when it ends."""
        self._writes[key] = value
        self._cache[key] = value
        self._deletes.discard(key)

    def delete(self, key: str) -> None:
        """Buffer the removal of a key, applied with the writes."""
        self._writes.pop(key, None)
        self._cache[key] = _MISSING
        self._deletes.add(key)

    def commit(self) -> int:
        """Apply the buffered writes in one SQLite transaction; durable on return.

        Returns how many rows it wrote or deleted.
        """
        if not self._writes and not self._deletes:
            return 0
        # Applied on the plain connection, not through sqlitedict: its worker thread dies on a
        # failed COMMIT (sqlitedict 2.1.0) and every caller then waits on it forever, holding
        # the routing lock. Here a failure rolls back and raises, and the store stays usable.
        writes, gone = self._writes, sorted(self._deletes)
        items = list(writes.items())
        self._writes = {}
        self._deletes.clear()
        conn = self._conn
        try:
            statements = [
                (f'DELETE FROM "{TABLE}" WHERE key IN ({",".join("?" * len(chunk))})', chunk)
                for chunk in _chunks(gone)
            ] + [
                (
                    # An upsert updates a row in place; REPLACE deletes and re-inserts it,
                    # moving it in the key index too (about 15% more pages per commit).
                    f'INSERT INTO "{TABLE}" (key, value) VALUES {_pairs(len(chunk))} '
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [x for key, value in chunk for x in (key, encode(value))],
                )
                for chunk in _chunks(items)
            ]
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(START_PROJECTING)  # this commit projects its own rows
            for statement in statements:
                conn.execute(*statement)
            # The log's projection (the console's table) changes in this same commit.
            project_commit(conn, writes, set(gone))
            conn.execute("COMMIT")
        except BaseException as exc:
            self._cache.clear()  # it holds the writes that were just refused
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"could not record the assignment: {exc}") from exc
            raise
        return len(items) + len(gone)


def _pairs(count: int) -> str:
    return ",".join(["(?,?)"] * count)


def _chunks(rows: list[Any]) -> list[list[Any]]:
    return [
        rows[start : start + _MAX_ROWS_PER_STATEMENT]
        for start in range(0, len(rows), _MAX_ROWS_PER_STATEMENT)
    ]
