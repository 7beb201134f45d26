"""The ledger: what a decision, a write-back or a settlement writes to the store. Pure.

Every store keeps the same logical rows, one JSON value per key; this module names the keys
and decides their values (SLA superseding, rotation counts, escalation, the lead history, the
sticky-owner index, write-back attempts, claims and leases), from the values a store read and
the ``now`` its caller passed. It reads nothing and never looks at the clock: a store reads
what a function here asks for, calls it, and applies the ``Rows`` it returns atomically, so
two stores cannot get a rule subtly different.

Key layout:
    meta:seq                  last log id
    log:<12-digit id>         an AssignmentRecord
    idem:<key>                log id of the first decision made under an idempotency key
    pool:<pool id>            a pool's rotation state
    count:<rep id>            [local day, leads assigned to the rep that day]
    owner:email:<email>       rep who last owned a lead with this email (sticky routing)
    owner:domain:<domain>     same, by company domain
    lead:<crm>:<lead id>      LeadHistory: log ids, owners, open SLA, rotations of one lead
    wb:<12-digit id>          WriteBack: write-back status of a log record
    sla:<12-digit id>         SlaState of a log record: deadline, terms, rotations, status,
                              and once settled its outcome and time to first touch
    outcome:<12-digit id>     OutcomeTimes: when the CRM first showed the record's lead
                              contacted, converted or disqualified, and when it last looked
    task:<12-digit id>        TaskRow: the record's follow-up task (``workflows.task_ledger``)
    outbox:<12-digit id>      OutboxItem: work a decision left for a background flusher (HubSpot's
                              batch mode: the owner to write, the execution to complete)
    due:<UTC time>:<12-digit id>  the deadline index: one key per open SLA, sorted by
                              deadline (fixed-width UTC text), so a sweep range-scans only
                              what is due
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from workflows.model import OWNER_OUTCOMES, AssignmentRecord, WritebackStatus, record_name
from workflows.sla_clock import to_key
from workflows.store import (
    LeadHistory,
    OutboxChange,
    OutboxItem,
    OutcomeTimes,
    SlaState,
    SlaTerms,
    SlaUpdate,
    WriteBack,
)

SEQ = "meta:seq"
DUE = "due:"
# Sorts after every key that starts with a given prefix (the highest code point).
_AFTER = "\U0010ffff"
_TO_WRITE = ("pending", "failed")
_FIRST_TIMES = ("contacted_at", "converted_at", "disqualified_at")


@dataclass
class Rows:
    """What to apply in one commit: ``deletes`` first, then ``writes`` (key -> JSON value)."""

    writes: dict[str, Any] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)


def text(part: str) -> str:
    """A key part as valid UTF-8: a lone surrogate a CRM let through becomes ``\\ud800``
    (SQLite cannot store it, and the same input always maps to the same key)."""
    return part if part.isascii() else part.encode("utf-8", "backslashreplace").decode("utf-8")


def log_key(log_id: int) -> str:
    return f"log:{log_id:012d}"


def writeback_key(log_id: int) -> str:
    return f"wb:{log_id:012d}"


def sla_key(log_id: int) -> str:
    return f"sla:{log_id:012d}"


def outcome_key(log_id: int) -> str:
    return f"outcome:{log_id:012d}"


OUTBOX = "outbox:"


def outbox_key(log_id: int) -> str:
    return f"{OUTBOX}{log_id:012d}"


def outbox_range() -> tuple[str, str]:
    """Every outbox key lies strictly between these two."""
    return OUTBOX, OUTBOX + _AFTER


def outbox_id(key: str) -> int:
    return int(key[len(OUTBOX) :])


def due_key(deadline_key: str, log_id: int) -> str:
    return f"{DUE}{deadline_key}:{log_id:012d}"


def due_id(key: str) -> int:
    """The log id a deadline-index key names."""
    return int(key.rsplit(":", 1)[1])


def due_range(now: datetime, after: str = "") -> tuple[str, str]:
    """The deadline-index keys due at ``now`` lie strictly between these two, from ``after``."""
    return max(after, DUE), f"{DUE}{to_key(now)}:{_AFTER}"


def pool_key(pool: str) -> str:
    return f"pool:{pool}"


def count_key(rep: str) -> str:
    return f"count:{rep}"


def idem_key(key: str) -> str:
    return f"idem:{text(key)}"


def lead_key(crm: str, lead_id: str, object_type: str = "") -> str:
    return f"lead:{crm}:{text(record_name(crm, lead_id, object_type))}"


def lead_range(crm: str | None) -> tuple[str, str]:
    """Every lead history (of one CRM, when given) lies strictly between these two keys."""
    prefix = f"lead:{crm}:" if crm else "lead:"
    return prefix, prefix + _AFTER


def lead_id_of(key: str) -> str:
    """The (key-safe) lead id of a lead-history key, to compare with ``text(lead_id)``."""
    name = key.rsplit(":", 1)[-1]
    if key.startswith("lead:hubspot:") and "/" in name:
        return name.partition("/")[2]  # a HubSpot deal's, ticket's or company's own id
    return name


def email_key(email: str) -> str:
    return f"owner:email:{text(email.casefold())}"


def domain_key(domain: str) -> str:
    return f"owner:domain:{text(domain.casefold())}"


def new_history() -> LeadHistory:
    return {"log_ids": [], "owners": []}


def stamp(now: datetime) -> str:
    """``now`` as the store keeps times it stamps: ISO text in UTC (these compare as text)."""
    return now.astimezone(UTC).isoformat()


def writeback_status(
    status: WritebackStatus, detail: str, attempts: int, now: datetime
) -> WriteBack:
    return {"status": status, "detail": detail, "attempts": attempts, "at": stamp(now)}


def superseded_sla(record: AssignmentRecord, history: LeadHistory) -> int | None:
    """The log id whose SLA recording ``record`` ends, if any: read its state for
    ``record_rows``. A new owner ends the lead's open SLA (it was the previous owner's to
    meet), unless the sweep made it: the sweep settles what it rotates away from itself."""
    if record.decision.outcome not in OWNER_OUTCOMES or record.source == "sweep":
        return None
    return history.get("sla_open")


def record_rows(
    record: AssignmentRecord,
    *,
    history: LeadHistory,
    previous_sla: SlaState | None,
    pool_states: Mapping[str, dict[str, Any]],
    daily_counts: Mapping[str, tuple[str, int]],
    writeback: WritebackStatus | None,
    terms: SlaTerms | None,
    aliases: Sequence[str],
    now: datetime,
    outbox: dict[str, Any] | None = None,
) -> Rows:
    """The rows that append ``record`` (already numbered) to the log: the lead's history, its
    idempotency keys and ``aliases``, the rotation state and counts it advanced, its initial
    write-back status, its SLA (and the end of the one it supersedes, ``previous_sla``, read
    under ``superseded_sla``) and the sticky-owner index."""
    log_id = record.id
    assigned = record.decision.outcome == "assigned"
    lead = lead_key(record.crm, record.lead_id, record.object_type)
    updated: LeadHistory = {
        **history,
        "log_ids": [*history["log_ids"], log_id],
        "owners": list(history["owners"]),
    }
    rows = Rows({SEQ: log_id, log_key(log_id): record.to_dict(), lead: updated})
    writes = rows.writes
    for key in (record.idempotency_key, *aliases):
        if key:
            writes[idem_key(key)] = log_id
    for pool, state in pool_states.items():
        writes[pool_key(pool)] = state
    for rep, day_count in daily_counts.items():
        writes[count_key(rep)] = day_count
    if writeback:
        writes[writeback_key(log_id)] = writeback_status(writeback, "", 0, now)
    if outbox is not None:
        item: OutboxItem = {
            "payload": outbox, "attempts": 0, "enqueued_at": stamp(now), "claimed_until": ""
        }  # fmt: skip
        writes[outbox_key(log_id)] = item
    if record.decision.outcome in OWNER_OUTCOMES and record.source != "sweep":
        previous = updated.pop("sla_open", None)
        if previous and previous_sla is not None and previous_sla.get("status") == "open":
            rows.deletes.append(due_key(previous_sla["due_key"], previous))
            ended: SlaState = {
                **previous_sla,
                "status": "superseded",
                "outcome": "superseded",
                "detail": f"reassigned by #{log_id} ({record.source})",
                "settled_at": record.decided_at.isoformat(),
                "next_record": log_id,
            }
            writes[sla_key(previous)] = ended
    if terms is not None:
        _sla_rows(record, updated, terms, writes)
    if record.new_owner and assigned:
        updated["owners"].append(record.new_owner)
        if record.lead_email:
            writes[email_key(record.lead_email)] = record.new_owner
        if record.lead_domain:
            writes[domain_key(record.lead_domain)] = record.new_owner
    return rows


def _sla_rows(
    record: AssignmentRecord, history: LeadHistory, terms: SlaTerms, writes: dict[str, Any]
) -> None:
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
    writes[sla_key(record.id)] = state
    if not escalated:
        writes[due_key(terms["due_key"], record.id)] = record.id
        history["sla_open"] = record.id


def claim(status: WriteBack | None, lease: timedelta, now: datetime) -> WriteBack | None:
    """The status that claims a write-back from ``now`` for ``lease``, or None when it is not
    to be claimed: nothing left to write, or another delivery's claim is still live."""
    if not status or status["status"] not in _TO_WRITE:
        return None
    if status.get("claimed_until", "") > stamp(now):
        return None  # another delivery of the same lead is writing it right now
    return {**status, "claimed_until": stamp(now + lease)}


