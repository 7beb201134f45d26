"""When two CRM ids name the same record: the one place that knows it.

Salesforce gives every record a 15-character case-sensitive id and an 18-character form whose
last 3 characters are a checksum of the first 15's case; both name the same record, and each
CRM surface (Outbound Messages, Flows, the REST API, app.yaml) may hand us either. Every other
CRM's ids are compared as they are.
"""

from __future__ import annotations


def id_key(crm: str, crm_id: str) -> str:
    """The part of ``crm_id`` that names the record: equal keys, same record."""
    return crm_id[:15] if crm == "salesforce" else crm_id


def same_id(crm: str, one: str | None, other: str | None) -> bool:
    """Whether two ids of ``crm`` name the same record (two empty ids are the same nothing)."""
    if not one or not other:
        return not one and not other
    return id_key(crm, one) == id_key(crm, other)
