"""``POST /salesforce/outbound``: Salesforce Outbound Messages in, owners written, SOAP ack out.

Outbound Messages carry no signature. What protects this endpoint: the organization id must
be in ``salesforce.org_ids``, and when ``LEADRELAY_OUTBOUND_TOKEN`` is set the URL must carry
it as ``?token=``. HTTPS and Salesforce's IP ranges are the deployment's job.

Salesforce retries a message until it is acknowledged, so the ack is sent only when every
notification is durably recorded and written; otherwise a SOAP fault makes Salesforce retry,
and ``deliver`` redoes only what is left (never rotating twice).
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

from flask import Blueprint, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from adapters.salesforce.ids import id_in
from adapters.salesforce.lead import keep_reason
from adapters.salesforce.outbound_message import ACK, parse_outbound_message, soap_fault
from connector.request_body import read_body
from connector.salesforce_shared import (
    salesforce_tasks,
    salesforce_writer,
    secret_matches,
    with_account_owners,
)
from connector.shared import leadrelay
from workflows.delivery import Delivery, Inbound, deliver
from workflows.errors import CrmError, LeadError

blueprint = Blueprint("salesforce_outbound", __name__)
log = logging.getLogger("leadrelay.salesforce")

XML = "text/xml; charset=utf-8"
TOKEN_ENV = "LEADRELAY_OUTBOUND_TOKEN"


@blueprint.post("/salesforce/outbound")
def outbound() -> ResponseReturnValue:
    """Verify, parse, route and write back, then acknowledge (or fault so Salesforce retries)."""
    if os.environ.get(TOKEN_ENV) and not secret_matches(request.args.get("token"), TOKEN_ENV):
        return _refuse(403, "wrong or missing token")
    if "xml" not in (request.content_type or "").lower():
        return _refuse(415, "expected an XML body")
    try:
        message = parse_outbound_message(read_body(request))
    except LeadError as exc:
        return _refuse(400, str(exc))
    app = leadrelay()
    if not id_in(message.organization_id, app.config.salesforce.org_ids):
        return _refuse(403, f"organization {message.organization_id} is not allowed")
    entry = request.args.get("entry")
    if entry is not None and not app.config.accepts_entry(entry):
        return _refuse(400, f"entry {entry!r} is not a pool or top-level rule")

    reassign = app.config.salesforce.reassign_user_owned
    inbound = [
        Inbound(
            n.lead,
            f"salesforce:{n.id}",
            keep_reason=keep_reason(n.lead, reassign),
            entry=entry,
        )
        for n in message.notifications
    ]
    try:
        with_account_owners([item.lead for item in inbound if item.keep_reason is None])
    except CrmError as exc:  # nothing routed yet: Salesforce retries the whole message
        log.warning("Salesforce outbound message: reading account owners failed: %s", exc)
        return soap_fault(str(exc)[:500], client=False), 500, {"Content-Type": XML}
    deliveries = deliver(
        app.router,
        inbound,
        datetime.now(UTC),
        source="salesforce",
        write=salesforce_writer(),
        notify=lambda ds: app.notifier.deliveries("assigned", ds),
        tasks=salesforce_tasks(),
    )
    failed = [d for d in deliveries if not d.done]
    if not failed:
        return ACK, 200, {"Content-Type": XML}
    reasons = sorted({_why_not_done(d) for d in failed})
    log.error(
        "Salesforce outbound message from %s: %d of %d leads not written, answering a fault"
        " so Salesforce retries: %s",
        message.organization_id,
        len(failed),
        len(deliveries),
        "; ".join(reasons),
    )
    detail = f"{len(failed)} of {len(deliveries)} leads not written: {reasons[0]}"
    # SOAP 1.1 sends faults with HTTP 500; Salesforce retries the whole message.
    return soap_fault(detail[:500], client=False), 500, {"Content-Type": XML}


def _why_not_done(delivery: Delivery) -> str:
    if delivery.status in ("written", "not_needed") and delivery.task is not None:
        return f"owner written, follow-up task not created: {delivery.task.error or 'in progress'}"
    return str(delivery.error)


@blueprint.errorhandler(RequestEntityTooLarge)
def too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
    return _refuse(413, "message too large")


def _refuse(status: int, reason: str) -> ResponseReturnValue:
    # Nothing was routed. Salesforce shows the fault string in its outbound message queue.
    log.warning("refused Salesforce outbound message from %s: %s", request.remote_addr, reason)
    return soap_fault(reason, client=True), status, {"Content-Type": XML}