def outbox_claims(
    items: Mapping[int, OutboxItem | None], limit: int, lease: timedelta, now: datetime
) -> dict[int, OutboxItem]:
    """Up to ``limit`` of ``items`` (oldest id first) that are free at ``now``, each claimed
    for ``lease``: write them back to take the claim."""
    free_by = stamp(now)
    claimed: dict[int, OutboxItem] = {}
    for item_id in sorted(items):
        item = items[item_id]
        if item is None or item["claimed_until"] > free_by:
            continue  # gone meanwhile, or another flusher holds it (or it waits to retry)
        claimed[item_id] = {**item, "claimed_until": stamp(now + lease)}
        if len(claimed) >= limit:
            break
    return claimed


def outbox_rows(
    done: Collection[int],
    changes: Mapping[int, OutboxChange],
    previous: Mapping[int, OutboxItem | None],
) -> Rows:
    """Remove the ``done`` items; merge ``changes`` into the items read (``previous``), one
    more attempt each, free again at ``retry_at`` (at once without one). An item no longer
    there is left alone: it was done meanwhile."""
    rows = Rows(deletes=[outbox_key(i) for i in done])
    for item_id, change in changes.items():
        before = previous.get(item_id)
        if before is None or item_id in done:
            continue
        merged: OutboxItem = {
            **before,
            "payload": change.get("payload", before["payload"]),
            "attempts": before["attempts"] + 1,
            "claimed_until": change.get("retry_at", ""),
        }
        if "error" in change:
            merged["error"] = change["error"]
        rows.writes[outbox_key(item_id)] = merged
    return rows


