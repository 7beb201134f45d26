"""The HubSpot objects leadrelay routes: contacts, companies, deals and tickets.

One table: for each kind, the ``objectType`` a workflow execution names, the path of its CRM
API (``crm/v3/objects/<path>``), the properties the common model's fields are read from, and
whether the SLA sweep can tell that someone contacted it. Every object's owner is
``hubspot_owner_id``; every other property reaches rules as ``raw.<property>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workflows.model import Lead

OWNER_PROPERTY = "hubspot_owner_id"
COMPANY_PROPERTY = "associatedcompanyid"  # the contact's primary company


@dataclass(frozen=True)
class HubSpotObject:
    """One kind of HubSpot record as leadrelay reads and writes it."""

    kind: str  # Lead.object_type, and what rules compare (``object: deal``)
    type_id: str  # the execution request's ``object.objectType`` and the definition's
    path: str  # crm/v3/objects/<path>
    properties: Mapping[str, str]  # common-model field -> the property it is read from
    always: tuple[str, ...]  # read for every record: the owner, and what the log shows
    # Whether ``hubspot.contacted_properties`` (Last Contacted, last sales activity) exist on
    # it: HubSpot keeps them on contacts, companies and deals, not on tickets.
    contacted: bool
    lead_status: bool  # whether it has ``hs_lead_status`` (contacts and companies)

    def read_properties(self, fields: set[str]) -> list[str]:
        """Exactly the properties routing reads from this kind, given the rules' ``fields``
        (common-model names and ``raw.<property>``), sorted."""
        props = set(self.always)
        for name in fields:
            if name.startswith("raw."):
                props.add(name[4:])
            elif name in self.properties:
                props.add(self.properties[name])
        return sorted(props)


_COMMON = {"owner": OWNER_PROPERTY, "created_at": "createdate"}
CONTACT = HubSpotObject(
    kind="contact",
    type_id="CONTACT",
    path="contacts",
    properties={
        "email": "email",
        "domain": "email",  # Lead derives the domain from the email
        "first_name": "firstname",
        "last_name": "lastname",
        "company": "company",
        "country": "country",
        "state": "state",
        "postal_code": "zip",
        "industry": "industry",
        "employees": "numemployees",  # a range such as "25-50"; Lead reads its lower bound
        "annual_revenue": "annualrevenue",
        "score": "hubspotscore",
        "source": "hs_analytics_source",
        "status": "hs_lead_status",
        "language": "hs_language",
        "owner": OWNER_PROPERTY,
        "account_owner": COMPANY_PROPERTY,  # the owner itself is read from the company
        "created_at": "createdate",
    },
    # The current owner decides "keep or reassign"; the email feeds the log and sticky routing.
    always=("email", OWNER_PROPERTY),
    contacted=True,
    lead_status=True,
)
COMPANY = HubSpotObject(
    kind="company",
    type_id="COMPANY",
    path="companies",
    properties={
        "company": "name",
        "domain": "domain",
        "country": "country",
        "state": "state",
        "postal_code": "zip",
        "industry": "industry",
        "employees": "numberofemployees",
        "annual_revenue": "annualrevenue",
        "source": "hs_analytics_source",
        "status": "hs_lead_status",
        **_COMMON,
    },
    always=("domain", "name", OWNER_PROPERTY),
    contacted=True,
    lead_status=True,
)
DEAL = HubSpotObject(
    kind="deal",
    type_id="DEAL",
    path="deals",
    # amount, pipeline, dealname...: raw.amount, raw.pipeline, raw.dealname
    properties={"status": "dealstage", **_COMMON},
    always=("dealname", OWNER_PROPERTY),
    contacted=True,
    lead_status=False,
)
TICKET = HubSpotObject(
    kind="ticket",
    type_id="TICKET",
    path="tickets",
    # hs_pipeline, hs_ticket_priority, subject...: raw.hs_ticket_priority and so on
    properties={"status": "hs_pipeline_stage", "source": "source_type", **_COMMON},
    always=("subject", OWNER_PROPERTY),
    contacted=False,
    lead_status=False,
)
OBJECTS: dict[str, HubSpotObject] = {o.kind: o for o in (CONTACT, COMPANY, DEAL, TICKET)}
BY_TYPE_ID: dict[str, HubSpotObject] = {o.type_id: o for o in OBJECTS.values()}


def hubspot_object(kind: str) -> HubSpotObject:
    """The object of ``Lead.object_type`` ``kind``; LookupError names the kinds there are."""
    try:
        return OBJECTS[kind]
    except KeyError:
        raise LookupError(f"no HubSpot object {kind!r} (one of {', '.join(OBJECTS)})") from None


def written_as(kind: str) -> HubSpotObject:
    """The object a record of ``kind`` is written to: a lead of no HubSpot kind (one made by
    hand, whose ``object_type`` is the model's default) is a contact, as before objects."""
    return OBJECTS.get(kind, CONTACT)


def no_signal_reason(kind: str) -> str | None:
    """Why the sweep cannot judge first touch on records of ``kind``, or None when it can."""
    found = OBJECTS.get(kind)
    if found is None:
        return f"leadrelay does not read HubSpot {kind} records"
    if found.contacted:
        return None
    return (
        f"HubSpot {found.path} have no contacted signal (no Last Contacted or last activity "
        "property), so first touch cannot be checked"
    )


def lead_from_object(
    obj: HubSpotObject,
    object_id: str,
    properties: Mapping[str, Any],
    account_owner: str | None = None,
    account_owner_missing: str | None = None,
) -> Lead:
    """A HubSpot record as a ``Lead``; every property is also kept under ``raw``.

    ``account_owner_missing`` says why there is no account owner (``company 77 not found``).
    """
    data: dict[str, Any] = {"id": str(object_id), "crm": "hubspot", "object_type": obj.kind}
    for field, prop in obj.properties.items():
        if field not in ("domain", "account_owner") and prop in properties:
            data[field] = properties[prop]
    if "domain" in obj.properties and obj.properties["domain"] != "email":
        data["domain"] = properties.get(obj.properties["domain"])
    data["account_owner"] = account_owner
    data["raw"] = dict(properties)
    lead = Lead.from_dict(data)
    lead.account_owner_missing = None if account_owner else account_owner_missing
    return lead
