"""Where each of the ledger's keys lives in PostgreSQL, both ways: the SQL that reads a set of
keys in one statement and the statements that apply a ``ledger.Rows``.

The ledger (``workflows.ledger``) names rows by key; here each key prefix maps to a table: the
log's records to ``assignment_log`` (with the columns its filters use), idempotency keys to a
table under a unique constraint, write-back and SLA states beside the log rows, the deadline
index to its own table, and the rest (sequence, rotation state, counts, sticky owners, lead
histories) to ``ledger_state``. Values travel as JSON text, encoded and decoded with the
embedded store's functions, so both stores hold byte-identical values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from workflows import ledger
from workflows.log_projection import (
    COLUMNS,
    OUTCOME_COLUMNS,
    SLA_COLUMNS,
    WRITEBACK_COLUMNS,
    project,
)
from workflows.sqlite_values import decode, encode

Statement = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True)
class Table:
    """One table that holds the ledger's keys of one prefix (``""``: every other key)."""

    prefix: str
    name: str
    key: str  # its key column
    numbered: bool  # keyed by a log id (the key's 12-digit suffix) rather than by text
    value: str  # its value column
    value_json: bool  # JSON text (else a log id)

    def key_of(self, part: str) -> str:
        """The ledger key of a row whose key column holds ``part``."""
        if self.numbered:
            return f"{self.prefix}{int(part):012d}"
        return part if self.prefix in ("", ledger.DUE) else self.prefix + part

    def part_of(self, key: str) -> Any:
        """What this table's key column holds for the ledger key ``key``."""
        if self.numbered:
            return int(key[len(self.prefix) :])
        return safe(key if self.prefix in ("", ledger.DUE) else key[len(self.prefix) :])


LOG = Table("log:", "assignment_log", "id", True, "record", True)
STATE = Table("", "ledger_state", "key", False, "value", True)
TABLES = (
    LOG,
    Table("idem:", "idempotency_keys", "key", False, "log_id", False),
    Table("wb:", "writebacks", "log_id", True, "state", True),
    Table("sla:", "sla_states", "log_id", True, "state", True),
    Table("outcome:", "outcomes", "log_id", True, "times", True),
    Table(ledger.DUE, "sla_deadlines", "due_key", False, "log_id", False),
    Table(ledger.OUTBOX, "outbox", "log_id", True, "item", True),
)
# The SQL type of each projection column (workflows/log_projection.COLUMNS).
_COLUMN_TYPES = {"id": "bigint", "ttft_s": "float8", "rotations": "integer"}
_LATER_GROUPS = (SLA_COLUMNS, WRITEBACK_COLUMNS, OUTCOME_COLUMNS)


def safe(text: str) -> str:
    """``text`` as PostgreSQL text can hold it: a lone surrogate becomes ``\\ud800`` (as in
    the ledger's keys) and a NUL ``\\u0000``; the same input always maps to the same text."""
    text = ledger.text(text)
    return text.replace("\x00", "\\u0000") if "\x00" in text else text


def stored_key(key: str) -> str:
    """The ledger key as it reads back from its table (``safe`` applied to its text part)."""
    table = table_of(key)
    return table.key_of(str(table.part_of(key)))


# Every table's prefix is one word and a colon: a key's first word names its table.
_BY_PREFIX = {table.prefix: table for table in TABLES}


def table_of(key: str) -> Table:
    return _BY_PREFIX.get(key[: key.find(":") + 1], STATE)


def read_statement(keys: Iterable[str]) -> Statement:
    """One SELECT of (prefix, key part, value text) for every key in ``keys``."""
    by_table: dict[Table, list[Any]] = {}
    for key in keys:
        table = table_of(key)
        by_table.setdefault(table, []).append(table.part_of(key))
    branches = [
        f"SELECT '{table.prefix}', {table.key}::text, {table.value}::text FROM {table.name} "
        f"WHERE {table.key} = ANY(%b)"
        for table in by_table
    ]
    params = list(by_table.values())
    idem = next((table for table in by_table if table.name == "idempotency_keys"), None)
    if idem is not None:
        # A key seen before is a replay: its decision and write-back status are read next,
        # so they ride along with the key (one round trip, not three).
        branches += [
            "SELECT 'log:', l.id::text, l.record::text FROM idempotency_keys i "
            "JOIN assignment_log l ON l.id = i.log_id WHERE i.key = ANY(%b)",
            "SELECT 'wb:', w.log_id::text, w.state::text FROM idempotency_keys i "
            "JOIN writebacks w ON w.log_id = i.log_id WHERE i.key = ANY(%b)",
        ]
        params += [by_table[idem]] * 2
    return " UNION ALL ".join(branches), tuple(params)


def decoded(prefix: str, part: str, value: str) -> tuple[str, Any]:
    """A row of ``read_statement`` (or of a scan) as the ledger's (key, value)."""
    table = next((t for t in TABLES if t.prefix == prefix), STATE)
    return table.key_of(part), decode(value) if table.value_json else int(value)