def writeback_rows(
    updates: Mapping[int, tuple[WritebackStatus, str]],
    previous: Mapping[int, WriteBack | None],
    final: Collection[int],
    now: datetime,
) -> Rows:
    """Write-back outcomes, each counting one more attempt than ``previous`` holds; the
    failures named in ``final`` are marked final (no retry can fix them)."""
    rows = Rows()
    for record_id, (status, detail) in updates.items():
        before = previous.get(record_id)
        value = writeback_status(status, detail, (before or {"attempts": 0})["attempts"] + 1, now)
        if record_id in final:
            value["final"] = True
        rows.writes[writeback_key(record_id)] = value
    return rows


def settle_rows(updates: Mapping[int, SlaUpdate], states: Mapping[int, SlaState | None]) -> Rows:
    """Merge SLA updates into the ``states`` read: off the deadline index unless still open,
    and at its new place when ``due_key`` moved. A record with no SLA state is left alone."""
    rows = Rows()
    for record_id, update in updates.items():
        state = states.get(record_id)
        if state is None:
            continue
        merged = cast(SlaState, {**state, **update})
        if state.get("status") == "open":
            rows.deletes.append(due_key(state["due_key"], record_id))
        if merged.get("status") == "open":
            rows.writes[due_key(merged["due_key"], record_id)] = record_id
        rows.writes[sla_key(record_id)] = merged
    return rows


def outcome_rows(
    updates: Mapping[int, OutcomeTimes],
    previous: Mapping[int, OutcomeTimes | None],
    known: Collection[int],
) -> Rows:
    """Merge what a CRM showed about routed records into the outcome times read
    (``previous``): each ``*_at`` is kept from the first update that names it, ``checked_at``
    takes the newest time. Ids not in ``known`` (the log ids that exist) are ignored."""
    rows = Rows()
    for record_id, update in updates.items():
        if record_id not in known:
            continue
        merged = merge_outcomes(previous.get(record_id), update)
        if merged != previous.get(record_id):
            rows.writes[outcome_key(record_id)] = merged
    return rows


def merge_outcomes(before: OutcomeTimes | None, update: OutcomeTimes) -> OutcomeTimes:
    """``update`` merged into ``before`` (times as UTC ISO text; one without a zone is UTC)."""
    merged = dict(cast(Mapping[str, str], before or {}))
    given = cast(Mapping[str, str], update)
    for name in _FIRST_TIMES:
        value = given.get(name)
        if value and name not in merged:
            merged[name] = _utc_iso(value)
    checked = update.get("checked_at")
    if checked:
        checked = _utc_iso(checked)
        if "checked_at" not in merged or _moment(checked) > _moment(merged["checked_at"]):
            merged["checked_at"] = checked
    return cast(OutcomeTimes, merged)


def _moment(iso: str) -> datetime:
    moment = datetime.fromisoformat(iso)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _utc_iso(iso: str) -> str:
    """ValueError naming the text when it is not an ISO time."""
    try:
        return stamp(_moment(iso))
    except (TypeError, ValueError):
        raise ValueError(f"not an ISO time: {iso!r}") from None
