"""Route CRM leads and write their owners back, exactly once per delivery, whatever the retries.

Connectors call ``deliver`` with the leads of one inbound request and a function that writes
owners to the CRM (from ``adapters/``). The router decides under each lead's idempotency key;
only decisions not yet written reach the writer, in one batch; every outcome is recorded beside
the log row. A CRM that retries a delivery therefore never rotates twice, and a delivery whose
write failed is written on the retry without being decided again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from workflows.errors import CrmError
from workflows.follow_up import TaskOutcome, TaskWriter, follow_up
from workflows.model import Decision, Lead, WritebackStatus
from workflows.router import OutboxPayload, Router, RouteRequest, RoutingResult
from workflows.tasks_with_owners import TasksWithOwners, owners_with_tasks

log = logging.getLogger("leadrelay.delivery")

# Writes owners for a batch of (lead, decision); answers per lead id, None meaning written.
OwnerWriter = Callable[[Sequence[tuple[Lead, Decision]]], dict[str, CrmError | None]]


@dataclass(frozen=True)
class Inbound:
    """One lead as a CRM delivered it, with its idempotency key and connector-side choices."""

    lead: Lead
    key: str | None  # None: no idempotency (a caller that never retries)
    keep_reason: str | None = None  # set when the connector's policy keeps the current owner
    entry: str | None = None  # a pool or top-level rule to route from, instead of the flow
    exclude: frozenset[str] = frozenset()  # reps who must not get it (previous owners)
    must_move: bool = False  # True: a decision that leaves the lead where it is records nothing
    why: str | None = None  # why the caller moves it: leads the decision's reason when it does
    outbox: OutboxPayload | None = None  # a flusher writes it later, from the store's outbox


@dataclass(frozen=True)
class Delivery:
    """What happened to one inbound lead."""

    lead: Lead
    result: RoutingResult
    status: str  # "written", "not_needed", "failed", "in_progress" (another delivery writes),
    # or "pending" (the outbox's flusher writes it)
    error: CrmError | None = None
    task: TaskOutcome | None = None  # the follow-up task, when app.yaml asks for one

    @property
    def done(self) -> bool:
        """True when the CRM may consider this lead handled (safe to acknowledge).

        A failure no redelivery can fix (the lead was deleted, the owner is inactive) is done
        too: it is recorded as failed, and redelivering would not help.
        """
        if self.status == "in_progress":
            return False  # the CRM should retry: the write under way may still fail
        if self.task is not None and self.task.retry:
            return False  # the owner is written; a redelivery creates (or moves) the task
        return self.status != "failed" or (self.error is not None and self.error.is_final)


def deliver(
    router: Router,
    inbound: Sequence[Inbound],
    now: datetime,
    *,
    source: str,
    write: OwnerWriter | None,
    notify: Callable[[Sequence[Delivery]], None] | None = None,
    tasks: TaskWriter | None = None,
) -> list[Delivery]:
    """Route each inbound lead, write the owners that need writing in one batch, record all.

    ``write=None`` means the CRM sets the owner itself from our answer (nothing to write).
    ``notify`` gets the deliveries once the write-back is done (it must not block).
    ``tasks`` creates the follow-up tasks app.yaml asks for once owners are written (and
    moves a lead's task to its new owner); None: no tasks. A ``TasksWithOwners`` (Salesforce)
    writes the claimed owners and their new tasks in one call, in place of ``write``.
    """
    # The same lead twice in one delivery (two notifications, one record) is decided once, and
    # the decision is kept under every key, so a CRM retrying either one alone replays it.
    unique: dict[str, Inbound] = {}
    aliases: dict[str, list[str]] = {}
    for item in inbound:
        first = unique.setdefault(item.lead.id, item)
        others = aliases.setdefault(item.lead.id, [])
        if item.key and item.key != first.key and item.key not in others:
            others.append(item.key)
    requests = [
        RouteRequest(
            item.lead,
            now,
            source=source,
            idempotency_key=item.key,
            entry=item.entry,
            keep_reason=item.keep_reason,
            exclude=item.exclude,
            writes_back=write is not None or item.outbox is not None,
            must_move=item.must_move,
            why=item.why,
            aliases=tuple(aliases[item.lead.id]),
            outbox=item.outbox,
        )
        for item in unique.values()
    ]
    # One commit for the whole batch (and shared with concurrent deliveries), with each
    # decision's write-back status: "pending" when the owner must still be written.
    results = router.route_many(requests)

    # Only the delivery that claimed a write does it: a CRM retry arriving while the first
    # delivery is still writing waits for a later retry instead of writing twice.
    to_write = [
        (item.lead, result)
        for item, result in zip(unique.values(), results, strict=True)
        if write is not None and result.claimed
    ]
    early: dict[int, TaskOutcome] = {}  # tasks made in the owners' own call
    if write is not None and isinstance(tasks, TasksWithOwners) and to_write:
        pairs = [(lead, r.record) for lead, r in to_write if r.record is not None]
        errors, early = owners_with_tasks(router.store, router.config, pairs, tasks, router.clock)
    else:
        errors = _write_batch(write, [(lead, r.decision) for lead, r in to_write]) if write else {}
    updates: dict[int, tuple[WritebackStatus, str]] = {}
    final: set[int] = set()  # failures no retry can fix: the sweep must not wait on them
    for lead, result in to_write:
        assert result.record is not None
        error = errors.get(lead.id)
        updates[result.record.id] = ("failed", str(error)) if error else ("written", "")
        if error is not None and error.is_final:
            final.add(result.record.id)
    router.store.set_writebacks(updates, router.clock(), final=final)
    for lead, _ in to_write:
        router.written(lead, errors.get(lead.id))

    deliveries: dict[str, Delivery] = {}
    for item, result in zip(unique.values(), results, strict=True):
        error = errors.get(item.lead.id)
        if result.record is not None and result.record.id in updates:
            status = updates[result.record.id][0]
        else:
            status = (result.writeback or {}).get("status", "not_needed")
            if status in ("pending", "failed") and write is not None:
                status = "in_progress"
        deliveries[item.lead.id] = Delivery(item.lead, result, status, error)
    if tasks is not None:
        _follow_up(router, deliveries, tasks, early)
    answer = [deliveries[item.lead.id] for item in inbound]
    if notify is not None:
        try:
            notify(list(deliveries.values()))
        except Exception:  # a notification problem must never fail the CRM's delivery
            log.exception("notifying about %d deliveries failed", len(deliveries))
    return answer


def _follow_up(
    router: Router,
    deliveries: dict[str, Delivery],
    tasks: TaskWriter,
    early: dict[int, TaskOutcome],
) -> None:
    """The follow-up tasks of the owners written (now or by an earlier delivery); ``early``:
    those already made in the owners' own call."""
    written = [
        (d.lead, d.result.record)
        for d in deliveries.values()
        if d.status == "written" and d.result.record is not None
        and d.result.record.id not in early
    ]  # fmt: skip
    outcomes = dict(early)
    if written:
        try:
            outcomes.update(follow_up(router.store, router.config, written, tasks, router.clock))
        except CrmError as exc:  # no claim was taken: a redelivery tries again
            outcomes.update({record.id: TaskOutcome("failed", None, exc) for _, record in written})
    for lead_id, delivery in deliveries.items():
        record = delivery.result.record
        if record is not None and record.id in outcomes:
            deliveries[lead_id] = replace(delivery, task=outcomes[record.id])


def _write_batch(
    write: OwnerWriter, batch: list[tuple[Lead, Decision]]
) -> dict[str, CrmError | None]:
    if not batch:
        return {}
    try:
        return write(batch)
    except CrmError as exc:
        # A failure of the whole call fails every lead in it; each is retried on redelivery.
        return {lead.id: exc for lead, _ in batch}