def write_statement(writes: Mapping[str, Any], deletes: Iterable[str]) -> Statement:
    """One statement that applies the ledger's ``deletes`` then ``writes``: a data-modifying
    WITH per table (one parse, bind and execute instead of one per table)."""
    parts = write_statements(writes, deletes)
    if len(parts) == 1:
        return parts[0]
    steps = ", ".join(f"w{n} AS ({sql})" for n, (sql, _) in enumerate(parts))
    return f"WITH {steps} SELECT 1", tuple(p for _, params in parts for p in params)


def write_statements(writes: Mapping[str, Any], deletes: Iterable[str]) -> list[Statement]:
    """The statements that apply the ledger's ``deletes`` then ``writes``, one per table.

    A key both deleted and written is only written (the end state is the same), so that the
    statements touch distinct rows and may run as one."""
    statements: list[Statement] = []
    gone: dict[Table, list[Any]] = {}
    for key in deletes:
        if key in writes:
            continue
        table = table_of(key)
        gone.setdefault(table, []).append(table.part_of(key))
    for table, parts in gone.items():
        statements.append((f"DELETE FROM {table.name} WHERE {table.key} = ANY(%b)", (parts,)))
    put: dict[Table, list[tuple[str, Any]]] = {}
    for key, value in writes.items():
        put.setdefault(table_of(key), []).append((key, value))
    projection = project(writes, ())  # log deletes are the DELETE above: the row is gone
    log_rows = put.pop(LOG, None)
    if log_rows:
        statements.append(_log_insert(projection.inserts, dict(log_rows)))
    if projection.updates:
        statements.append(_projection_update(projection.updates))
    for table, rows in put.items():
        statements.append(_upsert(table, rows))
    return statements


def _upsert(table: Table, rows: list[tuple[str, Any]]) -> Statement:
    parts = [table.part_of(key) for key, _ in rows]
    values = [encode(value) if table.value_json else int(value) for _, value in rows]
    key_type = "bigint" if table.numbered else "text"
    value_type = "text" if table.value_json else "bigint"
    cast = "::json" if table.value_json else ""
    # The first decision under an idempotency key keeps it (an alias never moves it).
    conflict = (
        "DO NOTHING"
        if table.name == "idempotency_keys"
        else f"DO UPDATE SET {table.value} = excluded.{table.value}"
    )
    sql = (
        f"INSERT INTO {table.name} ({table.key}, {table.value}) "
        f"SELECT k, v{cast} FROM unnest(%b::{key_type}[], %b::{value_type}[]) AS t(k, v) "
        f"ON CONFLICT ({table.key}) {conflict}"
    )
    return sql, (parts, values)


def _column(name: str, value: Any) -> Any:
    return safe(value) if isinstance(value, str) else value


def _log_insert(rows: Mapping[int, dict[str, Any]], records: Mapping[str, Any]) -> Statement:
    """Insert new log rows: every projection column, and the record's JSON."""
    ids = list(rows)
    columns = [*COLUMNS, "record"]
    arrays = [[_column(c, rows[i][c]) for i in ids] for c in COLUMNS]
    arrays.append([encode(records[ledger.log_key(i)]) for i in ids])
    unnest = ", ".join(f"%b::{_COLUMN_TYPES.get(c, 'text')}[]" for c in columns)
    names = ", ".join(columns)
    selected = ", ".join([*COLUMNS, "record::json"])
    sql = (
        f"INSERT INTO assignment_log ({names}) "
        f"SELECT {selected} FROM unnest({unnest}) AS t({names})"
    )
    return sql, tuple(arrays)


def _projection_update(updates: Mapping[int, dict[str, Any]]) -> Statement:
    """Set the later columns (SLA, write-back, outcomes) of records logged before, in one
    UPDATE: a record may get columns of several kinds in one commit."""
    ids = list(updates)
    sets: list[str] = []
    arrays: list[list[Any]] = [ids]
    names = ["id"]
    for n, group in enumerate(_LATER_GROUPS):
        arrays.append([group[0] in updates[i] for i in ids])
        names.append(f"set{n}")
        for column in group:
            arrays.append([_column(column, updates[i].get(column)) for i in ids])
            names.append(column)
            sets.append(f"{column} = CASE WHEN u.set{n} THEN u.{column} ELSE a.{column} END")
    types = ["bigint"] + [
        "boolean" if name.startswith("set") else _COLUMN_TYPES.get(name, "text")
        for name in names[1:]
    ]
    unnest = ", ".join(f"%b::{kind}[]" for kind in types)
    sql = (
        f"UPDATE assignment_log a SET {', '.join(sets)} "
        f"FROM unnest({unnest}) AS u({', '.join(names)}) WHERE a.id = u.id"
    )
    return sql, tuple(arrays)
