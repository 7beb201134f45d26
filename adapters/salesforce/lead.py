"""Salesforce: Lead fields into leadrelay's ``Lead``, Salesforce ids, and `leadrelay check`.

Everything here is pure: ``lead_from_fields`` reads the field names Salesforce uses in both an
Outbound Message and a Flow's JSON. The calls that touch Salesforce live in
``adapters.salesforce.api``; signing in lives in ``adapters.salesforce.auth``.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from adapters.salesforce.auth import ENV_MODES, auth_mode, missing_credentials
from workflows.config import Config
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

_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


# -- ids ------------------------------------------------------------------------------------
def is_id(value: str | None, prefix: str = "") -> bool:
    """True for a 15- or 18-character Salesforce id (starting with ``prefix``, if given)."""
    return bool(value) and bool(_ID.fullmatch(value or "")) and str(value).startswith(prefix)


def is_user_id(value: str | None) -> bool:
    """A User id (005...), as opposed to a queue (00G...) or nothing."""
    return is_id(value, "005")


def id_in(value: str, allowed: Iterable[str]) -> bool:
    """Whether ``value`` names one of ``allowed``, 15- and 18-character forms alike.

    Compared in constant time against every entry, so timing tells nothing about the list.
    """
    mine = value[:15].encode()
    found = False
    for each in allowed:
        # The first 15 characters are the id (case-sensitive); the rest is a checksum.
        found |= hmac.compare_digest(mine, str(each)[:15].encode())
    return found and is_id(value)


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


# -- leadrelay check -------------------------------------------------------------------------
def check_warnings(config: Config, env: Mapping[str, str] | None = None) -> list[str]:
    """Problems `leadrelay check` reports for Salesforce (offline: nothing is called)."""
    env = os.environ if env is None else env
    spec = config.salesforce
    reps_with_ids = [rep for rep in config.reps.values() if rep.salesforce_user_id]
    if not spec.org_ids and not reps_with_ids:
        return []  # Salesforce is not in use
    warnings: list[str] = []
    if not spec.org_ids:
        warnings.append(
            "salesforce.org_ids is empty: POST /salesforce/outbound refuses every message"
        )
    for org_id in spec.org_ids:
        if not is_id(org_id, "00D"):
            warnings.append(f"salesforce.org_ids: {org_id!r} is not an organization id (00D...)")
    for rep in config.reps.values():
        if rep.active and not rep.salesforce_user_id:
            warnings.append(
                f"rep {rep.id} has no salesforce_user_id: owners chosen for Salesforce leads"
                " cannot be written back"
            )
        elif rep.salesforce_user_id and not is_user_id(rep.salesforce_user_id):
            warnings.append(f"rep {rep.id}: salesforce_user_id should start with 005 (a user)")
    mode = auth_mode(env)
    if mode is None:
        warnings.append(
            "no Salesforce credentials: set "
            + "; or ".join(" + ".join(m.required) for m in ENV_MODES[:3])
            + f" (missing: {', '.join(missing_credentials(env))})"
        )
    elif mode.legacy:
        warnings.append(
            "signing in to Salesforce with username + password + security token: Salesforce is"
            " retiring this; use the JWT bearer or client-credentials flow"
        )
    key_file = env.get("SALESFORCE_PRIVATE_KEY_FILE")
    if mode is not None and mode.name == "JWT bearer" and key_file and not os.path.isfile(key_file):
        warnings.append(f"SALESFORCE_PRIVATE_KEY_FILE {key_file} is not a readable file")
    if not env.get("LEADRELAY_OUTBOUND_TOKEN"):
        warnings.append(
            "LEADRELAY_OUTBOUND_TOKEN is not set: /salesforce/outbound is protected by the org id"
            " alone"
        )
    if not env.get("LEADRELAY_FLOW_TOKEN"):
        warnings.append(
            "LEADRELAY_FLOW_TOKEN is not set: POST /salesforce/route refuses every call"
        )
    return warnings
