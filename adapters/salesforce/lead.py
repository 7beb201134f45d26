"""Salesforce: Lead fields into leadrelay's ``Lead``, Salesforce ids, and `leadrelay check`.

Everything here is pure: ``lead_from_fields`` reads the field names Salesforce uses in both an
Outbound Message and a Flow's JSON. The calls that touch Salesforce live in
``adapters.salesforce.api``; signing in lives in ``adapters.salesforce.auth``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.salesforce.ids import is_id, is_user_id
from workflows.errors import LeadError
from workflows.model import Lead

# Salesforce Lead field -> leadrelay Lead field. Every other field is kept in ``raw`` under its
# Salesforce name, so rules can read it as ``raw.Rating`` or ``raw.Language__c``.
LEAD_FIELDS = {
    "Id": "id",
    "OwnerId": "owner",
    "Email": "email",
    "FirstName": "first_name",
    "LastName": "last_name",
    "Company": "company",
    "Country": "country",
    "State": "state",
    "PostalCode": "postal_code",
    "Industry": "industry",
    "NumberOfEmployees": "employees",
    "AnnualRevenue": "annual_revenue",
    "LeadSource": "source",
    "Status": "status",
    "CreatedDate": "created_at",
}
_SALESFORCE_NAME = {ours: theirs for theirs, ours in LEAD_FIELDS.items()}


# -- translation ----------------------------------------------------------------------------
def lead_from_fields(fields: Mapping[str, Any]) -> Lead:
    """A Salesforce Lead's fields (API names; None or "" when empty) as a leadrelay Lead."""
    data: dict[str, Any] = {"crm": "salesforce", "object_type": "lead"}
    raw: dict[str, Any] = {}
    for name, value in fields.items():
        if name in LEAD_FIELDS:
            data[LEAD_FIELDS[name]] = value
        else:
            raw[name] = value
    lead_id = data.get("id")
    if not lead_id:
        raise LeadError("Id", "the Lead's Id is required")
    if not is_id(str(lead_id), "00Q"):
        raise LeadError("Id", f"not a Lead id (15 or 18 characters starting 00Q): {lead_id!r}")
    try:
        return Lead.from_dict({**data, "raw": raw})
    except LeadError as exc:
        # Name the field as the admin knows it (NumberOfEmployees, not employees).
        detail = str(exc).split(": ", 1)[-1]
        field = _SALESFORCE_NAME.get(exc.field, exc.field.removeprefix("raw."))
        raise LeadError(field, detail) from None


def keep_reason(lead: Lead, reassign_user_owned: bool) -> str | None:
    """Why a lead keeps its owner: a user already owns it (queues are routed)."""
    if reassign_user_owned or not is_user_id(lead.owner):
        return None
    return f"owned by user {lead.owner}; leadrelay does not reassign"
