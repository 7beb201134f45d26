"""The workflow action's wire format: HubSpot's execution request in, ``outputFields`` out.

Pure functions over plain data. Every problem with a request raises ``LeadError`` naming the
JSON path (``object.objectId``), which the app answers with 400.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from adapters.hubspot.objects import BY_TYPE_ID
from workflows.config import Config
from workflows.errors import CrmError, LeadError
from workflows.model import Decision

# Input fields of the action definition.
ENTRY_FIELD = "routing_entry"
OVERWRITE_FIELD = "overwrite_owner"
WHOLE_FLOW = "__flow__"  # the option meaning "run the whole flow" (also: absent or empty)
MAX_CALLBACK_ID = 255  # HubSpot's are about 30 characters; the store keeps it as a key
_NUMERIC_ID = re.compile(r"[0-9]{1,20}")
MAX_ID = 2**63 - 1

# Output fields, and the values of ``outcome`` a workflow branches on.
OUTPUT_FIELDS = ("owner_id", "owner_email", "rule", "reason", "outcome", "task_id")
OUTCOMES = {
    "assigned": "A rep was chosen and is now the record's owner (or is in owner_id).",
    "kept": "The record already had an owner and overwrite_owner is off; it keeps that owner.",
    "unassigned": "Nobody could take the record now (all away, at their cap, or off hours).",
    "queued": "A rule parked the record with a queue's holding owner (in owner_id) for reps to"
    " pick up.",
    "failed": "HubSpot refused the owner update (see reason); nothing was changed.",
}


@dataclass(frozen=True)
class ActionRequest:
    """One execution of the action, as much of it as leadrelay uses."""

    callback_id: str
    portal_id: str | None
    contact_id: str  # the record's id, whatever its kind
    properties: dict[str, Any]
    entry: str | None  # a pool or top-level rule; None means the whole flow
    overwrite: bool
    object_type: str = "contact"  # Lead.object_type: contact, company, deal or ticket

    @property
    def idempotency_key(self) -> str:
        # HubSpot may deliver one execution more than once; the callback id names it.
        return f"hubspot:{self.callback_id}"


def _id(value: Any, path: str) -> str:
    # Ids arrive as JSON numbers, sometimes as numeric text. HubSpot ids are signed 64-bit
    # (Java longs); only ASCII digits, since str.isdigit() also accepts "١٢٣", which no
    # HubSpot URL would take.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise LeadError(path, f"expected a numeric id, got {_short(value)}")
    text = str(value).strip()
    if not _NUMERIC_ID.fullmatch(text):
        raise LeadError(path, f"expected a numeric id, got {_short(value)}")
    if int(text) > MAX_ID:
        raise LeadError(path, f"larger than HubSpot's largest id ({MAX_ID}), got {_short(value)}")
    return text


def _short(value: Any) -> str:
    # An attacker's value goes into the answer and the logs: keep it readable.
    return reprlib.repr(value)


def _mapping(value: Any, path: str, required: bool = False) -> Mapping[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        got = "required" if value is None else f"expected an object, got {_short(value)}"
        raise LeadError(path, got)
    return value


def _flag(value: Any, path: str) -> bool:
    # HubSpot sends input values as text: "true" / "false".
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise LeadError(path, f"expected true or false, got {_short(value)}")


def _properties(value: Any) -> dict[str, Any]:
    props = dict(_mapping(value, "object.properties"))
    for name, prop in props.items():
        if prop is not None and not isinstance(prop, (str, int, float, bool)):
            raise LeadError(f"object.properties.{name}", f"expected a value, got {_short(prop)}")
    return props


def parse_action_request(payload: Any, config: Config) -> ActionRequest:
    """Read an execution request; a routing entry must be one app.yaml offers."""
    body = _mapping(payload, "body", required=True)
    callback_id = body.get("callbackId")
    if not isinstance(callback_id, str) or not callback_id.strip():
        raise LeadError("callbackId", f"expected a non-empty string, got {_short(callback_id)}")
    if len(callback_id.strip()) > MAX_CALLBACK_ID:
        raise LeadError("callbackId", f"longer than {MAX_CALLBACK_ID} characters")
    origin = _mapping(body.get("origin"), "origin")
    portal = origin.get("portalId")
    obj = _mapping(body.get("object"), "object", required=True)
    object_type = _object_type(obj.get("objectType", "CONTACT"), config)
    inputs = _mapping(body.get("inputFields"), "inputFields")
    entry = inputs.get(ENTRY_FIELD)
    if entry in (None, "", WHOLE_FLOW):
        entry = None
    elif not isinstance(entry, str) or not config.accepts_entry(entry):
        choices = ", ".join([WHOLE_FLOW, *config.entry_points()])
        got = _short(entry)
        raise LeadError(f"inputFields.{ENTRY_FIELD}", f"unknown entry {got} (one of {choices})")
    return ActionRequest(
        callback_id=callback_id.strip(),
        portal_id=None if portal is None else _id(portal, "origin.portalId"),
        contact_id=_id(obj.get("objectId"), "object.objectId"),
        properties=_properties(obj.get("properties")),
        entry=entry,
        overwrite=_flag(inputs.get(OVERWRITE_FIELD), f"inputFields.{OVERWRITE_FIELD}"),
        object_type=object_type,
    )


def _object_type(value: Any, config: Config) -> str:
    """The kind (``deal``) of an execution's ``objectType`` (``DEAL``), if app.yaml offers it."""
    offered = [kind.upper() for kind in config.hubspot.objects]
    found = BY_TYPE_ID.get(value.strip().upper()) if isinstance(value, str) else None
    if found is None or found.kind not in config.hubspot.objects:
        got = _short(value)
        if found is not None:
            got += " (not in hubspot.objects in app.yaml)"
        raise LeadError("object.objectType", f"expected one of {', '.join(offered)}, got {got}")
    return found.kind


