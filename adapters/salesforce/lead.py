"""Salesforce: a record's fields into leadrelay's ``Lead``, and whether its owner is kept.

Everything here is pure: ``record_from_fields`` reads the field names Salesforce uses in both
an Outbound Message and a Flow's JSON, for Leads, Contacts, Accounts, Opportunities and Cases.
The calls that touch Salesforce live in ``adapters.salesforce.api``; signing in lives in
``adapters.salesforce.auth``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.salesforce.ids import is_id, is_user_id
from adapters.salesforce.objects import LEAD, OBJECTS, SalesforceObject
from workflows.errors import LeadError
from workflows.model import Lead

# Salesforce Lead field -> leadrelay Lead field. Every other field is kept in ``raw`` under its
# Salesforce name, so rules can read it as ``raw.Rating`` or ``raw.Language__c``. (Contact,
# Account, Opportunity and Case: ``adapters.salesforce.objects``.)
LEAD_FIELDS = dict(LEAD.fields)


# -- translation ----------------------------------------------------------------------------
def lead_from_fields(fields: Mapping[str, Any]) -> Lead:
    """A Salesforce Lead's fields (API names; None or "" when empty) as a leadrelay Lead."""
    return record_from_fields(fields, LEAD)


def record_from_fields(fields: Mapping[str, Any], obj: SalesforceObject) -> Lead:
    """A Salesforce record's fields (API names; None or "" when empty) as a leadrelay Lead
    whose ``object_type`` is ``obj``'s kind; its Id must be one of ``obj``'s."""
    data: dict[str, Any] = {"crm": "salesforce", "object_type": obj.kind}
    raw: dict[str, Any] = {}
    for name, value in fields.items():
        if name in obj.fields:
            data[obj.fields[name]] = value
        else:
            raw[name] = value
    record_id = data.get("id")
    if not record_id:
        raise LeadError("Id", f"the {obj.sobject}'s Id is required")
    if not is_id(str(record_id), obj.prefix):
        raise LeadError(
            "Id",
            f"not a {obj.sobject} id (15 or 18 characters starting {obj.prefix}): {record_id!r}",
        )
    try:
        return Lead.from_dict({**data, "raw": raw})
    except LeadError as exc:
        # Name the field as the admin knows it (NumberOfEmployees, not employees).
        detail = str(exc).split(": ", 1)[-1]
        raise LeadError(obj.common_name(exc.field), detail) from None


def keep_reason(lead: Lead, reassign_user_owned: bool) -> str | None:
    """Why a lead (or case) keeps its owner: a user already owns it (queues are routed).

    Contacts, accounts and opportunities are always owned by a user (no queue can own them),
    so theirs says nothing: they are always routed."""
    obj = OBJECTS.get(lead.object_type, LEAD)
    if reassign_user_owned or not obj.queue_owned or not is_user_id(lead.owner):
        return None
    return f"owned by user {lead.owner}; leadrelay does not reassign"
