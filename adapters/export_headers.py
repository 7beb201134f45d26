"""The column headers of HubSpot's and Salesforce's own exports, as ``Lead`` fields.

``leadrelay simulate`` reads a CSV a CRM exported: HubSpot's export and Salesforce's reports
title columns with field labels (``Country/Region``, ``No. of Employees``); Data Loader and the
APIs with API names (``numemployees``, ``NumberOfEmployees``). The API names come from the
adapters' own maps; only the labels are listed here. Headers match case- and
space-insensitively.
"""

from __future__ import annotations

from adapters.hubspot.contact import CONTACT_PROPERTY
from adapters.salesforce.lead import LEAD_FIELDS as SALESFORCE_FIELDS
from workflows.model import FIELD_ALIASES, LEAD_FIELDS

# Labels as HubSpot's contact export titles its columns (Settings > Properties > Contact).
HUBSPOT_LABELS = {
    "Record ID": "id",
    "Contact ID": "id",
    "Email": "email",
    "First Name": "first_name",
    "Last Name": "last_name",
    "Company Name": "company",
    "Country/Region": "country",
    "State/Region": "state",
    "Postal Code": "postal_code",
    "Industry": "industry",
    "Number of Employees": "employees",
    "Annual Revenue": "annual_revenue",
    "HubSpot Score": "score",
    "Original Source": "source",
    "Original Traffic Source": "source",  # the same property, as newer portals label it
    "Lead Status": "status",
    "Preferred language": "language",
    "Contact owner": "owner",
    "Create Date": "created_at",
}
# Labels of the Lead fields, as Salesforce's reports and list views title them.
SALESFORCE_LABELS = {
    "Lead ID": "id",
    "Lead Owner": "owner",
    "Owner ID": "owner",
    "Company / Account": "company",
    "State/Province": "state",
    "Zip/Postal Code": "postal_code",
    "No. of Employees": "employees",
    "Employees": "employees",
    "Lead Source": "source",
    "Lead Status": "status",
    "Created Date": "created_at",
}


def header_key(header: str) -> str:
    """How headers are compared: case- and space-insensitively."""
    return "".join(header.split()).casefold()


def _known() -> dict[str, str]:
    # The domain is derived from the email and the account owner read from the company, not
    # from a column of that name (HubSpot's associatedcompanyid holds company ids).
    hubspot = {
        prop: field
        for field, prop in CONTACT_PROPERTY.items()
        if field not in ("domain", "account_owner")
    }
    hubspot["hs_object_id"] = "id"
    known: dict[str, str] = {}
    for names in (SALESFORCE_LABELS, HUBSPOT_LABELS, SALESFORCE_FIELDS, hubspot):
        for name, field in names.items():
            known[header_key(name)] = field
    for field in LEAD_FIELDS:  # leadrelay's own names win over any label
        known[header_key(field)] = field
    for alias, field in FIELD_ALIASES.items():
        known[header_key(alias)] = field
    return known


KNOWN_HEADERS = _known()


def lead_field(header: str) -> str | None:
    """The ``Lead`` field a CSV column holds, or None when it is none of them."""
    return KNOWN_HEADERS.get(header_key(header))
