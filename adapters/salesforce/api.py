"""The calls leadrelay makes to Salesforce: write owners back onto Leads, list users.

Each takes a signed-in ``simple_salesforce.Salesforce`` (see ``adapters.salesforce.auth``)
and turns every failure into leadrelay's ``CrmError``, so callers handle one exception type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from simple_salesforce.api import Salesforce

from adapters.salesforce.auth import SalesforceConnection
from adapters.salesforce.errors import CALL_ERRORS, RETRYABLE_CODES, crm_error
from adapters.salesforce.ids import is_id, is_user_id
from adapters.salesforce.objects import written_as
from workflows.delivery import OwnerWriter
from workflows.errors import CrmError
from workflows.model import Decision, Lead

COLLECTION_LIMIT = 200  # records per sObject Collections call, Salesforce's maximum


def owner_writer(connection: SalesforceConnection) -> OwnerWriter:
    """The ``write`` that ``workflows.delivery.deliver`` calls, over a shared connection.

    Signing in happens on the first write; a failed sign-in raises CrmError, which fails
    the whole batch (to be retried on the CRM's next delivery).
    """
    chunk_size = connection.chunk_size or COLLECTION_LIMIT

    def write(batch: Sequence[tuple[Lead, Decision]]) -> dict[str, CrmError | None]:
        return connection.call(lambda sf: write_owners(sf, batch, chunk_size=chunk_size))

    return write


def write_owners(
    sf: Salesforce,
    batch: Sequence[tuple[Lead, Decision]],
    *,
    chunk_size: int = COLLECTION_LIMIT,
) -> dict[str, CrmError | None]:
    """Set OwnerId on each record; answer per record id (None: written). Never raises CrmError.

    One record is one sObject update (``sobjects/<Type>/<Id>``); more go through sObject
    Collections with allOrNone false, ``chunk_size`` records a call, each record naming its
    own ``attributes.type`` (a call may mix Leads, Cases...), so one bad record does not fail
    the others. When a
    whole call fails (an outage), the records not yet sent are not tried and fail with it.
    The session must carry ``Sforce-Auto-Assign: FALSE`` (see ``salesforce_auth``).
    """
    if not 1 <= chunk_size <= COLLECTION_LIMIT:
        raise ValueError(f"chunk_size must be 1 to {COLLECTION_LIMIT}")
    results, sendable = split_sendable(batch)
    if len(sendable) == 1:
        lead, owner = sendable[0]
        sobject = written_as(lead.object_type, lead.id).sobject
        try:
            # Through restful, not sf.Lead.update: SFType re-signs in without a retry limit.
            sf.restful(f"sobjects/{sobject}/{lead.id}", method="PATCH", json={"OwnerId": owner})
        except CALL_ERRORS as exc:
            return {**results, lead.id: crm_error(exc, f"updating {sobject} {lead.id}")}
        return {**results, lead.id: None}
    for start in range(0, len(sendable), chunk_size):
        chunk = sendable[start : start + chunk_size]
        body = owner_collection(chunk)
        try:
            answers = sf.restful("composite/sobjects", method="PATCH", json=body)
        except CALL_ERRORS as exc:
            error = crm_error(exc, f"updating {len(chunk)} records")
            results.update({lead.id: error for lead, _ in sendable[start:]})
            break
        results.update(record_results([lead for lead, _ in chunk], answers))
    return results


def split_sendable(
    batch: Sequence[tuple[Lead, Decision]],
) -> tuple[dict[str, CrmError | None], list[tuple[Lead, str]]]:
    """The owners that can be sent (lead, user id), and why each other one cannot."""
    results: dict[str, CrmError | None] = {}
    sendable: list[tuple[Lead, str]] = []
    for lead, decision in batch:
        owner = decision.owner_crm_id
        # Ids go into the URL path: never send one that is not a plain Salesforce id. A queue
        # (00G) owns only a lead a queue target parked there; a rep is always a user (005).
        owner_ok = is_id(owner, "00G") if decision.outcome == "queued" else is_user_id(owner)
        if owner_ok and is_id(lead.id):
            sendable.append((lead, str(owner)))
        elif decision.outcome == "queued":
            results[lead.id] = CrmError(
                f"cannot write owner {owner!r} to lead {lead.id!r}: not a Salesforce queue id"
                f" (give queue {decision.queue!r} a salesforce id, 00G..., in app.yaml)",
                retryable=False,
            )
        else:
            fix = (
                "a queue is not a rep: name it under queues: and assign {queue: <name>}"
                if is_id(owner, "00G")
                else f"give rep {decision.rep_id!r} a salesforce_user_id in app.yaml"
            )
            results[lead.id] = CrmError(
                f"cannot write owner {owner!r} to lead {lead.id!r}: not a Salesforce user id"
                f" ({fix})",
                retryable=False,
            )
    return results, sendable


def owner_collection(chunk: Sequence[tuple[Lead, str]]) -> dict[str, Any]:
    """The sObject Collections body that sets OwnerId on each record of ``chunk``, each
    naming its own type (a call may mix Leads, Cases...)."""
    return {
        "allOrNone": False,
        "records": [
            {
                "attributes": {"type": written_as(lead.object_type, lead.id).sobject},
                "Id": lead.id,
                "OwnerId": owner,
            }
            for lead, owner in chunk
        ],
    }


def record_results(chunk: list[Lead], answers: Any) -> dict[str, CrmError | None]:
    # One result per record, in the order sent; per-record errors carry "statusCode".
    answers = answers if isinstance(answers, list) else []
    results: dict[str, CrmError | None] = {}
    for index, lead in enumerate(chunk):
        answer = answers[index] if index < len(answers) else None
        if not isinstance(answer, dict):
            results[lead.id] = CrmError("Salesforce sent no result for this record", retryable=True)
        elif answer.get("success") is True:
            results[lead.id] = None
        else:
            errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)] or [{}]
            code = str(errors[0].get("statusCode") or errors[0].get("errorCode") or "UNKNOWN")
            text = "; ".join(str(e.get("message", "")) for e in errors)
            results[lead.id] = CrmError(
                f"Salesforce refused {lead.object_type} {lead.id}: {code}: {text}",
                retryable=code in RETRYABLE_CODES,
            )
    return results


@dataclass(frozen=True)
class SalesforceUser:
    """An active Salesforce user an admin can name as a rep's ``salesforce_user_id``."""

    id: str
    email: str
    name: str
    username: str


# Standard users only: Chatter, portal and automated users cannot own leads in most orgs.
USERS_SOQL = (
    "SELECT Id, Name, Email, Username FROM User "
    "WHERE IsActive = true AND UserType = 'Standard' ORDER BY Name"
)


def list_users(sf: Salesforce) -> list[SalesforceUser]:
    """Active standard users, every page of them; CrmError when Salesforce fails."""
    try:
        return [
            SalesforceUser(
                str(row["Id"]),
                row.get("Email") or "",
                row.get("Name") or "",
                row.get("Username") or "",
            )
            for row in sf.query_all_iter(USERS_SOQL)
        ]
    except CALL_ERRORS as exc:
        raise crm_error(exc, "listing users") from None
