"""The Salesforce objects leadrelay routes: Lead, Contact, Account, Opportunity and Case.

One table: for each, its sObject name (an Outbound Message's ``xsi:type="sf:Case"``, the
collections' ``attributes.type``), the key prefix of its record ids (how the Flow endpoint
knows what it was sent), the fields the common model reads, and what the SLA sweep reads to
tell whether someone got to it. ``OwnerId`` is every one's owner; every other field reaches
rules as ``raw.<Field>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from adapters.salesforce.ids import is_id

_COMMON = {"Id": "id", "OwnerId": "owner", "CreatedDate": "created_at"}


@dataclass(frozen=True)
class SalesforceObject:
    """One kind of Salesforce record as leadrelay reads and writes it."""

    kind: str  # Lead.object_type, and what rules compare (``object: case``)
    sobject: str  # the API name: Lead, Case...
    prefix: str  # the key prefix of its ids: 00Q, 500...
    fields: Mapping[str, str]  # Salesforce field -> common-model field
    # What the sweep reads besides ``fields``: deletion, conversion or closing, activity.
    sweep_fields: tuple[str, ...]
    # Whether a queue can own it (Leads and Cases): only then does an owner that is a user
    # mean someone already has it (``salesforce.reassign_user_owned``).
    queue_owned: bool

    def common_name(self, field: str) -> str:
        """The Salesforce name of a common-model field, for error messages (``employees`` is
        ``NumberOfEmployees``)."""
        for theirs, ours in self.fields.items():
            if ours == field:
                return theirs
        return field.removeprefix("raw.")


LEAD = SalesforceObject(
    kind="lead",
    sobject="Lead",
    prefix="00Q",
    fields={
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
    },
    sweep_fields=("IsConverted", "IsDeleted", "LastActivityDate"),
    queue_owned=True,
)
CONTACT = SalesforceObject(
    kind="contact",
    sobject="Contact",
    prefix="003",
    fields={
        **_COMMON,
        "Email": "email",
        "FirstName": "first_name",
        "LastName": "last_name",
        "MailingCountry": "country",
        "MailingState": "state",
        "MailingPostalCode": "postal_code",
        "LeadSource": "source",
    },
    sweep_fields=("IsDeleted", "LastActivityDate"),
    queue_owned=False,
)
ACCOUNT = SalesforceObject(
    kind="account",
    sobject="Account",
    prefix="001",
    fields={
        **_COMMON,
        "Name": "company",
        "Industry": "industry",
        "NumberOfEmployees": "employees",
        "AnnualRevenue": "annual_revenue",
        "BillingCountry": "country",
        "BillingState": "state",
        "BillingPostalCode": "postal_code",
        "AccountSource": "source",
    },
    sweep_fields=("IsDeleted", "LastActivityDate"),
    queue_owned=False,
)
OPPORTUNITY = SalesforceObject(
    kind="opportunity",
    sobject="Opportunity",
    prefix="006",
    # Amount, Type, AccountId...: raw.Amount, raw.Type, raw.AccountId
    fields={**_COMMON, "StageName": "status", "LeadSource": "source"},
    sweep_fields=("IsDeleted", "IsClosed", "LastActivityDate"),
    queue_owned=False,
)
CASE = SalesforceObject(
    kind="case",
    sobject="Case",
    prefix="500",
    # Priority, Subject, AccountId, ContactId...: raw.Priority and so on
    fields={
        **_COMMON,
        "Status": "status",
        "Origin": "source",
        "SuppliedEmail": "email",
        "SuppliedCompany": "company",
    },
    # A Case has no LastActivityDate: its Status is the contacted signal.
    sweep_fields=("IsDeleted", "IsClosed"),
    queue_owned=True,
)
OBJECTS: dict[str, SalesforceObject] = {
    o.kind: o for o in (LEAD, CONTACT, ACCOUNT, OPPORTUNITY, CASE)
}
BY_SOBJECT: dict[str, SalesforceObject] = {o.sobject: o for o in OBJECTS.values()}
BY_PREFIX: dict[str, SalesforceObject] = {o.prefix: o for o in OBJECTS.values()}
SOBJECT_NAMES = ", ".join(BY_SOBJECT)


def object_of_id(record_id: str) -> SalesforceObject | None:
    """The object a record id belongs to, by its key prefix; None for any other id."""
    return BY_PREFIX.get(record_id[:3]) if is_id(record_id) else None


def written_as(kind: str, record_id: str) -> SalesforceObject:
    """The object a record is written to: its kind, else its id's prefix, else a Lead (a lead
    made by hand, whose ``object_type`` is the model's default)."""
    return OBJECTS.get(kind) or object_of_id(record_id) or LEAD
