"""Follow-up tasks in Salesforce: ``Task`` records created through sObject Collections (200 a
call, allOrNone false, like the owner write), moved to a new owner the same way.

A lead or contact is the task's ``WhoId``; an account, opportunity or case its ``WhatId``.
``ActivityDate`` (a date) is the due day in the owner's time zone; ``ReminderDateTime`` with
``IsReminderSet`` carries the due time itself. A queue (00G...) cannot own a task: a record
routed to a queue gets none (whoever takes it from the queue makes their own).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from simple_salesforce.api import Salesforce

from adapters.salesforce.api import COLLECTION_LIMIT
from adapters.salesforce.auth import SalesforceConnection
from adapters.salesforce.errors import CALL_ERRORS, RETRYABLE_CODES, crm_error
from adapters.salesforce.ids import is_id, is_user_id
from workflows.errors import CrmError
from workflows.follow_up import NewTask, TaskMove

# Which Task field relates the task to each kind of routed record.
RELATION_FIELDS = {
    "lead": "WhoId", "contact": "WhoId",
    "account": "WhatId", "opportunity": "WhatId", "case": "WhatId",
}  # fmt: skip
PRIORITIES = {"low": "Low", "normal": "Normal", "high": "High"}
SUBTYPES = {"call": "Call", "email": "Email", "todo": "Task"}  # TaskSubtype: set on create only


def _reminder(due: datetime) -> str:
    return due.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _due_dates(due: datetime, timezone: str) -> dict[str, Any]:
    return {
        "ActivityDate": due.astimezone(ZoneInfo(timezone)).date().isoformat(),
        "ReminderDateTime": _reminder(due),
        "IsReminderSet": True,
    }


def task_record(task: NewTask) -> dict[str, Any]:
    """The ``Task`` to create for ``task`` (sObject Collections' shape)."""
    return {
        "attributes": {"type": "Task"},
        RELATION_FIELDS[task.object_type]: task.lead_id,
        "OwnerId": task.owner,
        "Subject": task.subject,
        "Description": task.body,
        "Priority": PRIORITIES[task.priority],
        "Status": "Not Started",
        "TaskSubtype": SUBTYPES[task.type],
        **_due_dates(task.due, task.timezone),
    }


class SalesforceTasks:
    """The ``TaskWriter`` of ``workflows.follow_up`` over the process's Salesforce connection."""

    def __init__(self, connection: SalesforceConnection) -> None:
        self.connection = connection
        self.chunk_size = connection.chunk_size or COLLECTION_LIMIT

    def can_own(self, owner: str) -> bool:
        return is_user_id(owner)  # a queue (00G...) cannot own a task

    def create(self, tasks: Sequence[NewTask]) -> dict[int, str | CrmError]:
        answers: dict[int, str | CrmError] = {}
        sendable = []
        for task in tasks:
            if task.object_type in RELATION_FIELDS and is_id(task.lead_id):
                sendable.append(task)
            else:
                answers[task.record_id] = CrmError(
                    f"no Task relation for Salesforce {task.object_type} {task.lead_id!r}",
                    retryable=False,
                )
        if sendable:
            made = self.connection.call(
                lambda sf: _collections(
                    sf, "POST", [task_record(t) for t in sendable], self.chunk_size,
                    "creating follow-up tasks",
                )
            )  # fmt: skip
            for task, answer in zip(sendable, made, strict=True):
                answers[task.record_id] = answer
        return answers

    def move(self, moves: Sequence[TaskMove]) -> dict[int, CrmError | None]:
        sendable = [m for m in moves if is_id(m.task_id, "00T")]
        records = [
            {"attributes": {"type": "Task"}, "Id": m.task_id, "OwnerId": m.owner,
             **_due_dates(m.due, m.timezone)}
            for m in sendable
        ]  # fmt: skip
        made = self.connection.call(
            lambda sf: _collections(sf, "PATCH", records, self.chunk_size, "moving follow-up tasks")
        )
        answers: dict[int, CrmError | None] = {
            m.record_id: CrmError(f"not a Task id: {m.task_id!r}", retryable=False) for m in moves
        }
        for move, answer in zip(sendable, made, strict=True):
            answers[move.record_id] = answer if isinstance(answer, CrmError) else None
        return answers


def _collections(
    sf: Salesforce, method: str, records: list[dict[str, Any]], chunk_size: int, doing: str
) -> list[str | CrmError]:
    """One sObject Collections call per ``chunk_size`` records; per record, in order: its id,
    or why Salesforce refused it. A failed call fails its records and every one after it."""
    results: list[str | CrmError] = []
    for start in range(0, len(records), chunk_size):
        chunk = records[start : start + chunk_size]
        try:
            answers = sf.restful(
                "composite/sobjects", method=method, json={"allOrNone": False, "records": chunk}
            )
        except CALL_ERRORS as exc:
            error = crm_error(exc, f"{doing} ({len(chunk)} tasks)")
            return results + [error] * (len(records) - start)
        results.extend(_each(chunk, answers, doing))
    return results


def _each(chunk: list[dict[str, Any]], answers: Any, doing: str) -> list[str | CrmError]:
    answers = answers if isinstance(answers, list) else []
    made: list[str | CrmError] = []
    for index, _ in enumerate(chunk):
        answer = answers[index] if index < len(answers) else None
        if not isinstance(answer, dict):
            made.append(CrmError(f"{doing}: Salesforce sent no result", retryable=True))
        elif answer.get("success") is True:
            made.append(str(answer.get("id") or chunk[index].get("Id") or ""))
        else:
            errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)] or [{}]
            code = str(errors[0].get("statusCode") or "UNKNOWN")
            text = "; ".join(str(e.get("message", "")) for e in errors)
            made.append(CrmError(f"{doing}: Salesforce refused the task: {code}: {text}",
                                 retryable=code in RETRYABLE_CODES))  # fmt: skip
    return made
