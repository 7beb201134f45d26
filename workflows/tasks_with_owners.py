"""Owners and their new follow-up tasks in one CRM call, where the CRM allows it (Salesforce's
composite request): the tasks are claimed first, sent with the owners, and any task whose
lead's owner was not written answers as failed (the adapter removes it), so a redelivery
makes it once the owner is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from workflows.config import Config
from workflows.errors import CrmError
from workflows.follow_up import NewTask, TaskMove, TaskOutcome, claim_work, finish, guarded
from workflows.model import AssignmentRecord, Decision, Lead
from workflows.store import Store


@runtime_checkable
class TasksWithOwners(Protocol):
    """A ``TaskWriter`` that can create tasks in the same call that writes the owners (a
    Salesforce composite request): one call for both, where the CRM allows it."""

    def can_own(self, owner: str) -> bool: ...

    def create(self, tasks: Sequence[NewTask]) -> dict[int, str | CrmError]: ...

    def move(self, moves: Sequence[TaskMove]) -> dict[int, CrmError | None]: ...

    def write_with_tasks(
        self, batch: Sequence[tuple[Lead, Decision]], creates: Sequence[NewTask]
    ) -> tuple[dict[str, CrmError | None], dict[int, str | CrmError]]:
        """Write the owners and create the tasks; per lead id and per record id. A task whose
        lead's owner was not written is not left behind (an error answers for it)."""


def owners_with_tasks(
    store: Store,
    config: Config,
    to_write: Sequence[tuple[Lead, AssignmentRecord]],
    writer: TasksWithOwners,
    clock: Callable[[], datetime],
) -> tuple[dict[str, CrmError | None], dict[int, TaskOutcome]]:
    """Write the owners of ``to_write`` and create their tasks in one call (moves follow, for
    the owners written); the owner errors by lead id and the task outcomes by record id."""
    work = claim_work(store, config, to_write, writer, clock)
    batch = [(lead, record.decision) for lead, record in to_write]
    try:
        errors, made = writer.write_with_tasks(batch, work.creates)
    except CrmError as exc:  # the whole call failed: every owner and task in it, to retry
        errors = {lead.id: exc for lead, _ in to_write}
        made = {task.record_id: exc for task in work.creates}
    answers: dict[int, object] = dict(made)
    lead_of = {record.id: lead.id for lead, record in to_write}
    moves = [m for m in work.moves if errors.get(lead_of[m.record_id]) is None]
    for move in work.moves:
        if move not in moves:
            answers[move.record_id] = CrmError("the owner is not written yet", retryable=True)
    if moves:
        answers.update(guarded(lambda: writer.move(moves), moves))
    return errors, finish(store, work, answers, clock)
