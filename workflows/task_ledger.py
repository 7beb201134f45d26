"""The ledger's follow-up task rows: who may create or move a record's task, and how it ended.

Pure, like ``workflows.ledger``: a store reads the rows asked for here and applies the rows
returned, in one commit. Key layout (beside ``wb:<id>``):

    task:<12-digit id>        TaskRow: the follow-up task of a log record

A record's task is claimed like its write-back (a lease, so two concurrent deliveries never
both create it, and a crashed one's claim lapses), and once created or moved it is never
claimed again: a CRM's retry replays the answer and creates nothing.

A lead that already has a task (an earlier record's, created or moved) gets that task moved to
the new owner instead of a second one: the sweep's rotations and ``reassign`` keep one open
task per lead, with its history, and the old owner's list loses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from workflows.ledger import Rows, stamp
from workflows.store import TaskClaim, TaskRow, TaskUpdate, TaskWanted

TASK = "task:"
# Earlier records of a lead looked at for a task to move (a lead rotated more often than this
# since its task was made would get a new one).
LOOKBACK = 20
_HAS_TASK = ("created", "moved")


def task_key(log_id: int) -> str:
    return f"{TASK}{log_id:012d}"


def claim_tasks(
    wanted: Mapping[int, TaskWanted],
    rows: Mapping[int, TaskRow | None],
    lead_logs: Mapping[int, list[int]],
    lease: timedelta,
    now: datetime,
) -> tuple[dict[int, TaskClaim], Rows]:
    """The claims for ``wanted`` and the rows that take them.

    ``rows`` holds the task rows of the wanted records and of the earlier records of their
    leads, whose log ids (oldest first, the record's own included) are ``lead_logs[id]``.
    """
    claims: dict[int, TaskClaim] = {}
    out = Rows()
    for record_id, want in wanted.items():
        row = rows.get(record_id)
        logs = lead_logs.get(record_id, [])
        if row and (row.get("status") in (*_HAS_TASK, "superseded") or row.get("final")):
            claims[record_id] = {"action": "done", "row": row}
            continue
        if row and row.get("claimed_until", "") > stamp(now):
            claims[record_id] = {"action": "busy", "row": row}
            continue
        if any(later > record_id and rows.get(later) for later in logs):
            # A later decision took the lead (and its task) over: this one's moment passed.
            done: TaskRow = {**(row or {}), "status": "superseded", "at": stamp(now),
                             "detail": "a later decision took the lead over"}  # fmt: skip
            out.writes[task_key(record_id)] = done
            claims[record_id] = {"action": "done", "row": done}
            continue
        earlier = _latest_task(record_id, logs, rows)
        if earlier is None and not want["create"]:
            claims[record_id] = {"action": "none", "row": row or {}}
            continue
        claimed: TaskRow = {
            **(row or {}),
            "status": "pending",
            "owner": want["owner"],
            "attempts": (row or {}).get("attempts", 0),
            "at": stamp(now),
            "claimed_until": stamp(now + lease),
        }
        claim: TaskClaim = {"action": "create", "row": claimed}
        if earlier is not None:
            earlier_id, task_id = earlier
            claimed["task_id"], claimed["moved_from"] = task_id, earlier_id
            claim = {"action": "move", "row": claimed, "task_id": task_id}
        out.writes[task_key(record_id)] = claimed
        claims[record_id] = claim
    return claims, out


def _latest_task(
    record_id: int, logs: list[int], rows: Mapping[int, TaskRow | None]
) -> tuple[int, str] | None:
    for log_id in reversed(logs):
        row = rows.get(log_id)
        if log_id < record_id and row and row.get("status") in _HAS_TASK and row.get("task_id"):
            return log_id, str(row["task_id"])
    return None


def earlier_logs(logs: list[int], record_id: int) -> list[int]:
    """The log ids of a lead whose task rows ``claim_tasks`` reads for ``record_id``."""
    return logs[-LOOKBACK:] if record_id in logs else [*logs[-LOOKBACK:], record_id]


def task_rows(
    updates: Mapping[int, TaskUpdate], previous: Mapping[int, TaskRow | None], now: datetime
) -> Rows:
    """Merge how claimed work ended into the rows read: one more attempt, the claim released.
    A record never claimed (no row) is left alone."""
    out = Rows()
    for record_id, update in updates.items():
        before = previous.get(record_id)
        if before is None:
            continue
        merged: TaskRow = {
            **before,
            **update,
            "attempts": before.get("attempts", 0) + 1,
            "at": stamp(now),
            "claimed_until": "",
        }
        out.writes[task_key(record_id)] = merged
    return out
