"""Read Leads back from Salesforce for the SLA sweep: SOQL ``Id IN (...)``, 200 ids a query.

``queryAll`` is used so deleted Leads (in the recycle bin) come back with ``IsDeleted`` true;
an id that does not come back at all was purged. What "contacted" means comes from app.yaml's
``salesforce:`` section: a Status outside ``uncontacted_statuses``, or a LastActivityDate on or
after the assignment's day (Salesforce keeps only the date).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date
from typing import Any

from simple_salesforce.api import Salesforce
from simple_salesforce.format import format_soql

from adapters.salesforce.api import owner_writer
from adapters.salesforce.auth import SalesforceConnection
from adapters.salesforce.errors import CALL_ERRORS, crm_error
from adapters.salesforce.lead import LEAD_FIELDS, lead_from_fields
from workflows.config import Config
from workflows.crm_ids import id_key
from workflows.delivery import OwnerWriter
from workflows.errors import LeadError
from workflows.sweep_model import LeadState

# 200 18-character ids keep the query near 5,000 characters: far below SOQL's 100,000 and
# the ~16 KB URL a GET query travels in.
QUERY_IDS = 200
SWEEP_FIELDS = ("IsConverted", "IsDeleted", "LastActivityDate")


class SalesforceReader:
    """The sweep's Salesforce side: SOQL reads of Leads, owner writes via sObject Collections."""

    crm = "salesforce"
    batch_size = QUERY_IDS

    def __init__(self, connection: SalesforceConnection, config: Config) -> None:
        self.connection = connection
        self.config = config
        self.fields = [*LEAD_FIELDS, *SWEEP_FIELDS]

    def read(self, lead_ids: Sequence[str]) -> dict[str, LeadState]:
        """Each Lead's state; CrmError when Salesforce fails (the whole chunk waits)."""
        states: dict[str, LeadState] = {}
        for start in range(0, len(lead_ids), QUERY_IDS):
            chunk = list(lead_ids[start : start + QUERY_IDS])
            rows = self.connection.call(functools.partial(self._query, ids=chunk))
            by_id = {id_key("salesforce", str(row["Id"])): row for row in rows}
            for lead_id in chunk:
                row = by_id.get(id_key("salesforce", lead_id))
                states[lead_id] = self._safe_state(row) if row else LeadState(None, deleted=True)
        return states

    def _query(self, sf: Salesforce, ids: list[str]) -> list[dict[str, Any]]:
        soql = format_soql(
            f"SELECT {', '.join(self.fields)} FROM Lead WHERE Id IN {{ids}}", ids=ids
        )
        try:
            return [dict(row) for row in sf.query_all_iter(soql, include_deleted=True)]
        except CALL_ERRORS as exc:
            raise crm_error(exc, f"reading {len(ids)} leads") from None

    def _safe_state(self, row: dict[str, Any]) -> LeadState:
        try:
            return self.state(row)
        except LeadError as exc:  # one odd record must not fail the others
            return LeadState(None, error=f"cannot read the lead: {exc}")

    def state(self, row: dict[str, Any]) -> LeadState:
        """A Lead row as the sweep's neutral ``LeadState``."""
        spec = self.config.salesforce
        fields = {k: v for k, v in row.items() if k != "attributes" and k not in SWEEP_FIELDS}
        status = str(row.get("Status") or "")
        day = row.get("LastActivityDate")
        return LeadState(
            lead_from_fields(fields),
            owner=row.get("OwnerId") or None,
            deleted=bool(row.get("IsDeleted")),
            converted=bool(row.get("IsConverted")),
            disqualified=bool(status) and status in spec.disqualified_statuses,
            status=status or None,
            status_contacted=bool(status) and status not in spec.uncontacted_statuses,
            activity_day=date.fromisoformat(str(day)[:10]) if day else None,
        )

    def writer(self) -> OwnerWriter:
        """OwnerId writes through sObject Collections, 200 a call."""
        return owner_writer(self.connection)
