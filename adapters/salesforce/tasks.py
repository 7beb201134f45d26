"""Follow-up tasks in Salesforce: ``Task`` records created through sObject Collections (200 a
call, allOrNone false, like the owner write), moved to a new owner the same way.

A lead or contact is the task's ``WhoId``; an account, opportunity or case its ``WhatId``.
``ActivityDate`` (a date) is the due day in the owner's time zone; ``ReminderDateTime`` with
``IsReminderSet`` carries the due time itself. A queue (00G...) cannot own a task: a record
routed to a queue gets none (whoever takes it from the queue makes their own).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from simple_salesforce.api import Salesforce

from adapters.salesforce.api import (
    COLLECTION_LIMIT,
    owner_collection,
    record_results,
    split_sendable,
    write_owners,
)
from adapters.salesforce.auth import SalesforceConnection
from adapters.salesforce.errors import CALL_ERRORS, RETRYABLE_CODES, crm_error
from adapters.salesforce.ids import is_id, is_user_id
from workflows.errors import CrmError
from workflows.follow_up import NewTask, TaskMove
from workflows.model import Decision, Lead

# Which Task field relates the task to each kind of routed record.
RELATION_FIELDS = {
    "lead": "WhoId", "contact": "WhoId",
    "account": "WhatId", "opportunity": "WhatId", "case": "WhatId",
}  # fmt: skip
log = logging.getLogger("leadrelay.salesforce")
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

    def write_with_tasks(
        self, batch: Sequence[tuple[Lead, Decision]], creates: Sequence[NewTask]
    ) -> tuple[dict[str, CrmError | None], dict[int, str | CrmError]]:
        """Owners and new tasks in one composite request (one API call: the owners' sObject
        Collections update, then the tasks' create); more than one collection's worth of
        either goes as separate calls instead."""
        return self.connection.call(lambda sf: self._write_with_tasks(sf, batch, creates))

    def _write_with_tasks(
        self, sf: Salesforce, batch: Sequence[tuple[Lead, Decision]], creates: Sequence[NewTask]
    ) -> tuple[dict[str, CrmError | None], dict[int, str | CrmError]]:
        errors, sendable = split_sendable(batch)
        if len(sendable) > self.chunk_size or len(creates) > self.chunk_size or not sendable:
            owners = write_owners(sf, batch, chunk_size=self.chunk_size)
            written = [t for t in creates if owners.get(t.lead_id) is None]
            made = self.create(written) if written else {}
            return owners, {**_not_written(creates, owners), **made}
        version = f"/services/data/v{sf.sf_version}"
        subrequests: list[dict[str, Any]] = [{
            "method": "PATCH", "url": f"{version}/composite/sobjects", "referenceId": "owners",
            # The session's header applies to the whole call; said again for the subrequest.
            "httpHeaders": {"Sforce-Auto-Assign": "FALSE"},
            "body": owner_collection(sendable),
        }]  # fmt: skip
        records = [task_record(t) for t in creates]
        if records:
            subrequests.append({
                "method": "POST", "url": f"{version}/composite/sobjects", "referenceId": "tasks",
                "body": {"allOrNone": False, "records": records},
            })  # fmt: skip
        try:
            answer = sf.restful(
                "composite", method="POST",
                json={"allOrNone": False, "compositeRequest": subrequests},
            )  # fmt: skip
        except CALL_ERRORS as exc:
            error = crm_error(exc, f"writing {len(sendable)} owners and their tasks")
            return (
                {**errors, **{lead.id: error for lead, _ in sendable}},
                {t.record_id: error for t in creates},
            )
        parts = {p.get("referenceId"): p for p in _parts(answer)}
        leads = [lead for lead, _ in sendable]
        errors.update(_sub_results(parts.get("owners"), leads, "writing owners"))
        made = dict(zip([t.record_id for t in creates],
                        _sub_made(parts.get("tasks"), records), strict=True))  # fmt: skip
        orphans = [t for t in creates if errors.get(t.lead_id) is not None
                   and isinstance(made[t.record_id], str)]  # fmt: skip
        if orphans:
            self._delete(sf, [str(made[t.record_id]) for t in orphans])
        return errors, {**made, **_not_written(orphans, errors)}

    def _delete(self, sf: Salesforce, task_ids: list[str]) -> None:
        # A task for a lead whose owner was not written would sit with a rep who does not own
        # the lead: removed, and made again once the owner is written.
        try:
            sf.restful("composite/sobjects", method="DELETE",
                       params={"ids": ",".join(task_ids), "allOrNone": "false"})  # fmt: skip
        except CALL_ERRORS as exc:
            log.warning("could not remove %d tasks of unwritten owners: %s", len(task_ids), exc)


def _not_written(
    tasks: Sequence[NewTask], owners: dict[str, CrmError | None]
) -> dict[int, str | CrmError]:
    out: dict[int, str | CrmError] = {}
    for task in tasks:
        error = owners.get(task.lead_id)
        if error is not None:
            out[task.record_id] = CrmError(f"the owner is not written: {error}",
                                           retryable=not error.is_final)  # fmt: skip
    return out


def _parts(answer: Any) -> list[dict[str, Any]]:
    parts = answer.get("compositeResponse") if isinstance(answer, dict) else None
    return [p for p in parts or [] if isinstance(p, dict)]


def _sub_failure(part: dict[str, Any] | None, doing: str) -> CrmError | None:
    """Why a whole subrequest failed (None when it answered per record)."""
    if part is None:
        return CrmError(f"{doing}: Salesforce sent no answer", retryable=True)
    status = int(part.get("httpStatusCode") or 0)
    if 200 <= status < 300 and isinstance(part.get("body"), list):
        return None
    body = part.get("body")
    first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
    code = str(first.get("errorCode") or status)
    return CrmError(f"{doing}: Salesforce answered {status} {code}: {first.get('message', '')}",
                    retryable=status >= 500 or code in RETRYABLE_CODES, status=status)  # fmt: skip


def _sub_results(
    part: dict[str, Any] | None, leads: list[Lead], doing: str
) -> dict[str, CrmError | None]:
    failure = _sub_failure(part, doing)
    if failure is not None:
        return {lead.id: failure for lead in leads}
    assert part is not None
    return record_results(leads, part["body"])


def _sub_made(part: dict[str, Any] | None, records: list[dict[str, Any]]) -> list[str | CrmError]:
    if not records:
        return []
    failure = _sub_failure(part, "creating follow-up tasks")
    if failure is not None:
        return [failure] * len(records)
    assert part is not None
    return _each(records, part["body"], "creating follow-up tasks")


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
