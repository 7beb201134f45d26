"""Follow-up tasks in HubSpot: the tasks object, created in batches of 100 and associated with
the routed record, and moved to a new owner by batch update.

Each created task carries ``objectWriteTraceId`` = the log record's id, which HubSpot echoes in
its result: that is how an answer is matched to its record, whatever order HubSpot answers in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from hubspot.crm.objects.tasks import (
    AssociationSpec,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputForCreate,
)

from adapters.hubspot.client import BATCH_LIMIT, HubSpotApi
from workflows.errors import CrmError
from workflows.follow_up import NewTask, TaskMove

# HubSpot's default (HUBSPOT_DEFINED) association type from a task to each record kind.
TASK_ASSOCIATION_TYPES = {"contact": 204, "company": 192, "deal": 216, "ticket": 230}
PRIORITIES = {"low": "LOW", "normal": "MEDIUM", "high": "HIGH"}
TYPES = {"call": "CALL", "email": "EMAIL", "todo": "TODO"}


def task_properties(task: NewTask) -> dict[str, str]:
    """The task's HubSpot properties (``hs_timestamp`` is its due time, epoch milliseconds)."""
    return {
        "hs_timestamp": str(int(task.due.timestamp() * 1000)),
        "hs_task_subject": task.subject,
        "hs_task_body": task.body,
        "hs_task_status": "NOT_STARTED",
        "hs_task_priority": PRIORITIES[task.priority],
        "hs_task_type": TYPES[task.type],
        "hubspot_owner_id": task.owner,
    }


class HubSpotTasks:
    """The ``TaskWriter`` of ``workflows.follow_up`` over one HubSpot client and deadline."""

    def __init__(self, api: HubSpotApi, deadline: float | None = None) -> None:
        self.api = api
        self.deadline = deadline

    def _deadline(self) -> float:
        return self.deadline if self.deadline is not None else self.api.deadline()

    def _send(self, call: Callable[[Any], Any], what: str) -> list[dict[str, Any]] | None:
        """One batch call on the client's budget; the answer's ``results`` (None: unreadable)."""
        return _results(self.api.call(call, what, self._deadline()))

    def can_own(self, owner: str) -> bool:
        return owner.isdigit()  # any HubSpot owner id (teams own nothing)

    def create(self, tasks: Sequence[NewTask]) -> dict[int, str | CrmError]:
        answers: dict[int, str | CrmError] = {}
        sendable: list[NewTask] = []
        for task in tasks:
            if task.object_type in TASK_ASSOCIATION_TYPES:
                sendable.append(task)
            else:
                answers[task.record_id] = CrmError(
                    f"no task association for HubSpot {task.object_type!r} records",
                    retryable=False,
                )
        for start in range(0, len(sendable), BATCH_LIMIT):
            answers.update(self._create_chunk(sendable[start : start + BATCH_LIMIT]))
        return answers

    def _create_chunk(self, chunk: Sequence[NewTask]) -> dict[int, str | CrmError]:
        batch = self.api.tasks_batch
        same = batch.api_client.configuration
        inputs = [
            SimplePublicObjectBatchInputForCreate(
                properties=task_properties(task),
                associations=[_association(task, same)],
                object_write_trace_id=str(task.record_id),
                local_vars_configuration=same,
            )
            for task in chunk
        ]
        body = BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs)
        try:
            made = self._send(
                lambda timeout: batch.create(
                    body, _request_timeout=timeout, _preload_content=False
                ),
                f"creating {len(chunk)} follow-up tasks",
            )
        except CrmError as exc:
            return {task.record_id: exc for task in chunk}
        if made is None:
            unreadable = CrmError("HubSpot answered the task creation in an unexpected shape",
                                  retryable=True)  # fmt: skip
            return {task.record_id: unreadable for task in chunk}
        created = {str(r.get("objectWriteTraceId")): str(r["id"]) for r in made if "id" in r}
        refused = CrmError("HubSpot did not create this task", retryable=False)
        return {task.record_id: created.get(str(task.record_id), refused) for task in chunk}

    def move(self, moves: Sequence[TaskMove]) -> dict[int, CrmError | None]:
        answers: dict[int, CrmError | None] = {}
        for start in range(0, len(moves), BATCH_LIMIT):
            answers.update(self._move_chunk(moves[start : start + BATCH_LIMIT]))
        return answers

    def _move_chunk(self, chunk: Sequence[TaskMove]) -> dict[int, CrmError | None]:
        batch = self.api.tasks_batch
        same = batch.api_client.configuration
        by_task: dict[str, TaskMove] = {}
        for move in chunk:
            by_task.setdefault(move.task_id, move)  # a batch names each task once
        inputs = [
            SimplePublicObjectBatchInput(
                id=move.task_id,
                properties={
                    "hubspot_owner_id": move.owner,
                    "hs_timestamp": str(int(move.due.timestamp() * 1000)),
                },
                local_vars_configuration=same,
            )
            for move in by_task.values()
        ]
        body = BatchInputSimplePublicObjectBatchInput(inputs=inputs)
        try:
            made = self._send(
                lambda timeout: batch.update(
                    body, _request_timeout=timeout, _preload_content=False
                ),
                f"moving {len(inputs)} follow-up tasks to their new owners",
            )
        except CrmError as exc:
            return {move.record_id: exc for move in chunk}
        moved = {str(r.get("id")) for r in made or ()}
        gone = CrmError("HubSpot no longer has this task (deleted)", retryable=False)
        return {move.record_id: None if move.task_id in moved else gone for move in chunk}


def _association(task: NewTask, same: Any) -> PublicAssociationsForObject:
    spec = AssociationSpec(
        association_category="HUBSPOT_DEFINED",
        association_type_id=TASK_ASSOCIATION_TYPES[task.object_type],
        local_vars_configuration=same,
    )
    return PublicAssociationsForObject(
        to=PublicObjectId(id=task.lead_id, local_vars_configuration=same),
        types=[spec],
        local_vars_configuration=same,
    )


def _results(raw: Any) -> list[dict[str, Any]] | None:
    """The ``results`` of a raw batch answer (None when unreadable)."""
    try:
        data = raw.data
    finally:
        raw.release_conn()
    try:
        answer = json.loads(data)
        results = answer.get("results") or []
        return [r for r in results if isinstance(r, dict)]
    except (ValueError, TypeError, AttributeError):
        return None
