"""``POST /salesforce/route`` for a Flow's HTTP callout, and the OpenAPI file that describes it.

An admin imports ``GET /salesforce/openapi.yaml`` as an External Service and calls the
``routeLead`` action from a Flow, authenticated by a Named Credential that sends
``Authorization: Bearer $LEADRELAY_FLOW_TOKEN``. Errors answer 4xx (or 502 when the owner could
not be written) with ``{"error": ...}``, which the Flow's fault path can show.
"""

from __future__ import annotations

import logging
import reprlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from adapters.salesforce.ids import is_id
from adapters.salesforce.lead import keep_reason, record_from_fields
from adapters.salesforce.objects import BY_PREFIX, SalesforceObject, object_of_id
from connector.json_body import parse_json_body
from connector.request_body import read_body
from connector.salesforce_shared import (
    salesforce_tasks,
    salesforce_writer,
    secret_matches,
    with_account_owners,
)
from connector.shared import leadrelay
from workflows.delivery import Delivery, Inbound, deliver
from workflows.errors import LeadError

blueprint = Blueprint("salesforce_flow", __name__)
log = logging.getLogger("leadrelay.salesforce")

TOKEN_ENV = "LEADRELAY_FLOW_TOKEN"
OPENAPI_FILE = Path(__file__).with_name("salesforce_openapi.yaml")
# Keys of the request that are not Lead fields.
CONTROL_KEYS = ("requestId", "writeBack", "entry", "otherFields")
MAX_REQUEST_ID = 255


@blueprint.post("/salesforce/route")
def route() -> ResponseReturnValue:
    """Route one record (Lead, Contact, Account, Opportunity or Case, known by its Id); write
    its owner back when ``writeBack`` is true; answer the decision."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else None
    if not secret_matches(token, TOKEN_ENV):
        return _error(401, "missing or wrong bearer token (see the Named Credential)")
    if not request.is_json:
        return _error(415, "expected Content-Type: application/json")
    body = parse_json_body(read_body(request))  # LeadError: 400 naming the field
    if not isinstance(body, dict):
        return _error(400, "expected a JSON object with the record's fields")
    call = _read_request(body)
    request_id, write_back, entry = call.request_id, call.write_back, call.entry
    app = leadrelay()
    if entry is not None and not app.config.accepts_entry(entry):
        choices = ", ".join(app.config.entry_points())
        raise LeadError("entry", f"{_short(entry)} is not a pool or top-level rule ({choices})")
    lead = record_from_fields(call.fields, _object(call.fields))  # LeadError: 400 naming it
    for name, value in call.other_fields.items():
        lead.raw.setdefault(name, value)  # a field sent twice: the top-level one wins

    item = Inbound(
        lead,
        f"salesforce-flow:{request_id}" if request_id else "",  # "": no idempotency key
        keep_reason=keep_reason(lead, app.config.salesforce.reassign_user_owned),
        entry=entry,
    )
    if item.keep_reason is None:
        with_account_owners([lead])  # CrmError: 503, nothing routed; the Flow may call again
    (delivery,) = deliver(
        app.router,
        [item],
        datetime.now(UTC),
        source="salesforce-flow",
        write=salesforce_writer() if write_back else None,
        notify=lambda ds: app.notifier.deliveries("assigned", ds),
        # The task follows the owner write: with writeBack false the Flow makes its own.
        tasks=salesforce_tasks() if write_back else None,
    )
    answer = _answer(delivery)
    if delivery.done:
        return jsonify(answer)
    if delivery.status == "in_progress":
        return jsonify({**answer, "error": "the owner is being written; call again"}), 409
    task = delivery.task
    if delivery.status == "written" and task is not None:
        if task.error is None:
            return jsonify({**answer, "error": "the task is being created; call again"}), 409
        log.error("Flow route of %s %s: follow-up task not created: %s", lead.object_type,
                  lead.id, task.error)  # fmt: skip
        # The owner stands; calling again with the same requestId creates only the task.
        return jsonify({**answer, "error": f"follow-up task not created: {task.error}"}), 502
    log.error("Flow route of %s %s: owner not written: %s", lead.object_type, lead.id,
              delivery.error)  # fmt: skip
    # The decision stands; calling again with the same requestId retries only the write.
    return jsonify({**answer, "error": f"owner not written: {delivery.error}"}), 502


@blueprint.get("/salesforce/openapi.yaml")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.0 description an admin imports as an External Service, listing the
    routing entries this app.yaml offers (so the Flow gets a picklist, not free text)."""
    config = leadrelay().config
    document = yaml.safe_load(OPENAPI_FILE.read_text())
    entries = [*config.entry_points(), *config.pools, *(rule.name for rule in config.flow.rules)]
    entry = document["components"]["schemas"]["RouteRequest"]["properties"]["entry"]
    entry["enum"] = list(dict.fromkeys(entries))
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return Response(text, mimetype="application/yaml")


