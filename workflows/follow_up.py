"""Follow-up tasks: once a record's owner is written, the new owner gets a task for it, once.

``deliver`` calls ``follow_up`` with the records whose owners are written (now, or by an earlier
delivery of the same decision) and a ``TaskWriter`` from the CRM's adapter. The store's claim
(``Store.claim_tasks``) says, per record, whether to create a task, move the lead's existing
task to the new owner (the sweep's rotations, ``reassign``, any later decision), or nothing
(already done, another delivery is at it, no task wanted). The writer creates and moves in
batches; the outcomes are recorded beside the log row, so a redelivery after a failure does
only what is left, and a CRM retry never creates a second task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from workflows.config import Config
from workflows.errors import CrmError
from workflows.model import OWNER_OUTCOMES, AssignmentRecord, Lead
from workflows.sla_clock import deadline
from workflows.store import Store, TaskClaim, TaskRow, TaskUpdate, TaskWanted
from workflows.task_spec import (
    BODY_LIMIT,
    DEFAULT_TASK,
    SUBJECT_LIMIT,
    TaskPriority,
    TaskSettings,
    TaskType,
    render,
    template_values,
)

log = logging.getLogger("leadrelay.tasks")

# How long a delivery may take to create or move a task before a redelivery may try instead.
TASK_LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class NewTask:
    """A task to create for a record's new owner, associated with the record."""

    record_id: int
    crm: str
    object_type: str  # the record's kind: contact, company, deal, ticket, lead, account, ...
    lead_id: str
    owner: str  # the CRM's owner id
    subject: str
    body: str
    due: datetime
    priority: TaskPriority
    type: TaskType
    timezone: str = "UTC"  # the owner's: a CRM that keeps a due date (no time) reads it there


@dataclass(frozen=True)
class TaskMove:
    """A lead's existing task given to its new owner, due again on the new owner's clock."""

    record_id: int
    task_id: str
    owner: str
    due: datetime
    timezone: str = "UTC"


class TaskWriter(Protocol):
    """A CRM's task calls (from ``adapters/``): each answers per record id."""

    def can_own(self, owner: str) -> bool:
        """False for an owner the CRM cannot give a task to (a Salesforce queue)."""

    def create(self, tasks: Sequence[NewTask]) -> dict[int, str | CrmError]:
        """Create the tasks (in batches); the new task's id, or why not, per record id."""

    def move(self, moves: Sequence[TaskMove]) -> dict[int, CrmError | None]:
        """Give each task its new owner and due time; None when done, else why not."""


@dataclass(frozen=True)
class TaskOutcome:
    """What became of one record's follow-up task in this delivery."""

    status: str  # created, moved, failed, pending (another delivery is at it), superseded
    task_id: str | None = None
    error: CrmError | None = None

    @property
    def retry(self) -> bool:
        """True when the CRM should deliver again for the task alone."""
        if self.status == "pending":
            return True
        return self.error is not None and self.error.retryable


def tasks_configured(config: Config) -> bool:
    """Whether app.yaml asks for a follow-up task anywhere (the top level or any rule)."""
    if config.task is not None:
        return True
    rules = list(config.flow.rules)
    while rules:
        rule = rules.pop()
        if rule.task is not None and rule.task.enabled is not False:
            return True
        rules.extend(rule.flow.rules if rule.flow is not None else ())
    return False


def task_settings(config: Config, record: AssignmentRecord) -> TaskSettings | None:
    """The ``task:`` that applies to the record's decision (None: no new task)."""
    return config.task_for(record.decision.rule)


def plan_task(config: Config, lead: Lead, record: AssignmentRecord) -> NewTask | None:
    """The task app.yaml asks for ``record`` (None: none asked for, or no owner to give it)."""
    settings = task_settings(config, record)
    owner = record.decision.owner_crm_id
    if settings is None or not owner:
        return None
    rep = config.reps.get(record.decision.rep_id or "")
    values = template_values(lead, record.decision, rep)
    return NewTask(
        record_id=record.id,
        crm=record.crm,
        object_type=lead.object_type,
        lead_id=lead.id,
        owner=owner,
        subject=render(settings.subject, values, SUBJECT_LIMIT, one_line=True),
        body=render(settings.body, values, BODY_LIMIT, one_line=False),
        due=_due(config, record, settings),
        priority=settings.priority,
        type=settings.type,
        timezone=rep.timezone if rep else config.timezone,
    )


def _due(config: Config, record: AssignmentRecord, settings: TaskSettings) -> datetime:
    # From the decision's time, so every delivery of one decision computes the same due time.
    rep = config.reps.get(record.decision.rep_id or "")
    return deadline(record.decided_at, settings.due, settings.clock, rep)


