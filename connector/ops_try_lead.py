"""The "try a lead" form of ``/ops/rules``: its fields, read into a ``Lead`` and a time.

Errors name the form field that was wrong (``employees``, ``raw line 2``, ``at``), as the
page shows them next to the form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from connector.cli_time import TimeError, parse_cli_time
from workflows.config import Config
from workflows.errors import LeadError
from workflows.model import LEAD_FIELDS, Lead

# The lead fields the form offers, in the order it shows them; any other goes in as raw.
FORM_FIELDS = (
    "id", "crm", "object_type", "email", "first_name", "last_name", "company", "country",
    "state", "industry", "employees", "annual_revenue", "score", "source", "language", "owner",
    "account_owner",
)  # fmt: skip
CRMS = ("none", "hubspot", "salesforce")
MAX_RAW_LINES = 100


@dataclass(frozen=True)
class TriedLead:
    lead: Lead
    at: datetime


def read_tried_lead(form: Mapping[str, str], config: Config, now: datetime) -> TriedLead:
    """The lead and routing time a submitted form describes; ``LeadError`` naming the field."""
    values: dict[str, str] = {}
    for name in FORM_FIELDS:
        value = form.get(name, "").strip()
        if value:
            values[name] = value
    values.setdefault("id", "try-a-lead")
    if values.get("crm", "none") not in CRMS:
        raise LeadError("crm", f"expected one of {', '.join(CRMS)}")
    raw = read_raw(form.get("raw", ""))
    at = now
    when = form.get("at", "").strip()
    if when:
        try:
            at = parse_cli_time(when, ZoneInfo(config.timezone), now)
        except TimeError as exc:
            raise LeadError("at", str(exc)) from None
    return TriedLead(Lead.from_dict({**values, "raw": raw}), at)


def read_raw(text: str) -> dict[str, str]:
    """``name=value`` (or ``raw.name=value``) lines: the CRM properties rules read as raw."""
    raw: dict[str, str] = {}
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_RAW_LINES:
        raise LeadError("raw", f"at most {MAX_RAW_LINES} lines")
    for number, line in enumerate(lines, start=1):
        name, sep, value = line.partition("=")
        name = name.strip().removeprefix("raw.")
        if not sep or not name:
            raise LeadError(f"raw line {number}", f"expected name=value, got {line.strip()!r}")
        if name in LEAD_FIELDS and not line.strip().startswith("raw."):
            raise LeadError(f"raw line {number}", f"{name} is a lead field: use its own box")
        raw[name] = value.strip()
    return raw