def keep_reason(owner: str | None, config: Config) -> str:
    """Why a contact that has an owner keeps it (overwrite_owner off), naming the owner."""
    rep = config.rep_by_crm_id("hubspot", owner)
    who = f"{rep.id} (owner {owner})" if rep else f"owner {owner}"
    return f"already owned by {who}; overwrite_owner is off"


def output_fields(
    decision: Decision, config: Config, error: CrmError | None = None
) -> dict[str, Any]:
    """The answer's ``outputFields``: SUCCESS when an owner is set or kept, else FAIL_CONTINUE.

    FAIL_CONTINUE lets the workflow go on; branch on ``outcome`` to handle it.
    """
    if error is not None:
        outcome, reason = "failed", f"{error}; routing chose {decision.owner_crm_id}"
    else:
        outcome, reason = decision.outcome, decision.reason
    owned = outcome in ("assigned", "kept", "queued")
    owner = decision.owner_crm_id if owned else None
    rep = config.reps.get(decision.rep_id or "") if owner else None
    state = "SUCCESS" if owned else "FAIL_CONTINUE"
    return {
        "hs_execution_state": state,
        "owner_id": owner or "",
        "owner_email": (rep.email if rep else None) or "",
        "rule": decision.rule,
        "reason": reason,
        "outcome": outcome,
        "task_id": "",  # the follow-up task's id, when app.yaml's ``task:`` made one
    }


def with_task(fields: dict[str, Any], task_id: str | None, failure: str | None) -> dict[str, Any]:
    """``fields`` naming the follow-up task (``task_id``), or saying why it was not made."""
    if failure:
        return {**fields, "reason": f"{fields['reason']}; follow-up task not created: {failure}"}
    return {**fields, "task_id": task_id or ""}


def blocked_fields(expiration: timedelta) -> dict[str, Any]:
    """``outputFields`` that hold the execution until leadrelay completes it (batch mode), or
    until ``expiration`` passes (HubSpot then goes on as its workflow says)."""
    return {"hs_execution_state": "BLOCK", "hs_expiration_duration": iso_duration(expiration)}


def iso_duration(length: timedelta) -> str:
    """``length`` as the ISO-8601 duration HubSpot reads: ``P1D``, ``PT1H30M``, ``PT90S``."""
    seconds = max(int(length.total_seconds()), 1)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return f"P{f'{days}D' if days else ''}{f'T{time}' if time else ''}"


def failed_write_fields(fields: Mapping[str, Any], error: CrmError) -> dict[str, Any]:
    """The decision's ``outputFields`` once HubSpot refused its owner: ``outcome`` failed."""
    chose = fields.get("owner_id") or "no owner"
    return {
        **fields,
        "hs_execution_state": "FAIL_CONTINUE",
        "owner_id": "",
        "owner_email": "",
        "reason": f"{error}; routing chose {chose}",
        "outcome": "failed",
    }


def failure_fields(error: CrmError) -> dict[str, Any]:
    """``outputFields`` when HubSpot refused us before anything was routed (a bad token)."""
    return {
        "hs_execution_state": "FAIL_CONTINUE",
        "owner_id": "",
        "owner_email": "",
        "rule": "",
        "reason": str(error),
        "outcome": "failed",
        "task_id": "",
    }