def _object(fields: dict[str, Any]) -> SalesforceObject:
    """The object the Flow sent, known by its record Id's key prefix (00Q a Lead, 500 a Case)."""
    record_id = fields.get("Id")
    if not record_id:
        raise LeadError("Id", "the record's Id is required")
    found = object_of_id(str(record_id))
    if found is None:
        prefixes = ", ".join(f"{p} {o.sobject}" for p, o in BY_PREFIX.items())
        raise LeadError("Id", f"not the id of a record leadrelay routes ({prefixes}): "
                              f"{_short(record_id)}")  # fmt: skip
    return found


@dataclass(frozen=True)
class _RouteRequest:
    request_id: str | None
    write_back: bool
    entry: str | None
    fields: dict[str, Any]  # Lead fields by API name
    other_fields: dict[str, Any]  # otherFields: read by rules as raw.<name>, nothing else


def _read_request(body: dict[str, Any]) -> _RouteRequest:
    request_id = body.get("requestId")
    if request_id is not None and (
        not isinstance(request_id, (str, int)) or isinstance(request_id, bool)
    ):
        raise LeadError("requestId", "expected a string")
    request_id = str(request_id).strip() if request_id is not None else None
    if request_id and len(request_id) > MAX_REQUEST_ID:
        raise LeadError("requestId", f"longer than {MAX_REQUEST_ID} characters")
    write_back = body.get("writeBack")
    if write_back is not None and not isinstance(write_back, bool):
        raise LeadError("writeBack", "expected true or false")
    entry = body.get("entry") or None
    if entry is not None and not isinstance(entry, str):
        raise LeadError("entry", "expected the name of a pool or top-level rule")
    fields = {k: v for k, v in body.items() if k not in CONTROL_KEYS}
    for name, value in fields.items():
        if isinstance(value, (dict, list)):
            raise LeadError(name, "expected a single value")
    others = body.get("otherFields") or []
    if not isinstance(others, list):
        raise LeadError("otherFields", "expected a list of {name, value}")
    other_fields: dict[str, Any] = {}
    for number, pair in enumerate(others):
        if not isinstance(pair, dict) or not isinstance(pair.get("name"), str):
            raise LeadError(f"otherFields[{number}]", "expected {name, value}")
        if isinstance(pair.get("value"), (dict, list)):
            raise LeadError(f"otherFields[{number}].value", "expected a single value")
        other_fields.setdefault(pair["name"], pair.get("value"))
    return _RouteRequest(request_id or None, bool(write_back), entry, fields, other_fields)


def _answer(delivery: Delivery) -> dict[str, Any]:
    decision = delivery.result.decision
    return {
        "leadId": delivery.lead.id,
        "objectType": delivery.lead.object_type,
        # Only a Salesforce id: a rep without salesforce_user_id has none to give the Flow.
        "ownerId": decision.owner_crm_id if is_id(decision.owner_crm_id) else None,
        "rep": decision.rep_id,
        "queue": decision.queue,
        "outcome": decision.outcome,
        "rule": decision.rule,
        "reason": decision.reason,
        "writeStatus": delivery.status,
        "replayed": delivery.result.replayed,
        # The follow-up task app.yaml's ``task:`` made for the owner (None: none made).
        "taskId": delivery.task.task_id if delivery.task is not None else None,
        "taskStatus": delivery.task.status if delivery.task is not None else None,
    }


def _short(value: Any) -> str:
    # A caller's text goes into the answer and the logs: quoted, and cut when long.
    return reprlib.repr(value)


def _error(status: int, message: str) -> ResponseReturnValue:
    return jsonify(error=message), status
