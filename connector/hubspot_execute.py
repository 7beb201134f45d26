"""Execute one workflow action: complete the record, route and write it once, shape the answer.

In ``write_owner: api`` mode HubSpot's API is called at most to read what the request lacks
(normally nothing, or the company owner for account rules) and to set the owner. In ``output``
mode nothing is called: the owner leaves only as the ``owner_id`` output field. In ``batch``
mode the decision puts the owner write and the execution's completion in the store's outbox
(same commit) and the answer is BLOCK, at once: ``connector.hubspot_flusher`` does the rest.
No request waits longer than ``hubspot.budget_wait`` for the API budget: past it, 429.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app, has_app_context

from adapters.hubspot.client import AccountOwner, HubSpotApi
from adapters.hubspot.contact import ContactNeeds
from adapters.hubspot.limits import BudgetExhausted
from adapters.hubspot.objects import lead_from_object
from adapters.hubspot.pause import PausedError
from adapters.hubspot.payload import (
    ActionRequest,
    blocked_fields,
    failure_fields,
    keep_reason,
    output_fields,
    with_task,
)
from adapters.hubspot.tasks import HubSpotTasks
from connector.shared import services_of
from workflows.config import Config
from workflows.delivery import Delivery, Inbound, deliver
from workflows.errors import CrmError
from workflows.follow_up import TaskOutcome, tasks_configured
from workflows.model import OWNER_OUTCOMES, Decision, Lead
from workflows.router import Router

log = logging.getLogger("leadrelay.hubspot")


@dataclass(frozen=True)
class ActionAnswer:
    """The HTTP answer to HubSpot: 200 with outputFields, or 503 so that HubSpot retries."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def hubspot_api(app: Flask, token: str) -> HubSpotApi:
    """The app's HubSpot client for ``token`` (``Services.hubspot_api``: one per process, on
    the budget every process serving the same store shares)."""
    return services_of(app).hubspot_api(token)


def contact_needs(app: Flask, config: Config, kind: str = "contact") -> ContactNeeds:
    """What the app's rules read from a record of ``kind``, worked out once per app."""
    known: dict[str, ContactNeeds] = app.extensions.setdefault("hubspot_needs", {})
    needs = known.get(kind)
    if needs is None:
        needs = known[kind] = ContactNeeds.of(config, kind)
    return needs


def _contact(
    action: ActionRequest, needs: ContactNeeds, api: HubSpotApi | None, deadline: float
) -> Lead:
    properties = dict(action.properties)
    account = AccountOwner(None)
    if needs.kind != "contact":
        account = AccountOwner(None, "account owners are read for HubSpot contacts only")
    if api is not None:
        if needs.missing(properties):
            # The definition predates app.yaml's rules: one read brings every property.
            read = api.read_object(needs.kind, action.contact_id, needs.properties, deadline)
            properties.update(read)
        if needs.account_owner:
            account = api.find_account_owner(properties, deadline)
    return lead_from_object(
        needs.object, action.contact_id, properties, account.owner, account.missing
    )


def execute(
    action: ActionRequest,
    *,
    config: Config,
    needs: ContactNeeds,
    router: Router,
    api: HubSpotApi | None,
    now: datetime,
    on_enqueued: Callable[[], None] | None = None,
) -> ActionAnswer:
    """Route the action's contact under its callback id and answer HubSpot.

    ``api`` is None in ``write_owner: output`` mode: then nothing calls HubSpot. In batch
    mode ``on_enqueued`` is told when a new decision went into the outbox (a flusher's cue).
    """
    deadline = api.deadline() if api is not None else 0.0
    try:
        lead = _contact(action, needs, api, deadline)
    except CrmError as exc:
        return _failed(action, exc, f"reading the {action.object_type}")
    # A queue's holding owner holds the record for someone to pick up: it is routed, as a
    # queue-owned Salesforce lead is.
    held = config.queue_by_crm_id("hubspot", lead.owner) is not None
    owned = lead.owner and not held
    keep = keep_reason(lead.owner, config) if owned and not action.overwrite else None
    batch = config.hubspot.write_owner == "batch"
    outbox = _outbox_payload(action, lead, config) if batch else None
    inbound = Inbound(
        lead, action.idempotency_key, keep_reason=keep, entry=action.entry, outbox=outbox
    )
    write = api.owner_writer(deadline) if api is not None and not batch else None
    # The follow-up task is one more call within the same deadline (batch mode: the flusher).
    tasks = None
    if api is not None and write is not None and tasks_configured(config):
        tasks = HubSpotTasks(api, deadline)
    (delivery,) = deliver(
        router, [inbound], now, source="hubspot", write=write, notify=_notify_assigned(),
        tasks=tasks,
    )  # fmt: skip
    decision = delivery.result.decision
    if batch:
        # A retry of this execution (replayed) answers BLOCK again and enqueues nothing.
        if on_enqueued is not None and not delivery.result.replayed:
            on_enqueued()
        return ActionAnswer(200, {"outputFields": blocked_fields(config.hubspot.batch.expiration)})
    if delivery.status == "in_progress":
        # An earlier delivery of this execution is still writing the owner: HubSpot retries.
        return ActionAnswer(503, {"error": "this execution is being written; retry later"})
    if delivery.status != "failed":
        return _answer_with_task(action, output_fields(decision, config), delivery.task)
    assert delivery.error is not None
    if delivery.error.retryable:
        return _failed(action, delivery.error, "writing the owner")
    log.error(
        "callback %s: HubSpot refused owner %s for %s %s: %s",
        action.callback_id, decision.owner_crm_id, lead.object_type, lead.id, delivery.error,
    )  # fmt: skip
    return ActionAnswer(200, {"outputFields": output_fields(decision, config, delivery.error)})


