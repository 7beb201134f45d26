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

from adapters.hubspot.objects import COMPANY_PROPERTY as COMPANY_PROPERTY
from adapters.hubspot.objects import CONTACT, HubSpotObject, hubspot_object, lead_from_object
from adapters.hubspot.objects import OWNER_PROPERTY as OWNER_PROPERTY
from workflows.config import Config
from workflows.model import Lead

# Environment variables (secrets never live in app.yaml).
CLIENT_SECRET_ENV = "HUBSPOT_CLIENT_SECRET"
ACCESS_TOKEN_ENV = "HUBSPOT_ACCESS_TOKEN"
DEVELOPER_KEY_ENV = "HUBSPOT_DEVELOPER_API_KEY"
API_BASE_ENV = "HUBSPOT_API_BASE"

# Common-model field -> the contact property it is read from (the other objects: ``objects``).
CONTACT_PROPERTY: dict[str, str] = dict(CONTACT.properties)
# Read for every contact: the current owner decides "keep or reassign"; the email feeds the log
# and sticky routing.
ALWAYS_READ = CONTACT.always


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


def _object_kinds(spec: Any) -> frozenset[str] | None:
    """The object kinds a ``when:`` spec admits by a top-level ``object: deal`` (or a list, or
    ``{in: [...]}``), or None when it admits any."""
    if not isinstance(spec, Mapping):
        return None
    for key in ("object", "object_type"):
        value = spec.get(key)
        if isinstance(value, Mapping):
            value = value.get("eq", value.get("in"))
        if isinstance(value, str):
            return frozenset({value.strip().casefold()})
        if isinstance(value, (list, tuple)):
            return frozenset(str(v).strip().casefold() for v in value)
    return None


def referenced_fields(config: Config, kind: str | None = None) -> set[str]:
    """Lead fields (and ``raw.<property>`` names) that routing with ``config`` can read; with
    ``kind``, leaving out rules (and their sub-flows) that say ``object:`` another kind, so a
    deal's read never asks for a ticket's ``raw.hs_ticket_priority``."""
    fields: set[str] = set()
    rules = list(config.flow.rules)
    while rules:
        rule = rules.pop()
        kinds = _object_kinds(rule.when)
        if kind is not None and kinds is not None and kind not in kinds:
            continue
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
    return CONTACT.read_properties(referenced_fields(config, "contact"))


def object_properties(config: Config, kind: str) -> list[str]:
    """Exactly the properties routing needs from a record of ``kind`` (``deal``), sorted."""
    return hubspot_object(kind).read_properties(referenced_fields(config, kind))


@dataclass(frozen=True)
class ContactNeeds:
    """What routing with one config reads from a record (a contact unless ``kind`` says
    otherwise); built once per kind, since flows can be long. The account owner (the
    associated company's owner) is read for contacts only."""

    properties: tuple[str, ...]
    account_owner: bool
    kind: str = "contact"

    @classmethod
    def of(cls, config: Config, kind: str = "contact") -> ContactNeeds:
        account = kind == "contact" and needs_account_owner(config)
        return cls(tuple(object_properties(config, kind)), account, kind)

    @property
    def object(self) -> HubSpotObject:
        return hubspot_object(self.kind)

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
    return lead_from_object(CONTACT, contact_id, properties, account_owner, account_owner_missing)