def wanted_tasks(
    config: Config, written: Sequence[tuple[Lead, AssignmentRecord]], writer: TaskWriter
) -> tuple[dict[int, TaskWanted], dict[int, NewTask | None]]:
    """What to claim for records whose owners are written, and the tasks app.yaml asks for."""
    wanted: dict[int, TaskWanted] = {}
    plans: dict[int, NewTask | None] = {}
    for lead, record in written:
        owner = record.decision.owner_crm_id
        if record.decision.outcome not in OWNER_OUTCOMES or not owner:
            continue
        if not writer.can_own(owner):
            continue  # a Salesforce queue cannot own a task (docs/sla.md: it stays where it is)
        # A queue's holding owner (HubSpot) gets no new task, nobody works it there; a task the
        # record already has moves to it, so it never stays with the rep the record left.
        plan = plan_task(config, lead, record) if record.decision.outcome == "assigned" else None
        wanted[record.id] = {
            "crm": record.crm, "lead_id": record.lead_id, "owner": owner, "create": bool(plan),
            "object_type": record.object_type,
        }  # fmt: skip
        plans[record.id] = plan
    return wanted, plans


@dataclass
class TaskWork:
    """What ``claim_work`` claimed: tasks to create and to move, and the outcomes of the
    records that need no call (done already, or another delivery's claim)."""

    claims: dict[int, TaskClaim]
    creates: list[NewTask]
    moves: list[TaskMove]
    outcomes: dict[int, TaskOutcome]


def claim_work(
    store: Store,
    config: Config,
    written: Sequence[tuple[Lead, AssignmentRecord]],
    writer: TaskWriter,
    clock: Callable[[], datetime],
) -> TaskWork:
    """Claim the follow-up task work of records whose owners are (about to be) written."""
    wanted, plans = wanted_tasks(config, written, writer)
    claims = store.claim_tasks(wanted, TASK_LEASE, clock())
    work = TaskWork(claims, [], [], {})
    records = {record.id: record for _, record in written}
    for record_id, claim in claims.items():
        if claim["action"] == "none":
            continue
        if claim["action"] in ("done", "busy"):
            work.outcomes[record_id] = outcome_of(claim["row"])
            continue
        plan = plans[record_id]
        if claim["action"] == "create" and plan is not None:
            work.creates.append(plan)
        else:
            record = records[record_id]
            settings = task_settings(config, record) or config.task or DEFAULT_TASK
            rep = config.reps.get(record.decision.rep_id or "")
            work.moves.append(TaskMove(record_id, claim["task_id"], wanted[record_id]["owner"],
                                       _due(config, record, settings),
                                       rep.timezone if rep else config.timezone))  # fmt: skip
    return work


def finish(
    store: Store, work: TaskWork, answers: Mapping[int, object], clock: Callable[[], datetime]
) -> dict[int, TaskOutcome]:
    """Record how the claimed work ended (``answers``: a task id, None, or a CrmError)."""
    claims = work.claims
    updates = {i: _ended(claims[i], answer) for i, answer in answers.items()}
    store.set_tasks(updates, clock())
    outcomes = dict(work.outcomes)
    for record_id, update in updates.items():
        error = answers[record_id]
        if isinstance(error, CrmError):
            doing = "moved" if claims[record_id]["action"] == "move" else "created"
            log.warning("record %d: follow-up task not %s: %s", record_id, doing, error)
            outcomes[record_id] = TaskOutcome("failed", update.get("task_id"), error)
        else:
            outcomes[record_id] = TaskOutcome(update["status"], update.get("task_id"))
    return outcomes


def follow_up(
    store: Store,
    config: Config,
    written: Sequence[tuple[Lead, AssignmentRecord]],
    writer: TaskWriter,
    clock: Callable[[], datetime],
) -> dict[int, TaskOutcome]:
    """Create or move the follow-up tasks of records whose owners are written; per record id,
    what became of its task (records that want none are left out)."""
    work = claim_work(store, config, written, writer, clock)
    answers: dict[int, object] = {}
    if work.creates:
        answers.update(guarded(lambda: writer.create(work.creates), work.creates))
    if work.moves:
        answers.update(guarded(lambda: writer.move(work.moves), work.moves))
    return finish(store, work, answers, clock)


def guarded(
    call: Callable[[], Mapping[int, object]], items: Sequence[NewTask] | Sequence[TaskMove]
) -> dict[int, object]:
    """``call()``'s answers per record id; a failed call (or a missing answer) fails its items
    retryably, so a redelivery tries them again."""
    try:
        answers = dict(call())
    except CrmError as exc:  # the whole call failed: every item in it, to retry
        answers = {item.record_id: exc for item in items}
    for item in items:
        answers.setdefault(
            item.record_id, CrmError("the CRM sent no result for this task", retryable=True)
        )
    return answers


def _ended(claim: TaskClaim, answer: object) -> TaskUpdate:
    if isinstance(answer, CrmError):
        return {"status": "failed", "detail": str(answer), "final": answer.is_final}
    if claim["action"] == "create":
        return {"status": "created", "task_id": str(answer), "detail": ""}
    return {"status": "moved", "task_id": claim.get("task_id", ""), "detail": ""}


def outcome_of(row: TaskRow) -> TaskOutcome:
    """A recorded task row as this delivery's outcome (a replay's answer)."""
    status = row.get("status", "pending")
    if status == "failed":
        error = CrmError(row.get("detail", "task failed"), retryable=not row.get("final"))
        return TaskOutcome("failed", row.get("task_id"), error)
    return TaskOutcome(status, row.get("task_id"))
