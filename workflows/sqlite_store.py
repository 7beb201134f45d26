"""The embedded store: one sqlitedict table of JSON values, safe across threads and processes.

Keys share one table so that a transaction's writes (log rows, rotation state, counts,
idempotency keys) land in a single SQLite commit. sqlitedict creates the table and serves the
log listing, and the file stays readable with ``SqliteDict(path, tablename="leadrelay",
decode=json.loads)``. A routing transaction reads and commits through one plain sqlite3
connection instead: each call through sqlitedict's worker thread costs two thread hand-offs
(about 200 µs here), and a failed COMMIT kills that thread and leaves its callers waiting.

Transactions are serialized by a thread lock plus an ``flock`` on a lock file beside the
database, so gunicorn workers sharing the file never hand out the same turn. Values are JSON,
never pickles: readable, and safe across refactors.

Durability: WAL with ``synchronous=NORMAL`` by default, so a committed decision survives a crash
of the process (it is in the WAL file when the transaction ends); ``synchronous=FULL``
(``sqlite:///path?synchronous=full``) also survives power loss, at an fsync per commit.

Key layout:
    meta:seq                  last log id
    log:<12-digit id>         an AssignmentRecord
    idem:<key>                log id of the first decision made under an idempotency key
    pool:<pool id>            a pool's rotation state
    count:<rep id>            [local day, leads assigned to the rep that day]
    owner:email:<email>       rep who last owned a lead with this email (sticky routing)
    owner:domain:<domain>     same, by company domain
    lead:<crm>:<lead id>      {"log_ids": [...], "owners": [...]} for one lead
    wb:<12-digit id>          write-back status of a log record
    sla:<12-digit id>         SLA state of a log record: deadline, terms, rotations, status,
                              and once settled its outcome and time to first touch
    due:<UTC time>:<12-digit id>  the deadline index: one key per open SLA, sorted by
                              deadline (fixed-width UTC text), so a sweep range-scans only
                              what is due
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlitedict import SqliteDict

from workflows.errors import ConfigError, StoreError
from workflows.model import AssignmentRecord
from workflows.private_files import create_private, make_private_dirs, open_private
from workflows.sla_clock import to_key
from workflows.sqlite_checkpoint import SAFETY_PAGES, WalCheckpointer
from workflows.store import ALL, DueAssignment, LogQuery, store_file

log = logging.getLogger("leadrelay.store")
TABLE = "leadrelay"
_PAGE = 500
_MAX_ROWS_PER_STATEMENT = 400  # SQLite allows 32,766 parameters per statement
_MISSING = object()  # read, and absent from the store
_UNREAD = object()


def _encode(value: Any) -> str:
    # orjson: a logged decision's JSON is most of its Python cost with the json module.
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        # What orjson refuses but JSON can carry: a lone surrogate a CRM let through (JSON's
        # "\ud800" escape), an integer beyond 64 bits. Stored, never lost to a 500.
        return json.dumps(value, separators=(",", ":"))


def _decode(value: str | bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)  # what _encode's fallback wrote (or NaN from older stores)


def _text(part: str) -> str:
    """A key part as valid UTF-8: a lone surrogate a CRM let through becomes ``\\ud800``
    (SQLite cannot store it, and the same input always maps to the same key)."""
    return part if part.isascii() else part.encode("utf-8", "backslashreplace").decode("utf-8")


def _idem_key(key: str) -> str:
    return f"idem:{_text(key)}"


def _lead_key(crm: str, lead_id: str) -> str:
    return f"lead:{crm}:{_text(lead_id)}"


def _email_key(email: str) -> str:
    return f"owner:email:{_text(email.casefold())}"


def _domain_key(domain: str) -> str:
    return f"owner:domain:{_text(domain.casefold())}"


def _writeback(status: str, detail: str, attempts: int) -> dict[str, Any]:
    return {
        "status": status,
        "detail": detail,
        "attempts": attempts,
        "at": datetime.now(UTC).isoformat(),
    }


class SqliteStore:
    """The default store: a SQLite file through sqlitedict, WAL-journaled."""

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        """``sqlite:///relative/path``, ``sqlite:////absolute/path``, ``?synchronous=full``."""
        if not url.startswith("sqlite:///"):
            raise ConfigError("store", f"expected sqlite:///path, got {url!r}")
        query = url.partition("?")[2]
        options = dict(part.partition("=")[::2] for part in query.split("&") if part)
        return cls(store_file(url), synchronous=options.get("synchronous", "normal"))

    def __init__(self, path: Path, synchronous: str = "normal") -> None:
        if synchronous.lower() not in ("normal", "full"):
            raise StoreError(f"synchronous must be normal or full, not {synchronous!r}")
        self.path = Path(path)
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

    def _open(self, synchronous: str) -> None:
        self._db = SqliteDict(
            str(self.path),
            tablename=TABLE,
            journal_mode="WAL",
            autocommit=False,
            encode=_encode,
            decode=_decode,
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

    @contextmanager
    def transaction(self) -> Iterator[_SqliteTransaction]:
        """Hold the routing lock (all threads, all processes) for one decision."""
        if os.getpid() != self._pid:
            # sqlitedict's worker thread does not survive fork(): open the store after forking.
            raise StoreError("store opened in another process; open it again after fork")
        with self._routing_lock():
            tx = _SqliteTransaction(self._db, self._conn)
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
            ids = self._lead_log_ids(query)
            rows: Iterable[Any] = (self._db.get(f"log:{i:012d}") for i in ids)
        else:
            rows = self._scan("log:", "log;")
        page: list[AssignmentRecord] = []
        for row in rows:
            if row is None:
                continue
            record = AssignmentRecord.from_dict(row)
            if query.since and record.decided_at < query.since:
                continue
            if query.rep and query.rep not in (record.new_owner, record.previous_owner):
                continue
            if query.crm and record.crm != query.crm:
                continue
            page.append(record)
            if len(page) >= _PAGE:
                yield from self._with_sla(page)
                page = []
        yield from self._with_sla(page)

    def _with_sla(self, records: list[AssignmentRecord]) -> list[AssignmentRecord]:
        # The SLA state lives beside the log row; a view of it rides along in ``extra``.
        if not records:
            return records
        with self.transaction() as tx:
            keys = [f"sla:{r.id:012d}" for r in records]
            tx.prefetch_keys(keys)
            for record, key in zip(records, keys, strict=True):
                state = tx.get(key)
                if state is not None:
                    record.extra["sla"] = state
        return records

    def _lead_log_ids(self, query: LogQuery) -> list[int]:
        ids: list[int] = []
        prefix = f"lead:{query.crm}:" if query.crm else "lead:"
        for key, value in self._scan(prefix, prefix + "\U0010ffff", with_keys=True):
            if key.rsplit(":", 1)[-1] == _text(query.lead):
                ids.extend(value["log_ids"])
        return sorted(ids)

    def _scan(self, low: str, high: str, with_keys: bool = False) -> Iterator[Any]:
        sql = f'SELECT key, value FROM "{TABLE}" WHERE key > ? AND key < ? ORDER BY key LIMIT ?'
        last = low
        while True:
            page = list(self._db.conn.select(sql, (last, high, _PAGE)))
            for key, value in page:
                decoded = _decode(value)
                yield (key, decoded) if with_keys else decoded
            if len(page) < _PAGE:
                return
            last = page[-1][0]

    def set_writebacks(
        self, updates: dict[int, tuple[str, str]], *, final: Collection[int] = ()
    ) -> None:
        """Record CRM write-back outcomes of log records, in one commit."""
        if not updates:
            return
        with self.transaction() as tx:
            keys = [f"wb:{record_id:012d}" for record_id in updates]
            tx.prefetch_keys(keys)
            for record_id, key in zip(updates, keys, strict=True):
                status, detail = updates[record_id]
                previous = tx.get(key) or {"attempts": 0}
                value = _writeback(status, detail, previous["attempts"] + 1)
                if record_id in final:
                    value["final"] = True
                tx.put(key, value)

    def writeback(self, record_id: int) -> dict[str, Any] | None:
        """The latest write-back status of a log record, if one was set."""
        with self.transaction() as tx:
            return tx.writeback(record_id)

    def due(self, now: datetime, limit: int, after: str = "") -> list[DueAssignment]:
        """Open assignments due at ``now``, earliest deadline first, read in one lock hold."""
        low = max(after, "due:")
        high = f"due:{to_key(now)}:\U0010ffff"
        with self.transaction() as tx:
            keys = tx.scan_keys(low, high, limit)
            ids = [int(key.rsplit(":", 1)[1]) for key in keys]
            kinds = ("log", "sla", "wb")
            tx.prefetch_keys([f"{kind}:{i:012d}" for i in ids for kind in kinds])
            rows = [(key, i, tx.get(f"log:{i:012d}"), tx.get(f"sla:{i:012d}")) for key, i in
                    zip(keys, ids, strict=True)]  # fmt: skip
            found = [(key, i, row, sla) for key, i, row, sla in rows if row and sla]
            tx.prefetch_keys(_lead_key(row["crm"], row["lead_id"]) for _, _, row, _ in found)
            return [
                DueAssignment(
                    AssignmentRecord.from_dict(row),
                    dict(sla),
                    tuple(tx.lead_owners(row["crm"], row["lead_id"])),
                    key,
                    tx.writeback(i),
                )
                for key, i, row, sla in found
            ]

    def settle(self, updates: dict[int, dict[str, Any]]) -> None:
        """Merge SLA updates (settled, rotated, rescheduled) in one commit."""
        if not updates:
            return
        with self.transaction() as tx:
            keys = {record_id: f"sla:{record_id:012d}" for record_id in updates}
            tx.prefetch_keys(keys.values())
            for record_id, update in updates.items():
                state = tx.get(keys[record_id])
                if state is None:
                    continue
                old_due = f"due:{state['due_key']}:{record_id:012d}"
                merged = {**state, **update}
                if state.get("status") == "open":
                    tx.delete(old_due)
                if merged.get("status") == "open":
                    tx.put(f"due:{merged['due_key']}:{record_id:012d}", record_id)
                tx.put(keys[record_id], merged)

    def sla(self, record_id: int) -> dict[str, Any] | None:
        """The SLA state of a log record, if an SLA applied to it."""
        with self.transaction() as tx:
            state = tx.get(f"sla:{record_id:012d}")
            return dict(state) if state else None

    def copy_to(self, path: Path) -> SqliteStore:
        """A consistent scratch copy, taken under the routing lock."""
        create_private(path)  # VACUUM INTO fills an empty file, keeping its mode
        with self.transaction():
            self._db.conn.select_one("VACUUM INTO ?", (str(path),))
        return SqliteStore(path)

    def close(self) -> None:
        """Flush and close; the store cannot be used afterwards."""
        self._checkpointer.close()
        self._db.close()
        self._conn.close()
        self._lock_file.close()


class _SqliteTransaction:
    """One decision's reads (cached, batched) and its single atomic write."""

    def __init__(self, db: SqliteDict, reader: sqlite3.Connection) -> None:
        self._db = db
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
        found = {key: _decode(value) for key, value in self._conn.execute(sql, wanted)}
        # Only a read that succeeded may say a key is absent: a failed one leaves no trace.
        for key in wanted:
            self._cache[key] = found.get(key, _MISSING)

    def scan_keys(self, low: str, high: str, limit: int) -> list[str]:
        """Up to ``limit`` keys strictly between ``low`` and ``high``, in order."""
        sql = f'SELECT key FROM "{TABLE}" WHERE key > ? AND key < ? ORDER BY key LIMIT ?'
        return [key for (key,) in self._conn.execute(sql, (low, high, limit))]

    def prefetch_keys(self, keys: Iterable[str]) -> None:
        """Read these keys in one round trip."""
        self._get_many(keys)

    def writeback(self, record_id: int) -> dict[str, Any] | None:
        value = self._get(f"wb:{record_id:012d}")
        return dict(value) if value else None

    def claim_writeback(self, record_id: int, lease: timedelta) -> bool:
        key = f"wb:{record_id:012d}"
        status = self._get(key)
        if not status or status["status"] not in ("pending", "failed"):
            return False
        now = datetime.now(UTC)
        if status.get("claimed_until", "") > now.isoformat():
            return False  # another delivery of the same lead is writing it right now
        self.put(key, {**status, "claimed_until": (now + lease).isoformat()})
        return True

    def get(self, key: str, default: Any = None) -> Any:
        """One value by key, as last committed (or as this transaction read it)."""
        return self._get(key, default)

    def _get(self, key: str, default: Any = None) -> Any:
        value = self._cache.get(key, _UNREAD)
        if value is _UNREAD:  # not prefetched: one round trip for this key alone
            self._get_many([key])
            value = self._cache[key]
        return default if value is _MISSING else value

    def prefetch(
        self,
        *,
        pools: Iterable[str] = (),
        idempotency_key: str | None = None,
        email: str | None = None,
        domain: str | None = None,
        lead: tuple[str, str] | None = None,
        reps: Iterable[str] = (),
    ) -> None:
        keys = ["meta:seq", *(f"pool:{p}" for p in pools), *(f"count:{r}" for r in reps)]
        if idempotency_key:
            keys.append(_idem_key(idempotency_key))
        if email:
            keys.append(_email_key(email))
        if domain:
            keys.append(_domain_key(domain))
        if lead:
            keys.append(_lead_key(*lead))
        self._get_many(keys)

    def seen(self, idempotency_key: str) -> AssignmentRecord | None:
        log_id = self._get(_idem_key(idempotency_key))
        if log_id is None:
            return None
        row = self._get(f"log:{log_id:012d}")
        return AssignmentRecord.from_dict(row) if row else None

    def pool_state(self, pool: str) -> dict[str, Any]:
        # A deep copy: a dry run or a failed commit must leave the cached state untouched.
        return _decode(_encode(self._get(f"pool:{pool}", {})))

    def daily_count(self, rep: str) -> tuple[str, int]:
        day, count = self._get(f"count:{rep}", ("", 0))
        return str(day), int(count)

    def previous_owner(self, email: str | None, domain: str | None) -> str | None:
        if email:
            owner = self._get(_email_key(email))
            if owner:
                return str(owner)
        if domain:
            owner = self._get(_domain_key(domain))
            if owner:
                return str(owner)
        return None

    def lead_owners(self, crm: str, lead_id: str) -> list[str]:
        return list(self._get(_lead_key(crm, lead_id), {}).get("owners", []))

    def record(
        self,
        record: AssignmentRecord,
        *,
        pool_states: dict[str, dict[str, Any]],
        daily_counts: dict[str, tuple[str, int]],
        writeback: str | None = None,
        sla: dict[str, Any] | None = None,
        aliases: Sequence[str] = (),
    ) -> AssignmentRecord:
        log_id = int(self._get("meta:seq", 0)) + 1
        record.id = log_id  # the router's fresh record: numbered in place, not copied
        lead_key = _lead_key(record.crm, record.lead_id)
        history = self._get(lead_key, {"log_ids": [], "owners": []})
        history["log_ids"].append(log_id)
        writes: dict[str, Any] = {
            "meta:seq": log_id,
            f"log:{log_id:012d}": record.to_dict(),
            lead_key: history,
        }
        for key in (record.idempotency_key, *aliases):
            if key:
                writes[_idem_key(key)] = log_id
        for pool, state in pool_states.items():
            writes[f"pool:{pool}"] = state
        for rep, day_count in daily_counts.items():
            writes[f"count:{rep}"] = day_count
        if writeback:
            writes[f"wb:{log_id:012d}"] = _writeback(writeback, "", 0)
        if record.decision.outcome == "assigned" and record.source != "sweep":
            # (The sweep settles the SLA it rotates away from itself, once the write is done.)
            self._supersede_sla(history, record, log_id, writes)
        if sla is not None:
            writes.update(_sla_writes(log_id, record, history, sla))
        if record.new_owner and record.decision.outcome == "assigned":
            history["owners"].append(record.new_owner)
            if record.lead_email:
                writes[_email_key(record.lead_email)] = record.new_owner
            if record.lead_domain:
                writes[_domain_key(record.lead_domain)] = record.new_owner
        for key, value in writes.items():
            self.put(key, value)
        return record

    def _supersede_sla(
        self, history: dict[str, Any], record: AssignmentRecord, log_id: int, writes: dict
    ) -> None:
        # A new owner ends the lead's open SLA: it was the previous owner's to meet.
        previous = history.pop("sla_open", None)
        state = self._get(f"sla:{previous:012d}") if previous else None
        if state is None or state.get("status") != "open":
            return
        self.delete(f"due:{state['due_key']}:{previous:012d}")
        writes[f"sla:{previous:012d}"] = {
            **state,
            "status": "superseded",
            "outcome": "superseded",
            "detail": f"reassigned by #{log_id} ({record.source})",
            "settled_at": record.decided_at.isoformat(),
            "next_record": log_id,
        }

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
        items = list(self._writes.items())
        gone = sorted(self._deletes)
        self._writes.clear()
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
                    [x for key, value in chunk for x in (key, _encode(value))],
                )
                for chunk in _chunks(items)
            ]
            if len(statements) == 1:
                # One statement outside BEGIN is its own atomic transaction: two fewer calls
                # into SQLite (each releases and retakes the GIL) on the common path.
                conn.execute(*statements[0])
            else:
                conn.execute("BEGIN IMMEDIATE")
                for statement in statements:
                    conn.execute(*statement)
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


def _sla_writes(
    log_id: int, record: AssignmentRecord, history: dict[str, Any], terms: dict[str, Any]
) -> dict[str, Any]:
    """The SLA state and deadline-index key of a new assignment.

    A sweep's rotation counts one more than the lead's last; any other assignment starts
    again at zero. Past ``max_reassignments`` the assignment is an escalation: never due.
    """
    rotations = history.get("sla_rotations", 0) + 1 if record.source == "sweep" else 0
    history["sla_rotations"] = rotations
    escalated = terms.get("escalation", False) or rotations > terms["max_reassignments"]
    state = {
        **terms,
        "rotations": rotations,
        "status": "escalated" if escalated else "open",
        "assigned_at": record.decided_at.isoformat(),
    }
    writes: dict[str, Any] = {f"sla:{log_id:012d}": state}
    if not escalated:
        writes[f"due:{terms['due_key']}:{log_id:012d}"] = log_id
        history["sla_open"] = log_id
    return writes
