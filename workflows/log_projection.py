"""The assignment log as a table: which columns the ledger's rows set. Pure.

A store answers the console's queries (``Store.assignments``, ``Store.facts``) from a
relational *projection* of its log: one row per log record, with the columns the filters and
the statistics need, kept in the same commit as the key-value rows it derives from. This
module maps those rows to column values, so every store projects them alike:

    log:<id>      inserts the record's row (when, where, who, which rule, which source)
    sla:<id>      sets sla_status, sla_outcome, sla_deadline, ttft_s, rotations
    wb:<id>       sets writeback_status
    outcome:<id>  sets contacted_at, converted_at, disqualified_at

Times become fixed-width UTC text (as ``sla_clock.to_key`` writes them), which sorts like the
time itself. Text columns are made key-safe (``ledger.text``): a lone surrogate a CRM let
through cannot be stored as SQL text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from workflows.ledger import text
from workflows.model import Outcome, SlaOutcome, SlaStatus, WritebackStatus
from workflows.store import AssignmentFacts

# What the log row alone decides; never changed after the record is appended.
LOG_COLUMNS = (
    "id",
    "decided_at",
    "crm",
    "object_type",
    "lead_id",
    "source",
    "rule",
    "outcome",
    "previous_owner",
    "new_owner",
)
SLA_COLUMNS = ("sla_status", "sla_outcome", "sla_deadline", "ttft_s", "rotations")
WRITEBACK_COLUMNS = ("writeback_status",)
OUTCOME_COLUMNS = ("contacted_at", "converted_at", "disqualified_at")
LATER_COLUMNS = SLA_COLUMNS + WRITEBACK_COLUMNS + OUTCOME_COLUMNS
COLUMNS = LOG_COLUMNS + LATER_COLUMNS

_KINDS = frozenset(("log", "sla", "wb", "outcome"))


@dataclass
class Projection:
    """What one commit changes in the projection.

    ``inserts``: new records, every column (the later ones as far as this commit sets them,
    else None); ``updates``: the later columns this commit sets on records appended before;
    ``removals``: records whose log row was deleted.
    """

    inserts: dict[int, dict[str, Any]] = field(default_factory=dict)
    updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    removals: list[int] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # keys whose value has no columns

    def __bool__(self) -> bool:
        return bool(self.inserts or self.updates or self.removals)


def projected_key(key: str) -> tuple[str, int] | None:
    """(kind, log id) of a key the projection follows (``log:``, ``sla:``, ``wb:``,
    ``outcome:``), None for every other key."""
    kind, _, number = key.partition(":")
    if kind not in _KINDS or len(number) != 12 or not number.isdigit():
        return None
    return kind, int(number)


def project(writes: Mapping[str, Any], deletes: Iterable[str] = ()) -> Projection:
    """The projection changes of one commit's rows: ``deletes`` (applied first), then
    ``writes`` (key -> the JSON value written)."""
    projection = Projection()
    for key in deletes:
        named = projected_key(key)
        if named is not None and named[0] == "log":
            projection.removals.append(named[1])
    later: dict[int, dict[str, Any]] = {}
    for key, value in writes.items():
        named = projected_key(key)
        if named is None or value is None:
            continue
        kind, log_id = named
        try:
            if kind == "log":
                projection.inserts[log_id] = log_columns(log_id, value)
            else:
                columns = _COLUMNS_OF[kind](value)
                later.setdefault(log_id, {}).update(columns)
        except (KeyError, TypeError, ValueError, AttributeError):
            # A row leadrelay did not write (edited by hand, a bug of old): left out of the
            # table, never a reason to refuse the commit or the store.
            projection.unreadable.append(key)
    for log_id, columns in later.items():
        inserted = projection.inserts.get(log_id)
        if inserted is not None:
            inserted.update(columns)
        else:
            projection.updates[log_id] = columns
    for row in projection.inserts.values():
        for column in LATER_COLUMNS:
            row.setdefault(column, None)
    return projection


def log_columns(log_id: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of a ``log:`` row (``AssignmentRecord.to_dict()``)."""
    decision = row["decision"]
    return {
        "id": log_id,
        "decided_at": time_key(row["decided_at"]),
        "crm": _text(row["crm"]),
        "object_type": _text(row["object_type"]),
        "lead_id": _text(row["lead_id"]),
        "source": _text(row["source"]),
        "rule": _text(decision["rule"]),
        "outcome": decision["outcome"],
        "previous_owner": _text(row.get("previous_owner")),
        "new_owner": _text(row.get("new_owner")),
    }


def sla_columns(state: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of an ``sla:`` row (``SlaState``)."""
    ttft = state.get("ttft_s")
    return {
        "sla_status": state.get("status"),
        "sla_outcome": state.get("outcome"),
        "sla_deadline": time_key(state["deadline"]) if state.get("deadline") else None,
        "ttft_s": float(ttft) if ttft is not None else None,
        "rotations": int(state.get("rotations", 0)),
    }


def writeback_columns(status: Mapping[str, Any]) -> dict[str, Any]:
    """The column of a ``wb:`` row (``WriteBack``)."""
    return {"writeback_status": status.get("status")}


def outcome_columns(times: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of an ``outcome:`` row (``OutcomeTimes``)."""
    return {
        column: time_key(times[column]) if times.get(column) else None for column in OUTCOME_COLUMNS
    }


_COLUMNS_OF = {"sla": sla_columns, "wb": writeback_columns, "outcome": outcome_columns}


def time_key(iso: str | datetime) -> str:
    """An ISO time (or a datetime) as fixed-width UTC text; a time without a zone is UTC."""
    moment = datetime.fromisoformat(iso) if isinstance(iso, str) else iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    # sla_clock.to_key's text (for years 1000 to 9999), several times faster than strftime.
    return moment.isoformat(timespec="microseconds")


def from_time_key(key: str | None) -> datetime | None:
    """The UTC datetime of a ``time_key`` (None stays None)."""
    # Parsing the zone along is several times cheaper than datetime.replace(tzinfo=UTC).
    return None if key is None else datetime.fromisoformat(f"{key}+00:00")


def _text(value: str | None) -> str | None:
    return None if value is None else text(str(value))


def facts_of(values: Sequence[Any]) -> AssignmentFacts:
    """A projection row, its values in ``COLUMNS`` order, as the facts a store streams."""
    # The casts name their types as text: ``SlaStatus | None`` built at run time, for each of
    # a million rows, was most of the cost of streaming them.
    (log_id, decided_at, crm, object_type, lead_id, source, rule, outcome, previous_owner,
     new_owner, sla_status, sla_outcome, sla_deadline, ttft_s, rotations, writeback_status,
     contacted_at, converted_at, disqualified_at) = values  # fmt: skip
    return AssignmentFacts(
        id=log_id,
        decided_at=datetime.fromisoformat(f"{decided_at}+00:00"),
        crm=crm,
        object_type=object_type,
        lead_id=lead_id,
        source=source,
        rule=rule,
        outcome=cast("Outcome", outcome),
        previous_owner=previous_owner,
        new_owner=new_owner,
        sla_status=cast("SlaStatus | None", sla_status),
        sla_outcome=cast("SlaOutcome | None", sla_outcome),
        sla_deadline=from_time_key(sla_deadline),
        ttft_s=ttft_s,
        rotations=rotations or 0,
        writeback_status=cast("WritebackStatus | None", writeback_status),
        contacted_at=from_time_key(contacted_at),
        converted_at=from_time_key(converted_at),
        disqualified_at=from_time_key(disqualified_at),
    )