def _answer_with_task(
    action: ActionRequest, fields: dict[str, Any], task: TaskOutcome | None
) -> ActionAnswer:
    """The answer once the owner is written: with the task's id, or, when the task could not
    be made, 503/429 so that HubSpot retries (the retry makes only the task), or the reason
    saying why when no retry can help."""
    if task is None:
        return ActionAnswer(200, {"outputFields": fields})
    if task.retry:
        if task.error is None:  # another delivery of this execution is making it right now
            return ActionAnswer(503, {"error": "the follow-up task is being made; retry later"})
        return _failed(action, task.error, "creating the follow-up task")
    failure = str(task.error) if task.error is not None else None
    return ActionAnswer(200, {"outputFields": with_task(fields, task.task_id, failure)})


def _outbox_payload(
    action: ActionRequest, lead: Lead, config: Config
) -> Callable[[Decision], dict[str, Any]]:
    """What the flusher needs, made from the decision in the commit that records it: the
    owner to write (None: nothing to write) and the fields to complete the execution with."""

    def payload(decision: Decision) -> dict[str, Any]:
        owner = decision.owner_crm_id
        moves = decision.outcome in OWNER_OUTCOMES
        writes = moves and owner is not None and owner != lead.owner
        return {
            "callback_id": action.callback_id,
            "contact_id": lead.id,
            "object_type": lead.object_type,
            "owner_id": owner if writes else None,
            "output_fields": output_fields(decision, config),
            # What the task's templates read, once the flusher has written the owner.
            **({"task_lead": lead.to_dict()} if with_tasks else {}),
        }

    with_tasks = tasks_configured(config)
    return payload


def _notify_assigned() -> Callable[[Sequence[Delivery]], None] | None:
    # The serving app's notifier (none outside a request, as in unit tests of execute).
    shared = current_app.extensions.get("leadrelay") if has_app_context() else None
    if shared is None:
        return None
    return lambda deliveries: shared.notifier.deliveries("assigned", deliveries)


def _failed(action: ActionRequest, error: CrmError, doing: str) -> ActionAnswer:
    if isinstance(error, BudgetExhausted):
        # HubSpot honours Retry-After on an action's 429: it comes back when a token is free.
        wait = max(1, math.ceil(error.retry_after))
        log.info("callback %s: %s held back: %s", action.callback_id, doing, error)
        body = {"error": f"{error}; HubSpot will retry", "retryAfter": wait}
        return ActionAnswer(429, body, {"Retry-After": str(wait)})
    if isinstance(error, PausedError):
        # The pause was logged once when it began; every callback it holds back is no news.
        # 429 with Retry-After brings HubSpot back when the pause ends; a 503 would leave it
        # to HubSpot's own backoff, which may come back long after.
        log.info("callback %s: %s held back: %s", action.callback_id, doing, error)
        left = (error.pause.until - datetime.now(UTC)).total_seconds()
        wait = max(1, math.ceil(left))
        body = {
            "error": f"{error}; HubSpot will retry",
            "pausedUntil": error.pause.until_text(),
            "retryAfter": wait,
        }
        return ActionAnswer(429, body, {"Retry-After": str(wait)})
    if error.retryable:
        # HubSpot retries 5xx for up to 3 days; the retry writes without deciding again.
        log.warning(
            "callback %s: %s failed, asking HubSpot to retry: %s", action.callback_id, doing, error
        )
        return ActionAnswer(503, {"error": f"{error}; HubSpot will retry"})
    log.error("callback %s: %s failed: %s", action.callback_id, doing, error)
    return ActionAnswer(200, {"outputFields": failure_fields(error)})
