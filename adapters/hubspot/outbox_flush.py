"""One flush of HubSpot's batch mode: owners written and executions completed, 100 a call.

The action endpoint left, with each decision, an outbox item (``connector.hubspot_execute``):
the record (a contact, company, deal or ticket), the owner to write (or none) and the output
fields to complete the blocked execution with. A flush claims up to 100 items, writes their
owners in one ``batch/update`` per object type, records the write-backs, and completes the
executions in one batch callback completion.

- A contact HubSpot refuses (deleted, merged away) fails alone: its execution completes with
  ``outcome: failed`` (FAIL_CONTINUE), and the others go on.
- 429 (the shared pause), 5xx and timeouts leave the items in the outbox, free again after a
  back-off (or when the pause ends); an owner already written is not written again.
- 401/403 stop the flusher (``FlushResult.stopped``): no retry fixes a token.
Items leave the outbox only once their execution is completed: a crash anywhere leaves them
to the next flush, in any process, once their claim lapses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from adapters.hubspot.client import BATCH_LIMIT, CALLBACK_BATCH_LIMIT, HubSpotApi
from adapters.hubspot.limits import BudgetExhausted
from adapters.hubspot.pause import PausedError
from adapters.hubspot.payload import failed_write_fields, with_task
from workflows.errors import CrmError
from workflows.follow_up import TaskOutcome
from workflows.ledger import stamp
from workflows.model import WritebackStatus
from workflows.store import OutboxChange, OutboxItem, Store

# Makes the follow-up tasks of items whose owners are written (their payloads, by item id =
# log record id): what became of each task. From the connector, which knows app.yaml.
FollowUp = Callable[[HubSpotApi, Mapping[int, dict[str, Any]]], Mapping[int, TaskOutcome]]

log = logging.getLogger("leadrelay.hubspot.flush")

# A flusher works on what it claimed for this long; a crashed one's items are free after it.
LEASE = timedelta(seconds=30)
MAX_BACKOFF = 60.0


@dataclass
class FlushResult:
    """What one flush did (counts of outbox items), and why it stopped if it did."""

    claimed: int = 0
    written: int = 0  # owners written
    refused: int = 0  # owners HubSpot refused for good (their executions complete as failed)
    completed: int = 0  # executions completed (items done)
    retry: int = 0  # items left for a later flush
    deferred: int = 0  # of which, items for a contact already in this batch: free at once
    calls: int = 0  # HubSpot API calls made
    tasks: int = 0  # follow-up tasks created or moved
    stopped: str | None = None  # 401/403: why the flusher must stop
    # The owner writes that ended, by outbox item (= log record) id: None written, else why
    # HubSpot refused it for good.
    owners: dict[int, CrmError | None] = field(default_factory=dict)

    def describe(self) -> str:
        text = (
            f"{self.claimed} claimed, {self.written} owners written, {self.refused} refused, "
            f"{self.completed} completed, {self.retry} to retry, {self.calls} API calls"
        )
        return f"{text}; stopped: {self.stopped}" if self.stopped else text


def flush_once(
    store: Store,
    api: HubSpotApi,
    clock: Callable[[], datetime],
    follow_up: FollowUp | None = None,
) -> FlushResult:
    """Claim up to 100 outbox items, write their owners, make their follow-up tasks (one
    batch create per 100, with ``follow_up``), complete their executions with the task ids.

    ``clock`` is read at the claim and after each call (back-offs count from then)."""
    now = clock()
    items = store.outbox_claim(min(BATCH_LIMIT, CALLBACK_BATCH_LIMIT), LEASE, now)
    result = FlushResult(claimed=len(items))
    if not items:
        return result
    changes: dict[int, OutboxChange] = {}
    ready = _write_owners(store, api, items, clock, result, changes)
    if result.stopped is None and ready and follow_up is not None:
        ready = _follow_up(follow_up, api, ready, clock, result, changes)
    if result.stopped is None and ready:
        done = _complete(api, ready, clock, result, changes)
    else:
        done = set()
        for item_id in ready:  # the owner is written: only the completion is left to do
            changes.setdefault(item_id, {"payload": ready[item_id]})
    result.completed = len(done)
    result.retry = len(items) - len(done)
    store.outbox_update(done, clock(), changes)
    return result


def _write_owners(
    store: Store,
    api: HubSpotApi,
    items: Mapping[int, OutboxItem],
    clock: Callable[[], datetime],
    result: FlushResult,
    changes: dict[int, OutboxChange],
) -> dict[int, dict[str, Any]]:
    """Write the owners the items still need; the payloads now ready to complete, by id."""
    now = clock()
    ready: dict[int, dict[str, Any]] = {}
    # (object kind, record id) -> item id: one write per record a call.
    to_write: dict[tuple[str, str], int] = {}
    for item_id, item in items.items():
        payload = item["payload"]
        record = (str(payload.get("object_type") or "contact"), str(payload["contact_id"]))
        if not payload.get("owner_id"):
            ready[item_id] = payload
        elif record in to_write:
            # Two executions for one record: the later decision is written next flush,
            # so HubSpot ends with the newest owner and a batch never names a record twice.
            changes[item_id] = {"retry_at": stamp(now), "error": "waits for contact"}
            result.deferred += 1
        else:
            to_write[record] = item_id
    if not to_write:
        return ready
    outcome: dict[tuple[str, str], CrmError | None] = {}
    for kind in dict.fromkeys(k for k, _ in to_write):  # one batch/update per object type
        owners = [(c, str(items[i]["payload"]["owner_id"])) for (k, c), i in to_write.items()
                  if k == kind]  # fmt: skip
        written = _set_owners(api, owners, result, kind)
        outcome.update({(kind, c): error for c, error in written.items()})
    now = clock()
    writebacks: dict[int, tuple[WritebackStatus, str]] = {}
    final: set[int] = set()
    for (kind, contact), item_id in to_write.items():
        item, error = items[item_id], outcome.get((kind, contact))
        payload = item["payload"]
        if error is None:
            result.written += 1
            result.owners[item_id] = None
            writebacks[item_id] = ("written", "")
            ready[item_id] = {**payload, "owner_id": None, "owner_written": True}
        elif error.setup:
            result.stopped = str(error)
            changes[item_id] = {"error": str(error), "retry_at": stamp(now)}
        elif not error.retryable:
            result.refused += 1
            result.owners[item_id] = error
            log.warning(
                "callback %s: HubSpot refused owner %s for %s %s: %s; completing it as "
                "failed", payload["callback_id"], payload["owner_id"], kind, contact, error,
            )  # fmt: skip
            writebacks[item_id], final = ("failed", str(error)), final | {item_id}
            fields = failed_write_fields(payload["output_fields"], error)
            ready[item_id] = {**payload, "owner_id": None, "output_fields": fields}
        else:
            writebacks[item_id] = ("failed", str(error))
            changes[item_id] = _retry(item, error, now)
    if writebacks:
        store.set_writebacks(writebacks, now, final=final)
    return ready


def _follow_up(
    follow_up: FollowUp,
    api: HubSpotApi,
    ready: dict[int, dict[str, Any]],
    clock: Callable[[], datetime],
    result: FlushResult,
    changes: dict[int, OutboxChange],
) -> dict[int, dict[str, Any]]:
    """The ready payloads with their task ids in the output fields; an item whose task failed
    in a way a retry can fix stays in the outbox (its owner is written: only the task and the
    completion are left), so an execution never completes before its task exists."""
    owned = {i: p for i, p in ready.items() if p.get("owner_written") and p.get("task_lead")}
    if not owned:
        return ready
    try:
        outcomes = dict(follow_up(api, owned))
    except CrmError as exc:
        outcomes = {i: TaskOutcome("failed", None, exc) for i in owned}
    made = [o for o in outcomes.values() if o.status in ("created", "moved", "failed")]
    result.tasks += sum(o.status in ("created", "moved") for o in made)
    result.calls += 1 if made else 0
    still = dict(ready)
    for item_id, outcome in outcomes.items():
        payload = ready[item_id]
        if outcome.retry:
            del still[item_id]
            error = outcome.error or CrmError("another flush makes this task", retryable=True)
            changes[item_id] = {"payload": payload, **_retry_change(0, error, clock())}
            continue
        failure = str(outcome.error) if outcome.error is not None else None
        fields = with_task(payload["output_fields"], outcome.task_id, failure)
        still[item_id] = {**payload, "output_fields": fields}
    return still


def _set_owners(
    api: HubSpotApi, owners: list[tuple[str, str]], result: FlushResult, kind: str = "contact"
) -> dict[str, CrmError | None]:
    """``api.set_owners``; a batch HubSpot refuses whole (a 400 for one bad input, where a 207
    would name it) is split in halves until the bad inputs stand alone, so the others are
    still written: a few more calls, never a good contact failed."""
    outcome = api.set_owners(owners, api.deadline(), kind)
    result.calls += 1
    errors = {id(error) for error in outcome.values() if error is not None}
    first = next(iter(outcome.values()), None)
    whole = len(errors) == 1 and len(owners) > 1 and first is not None
    if not whole or first is None or first.retryable or first.setup or first.status != 400:
        return outcome
    middle = len(owners) // 2
    return {
        **_set_owners(api, owners[:middle], result, kind),
        **_set_owners(api, owners[middle:], result, kind),
    }


def _complete(
    api: HubSpotApi,
    ready: Mapping[int, dict[str, Any]],
    clock: Callable[[], datetime],
    result: FlushResult,
    changes: dict[int, OutboxChange],
) -> set[int]:
    """Complete the ready executions in one call; the item ids now done."""
    completions = [(str(p["callback_id"]), _fields(p["output_fields"])) for p in ready.values()]
    try:
        api.complete_callbacks(completions, api.deadline())
        result.calls += 1
        return set(ready)
    except CrmError as exc:
        result.calls += 1
        error = exc
    if error.setup:
        result.stopped = str(error)
    elif not error.retryable and len(ready) > 1:
        # One callback HubSpot no longer knows (expired) must not hold back the others.
        return _complete_one_by_one(api, ready, clock, result, changes)
    elif not error.retryable:
        (item_id,) = ready
        log.error("callback %s: HubSpot refused its completion for good: %s",
                  ready[item_id]["callback_id"], error)  # fmt: skip
        return {item_id}
    for item_id, payload in ready.items():
        changes[item_id] = {"payload": payload, **_retry_change(0, error, clock())}
    return set()


def _complete_one_by_one(
    api: HubSpotApi,
    ready: Mapping[int, dict[str, Any]],
    clock: Callable[[], datetime],
    result: FlushResult,
    changes: dict[int, OutboxChange],
) -> set[int]:
    done: set[int] = set()
    for item_id, payload in ready.items():
        done |= _complete(api, {item_id: payload}, clock, result, changes)
        if result.stopped:
            break
    for item_id, payload in ready.items():
        if item_id not in done:
            changes.setdefault(item_id, {"payload": payload})
    return done


def _fields(fields: Mapping[str, Any]) -> dict[str, str]:
    # HubSpot's completion takes output fields as text.
    return {name: "" if value is None else str(value) for name, value in fields.items()}


def _retry(item: OutboxItem, error: CrmError, now: datetime) -> OutboxChange:
    return _retry_change(item["attempts"], error, now)


def _retry_change(attempts: int, error: CrmError, now: datetime) -> OutboxChange:
    """Free again once the pause ends, the budget has a token, or after a back-off."""
    if isinstance(error, PausedError):
        at = error.pause.until
    elif isinstance(error, BudgetExhausted):
        at = now + timedelta(seconds=error.retry_after)
    else:
        at = now + timedelta(seconds=min(2.0**attempts, MAX_BACKOFF))
    return {"retry_at": stamp(max(at, now)), "error": str(error)}
