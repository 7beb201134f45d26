"""HubSpot contacts in the common model: which properties to ask for, and how to read them.

Pure translation: nothing here talks to HubSpot except ``check_warnings``, which asks the API
(through ``adapters.hubspot.client``) only when credentials are present. The property set is
derived from app.yaml's rules so the action definition, the contact read and the ``Lead`` all
agree on what routing needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from workflows.config import Config
from workflows.model import Lead

# Environment variables (secrets never live in app.yaml).
CLIENT_SECRET_ENV = "HUBSPOT_CLIENT_SECRET"
ACCESS_TOKEN_ENV = "HUBSPOT_ACCESS_TOKEN"
DEVELOPER_KEY_ENV = "HUBSPOT_DEVELOPER_API_KEY"
API_BASE_ENV = "HUBSPOT_API_BASE"

OWNER_PROPERTY = "hubspot_owner_id"
COMPANY_PROPERTY = "associatedcompanyid"  # the contact's primary company

# Common-model field -> the contact property it is read from.
CONTACT_PROPERTY: dict[str, str] = {
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
}
# Read for every contact: the current owner decides "keep or reassign"; the email feeds the log
# and sticky routing.
ALWAYS_READ = ("email", OWNER_PROPERTY)


def _fields_in(spec: Any) -> Iterator[str]:
    """Every field a ``when:`` spec compares, through ``all``/``any``/``not``."""
    if not isinstance(spec, Mapping):
        return
    for key, value in spec.items():
        if key in ("all", "any") and isinstance(value, (list, tuple)):
            for item in value:
                yield from _fields_in(item)
        elif key == "not":
            yield from _fields_in(value)
        else:
            yield str(key)


def referenced_fields(config: Config) -> set[str]:
    """Lead fields (and ``raw.<property>`` names) that routing with ``config`` can read."""
    fields: set[str] = set()
    rules = list(config.flow.rules)
    while rules:
        rule = rules.pop()
        fields.update(_fields_in(rule.when))
        if rule.flow is not None:
            rules.extend(rule.flow.rules)
    for target in config.targets():
        if target.kind == "account_owner":
            fields.add("account_owner")
        elif target.kind == "previous_owner":
            fields.add("email")  # sticky routing looks the email and its domain up
    return fields


def needs_account_owner(config: Config) -> bool:
    """Whether any rule or target reads the owner of the contact's company."""
    return "account_owner" in referenced_fields(config)


def contact_properties(config: Config) -> list[str]:
    """Exactly the contact properties routing needs, sorted (objectRequestOptions, reads)."""
    props = set(ALWAYS_READ)
    for name in referenced_fields(config):
        if name.startswith("raw."):
            props.add(name[4:])
        elif name in CONTACT_PROPERTY:
            props.add(CONTACT_PROPERTY[name])
    return sorted(props)


@dataclass(frozen=True)
class ContactNeeds:
    """What routing with one config reads from a contact; built once, since flows can be long."""

    properties: tuple[str, ...]
    account_owner: bool

    @classmethod
    def of(cls, config: Config) -> ContactNeeds:
        return cls(tuple(contact_properties(config)), needs_account_owner(config))

    def missing(self, properties: Mapping[str, Any]) -> list[str]:
        """Needed properties HubSpot did not send (an empty value counts as sent).

        HubSpot sends what the registered definition asked for; anything missing means app.yaml
        references more than the definition did (re-run ``leadrelay hubspot register``).
        """
        return [name for name in self.properties if name not in properties]


def lead_from_contact(
    contact_id: str,
    properties: Mapping[str, Any],
    account_owner: str | None = None,
    account_owner_missing: str | None = None,
) -> Lead:
    """A HubSpot contact as a ``Lead``; every property is also kept under ``raw``.

    ``account_owner_missing`` says why there is no account owner (``company 77 not found``).
    """
    data: dict[str, Any] = {"id": str(contact_id), "crm": "hubspot", "object_type": "contact"}
    for field, prop in CONTACT_PROPERTY.items():
        if field not in ("domain", "account_owner") and prop in properties:
            data[field] = properties[prop]
    data["account_owner"] = account_owner
    data["raw"] = dict(properties)
    lead = Lead.from_dict(data)
    lead.account_owner_missing = None if account_owner else account_owner_missing
    return lead
