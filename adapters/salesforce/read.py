"""Read records back from Salesforce for the SLA sweep: SOQL ``Id IN (...)``, 200 ids a query.

``queryAll`` is used so deleted records (in the recycle bin) come back with ``IsDeleted`` true;
an id that does not come back at all was purged. What "contacted" means comes from app.yaml's
``salesforce:`` section: for a Lead, a Status outside ``uncontacted_statuses``, or a
LastActivityDate on or after the assignment's day (Salesforce keeps only the date); for a
Contact, Account or Opportunity, that LastActivityDate; for a Case (which has none), a Status
outside ``case_uncontacted_statuses``. A converted Lead, or a closed Opportunity or Case,
settles as converted.
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
from adapters.salesforce.lead import record_from_fields
from adapters.salesforce.objects import LEAD, OBJECTS, SalesforceObject
from workflows.config import Config
from workflows.crm_ids import id_key
from workflows.delivery import OwnerWriter
from workflows.errors import LeadError
from workflows.sweep_model import LeadState

# 200 18-character ids keep the query near 5,000 characters: far below SOQL's 100,000 and
# the ~16 KB URL a GET query travels in.
QUERY_IDS = 200
SWEEP_FIELDS = LEAD.sweep_fields
# Read by the sweep, never handed to routing as fields of the record.
_STATE_FIELDS = frozenset({"IsConverted", "IsDeleted", "IsClosed", "LastActivityDate"})


class SalesforceReader:
    """The sweep's Salesforce side: SOQL reads of one object (Leads unless ``kind`` says
    otherwise), owner writes via sObject Collections."""

    crm = "salesforce"
    batch_size = QUERY_IDS

    def __init__(
        self, connection: SalesforceConnection, config: Config, kind: str = "lead"
    ) -> None:
        self.connection = connection
        self.config = config
        self.object: SalesforceObject = OBJECTS[kind]
        self.fields = [*self.object.fields, *self.object.sweep_fields]

    def for_object(self, kind: str) -> SalesforceReader:
        """The reader of ``kind`` records: every Salesforce object routed has a contacted
        signal (LastActivityDate, or a Case's Status)."""
        obj = OBJECTS.get(kind, LEAD)  # a lead of no Salesforce kind (routed by hand) is a Lead
        if obj is self.object:
            return self
        return SalesforceReader(self.connection, self.config, obj.kind)

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
            f"SELECT {', '.join(self.fields)} FROM {self.object.sobject} WHERE Id IN {{ids}}",
            ids=ids,
        )
        try:
            return [dict(row) for row in sf.query_all_iter(soql, include_deleted=True)]
        except CALL_ERRORS as exc:
            raise crm_error(exc, f"reading {len(ids)} {self.object.sobject} records") from None

    def _safe_state(self, row: dict[str, Any]) -> LeadState:
        try:
            return self.state(row)
        except LeadError as exc:  # one odd record must not fail the others
            return LeadState(None, error=f"cannot read the {self.object.kind}: {exc}")

    def state(self, row: dict[str, Any]) -> LeadState:
        """A record's row as the sweep's neutral ``LeadState``."""
        spec = self.config.salesforce
        fields = {k: v for k, v in row.items() if k != "attributes" and k not in _STATE_FIELDS}
        status = str(row.get("Status") or "")
        day = row.get("LastActivityDate")
        kind = self.object.kind
        # Only a Lead's and a Case's Status says whether someone got to it.
        uncontacted = {"lead": spec.uncontacted_statuses, "case": spec.case_uncontacted_statuses}
        return LeadState(
            record_from_fields(fields, self.object),
            owner=row.get("OwnerId") or None,
            deleted=bool(row.get("IsDeleted")),
            converted=bool(row.get("IsConverted")) or bool(row.get("IsClosed")),
            disqualified=kind == "lead" and bool(status) and status in spec.disqualified_statuses,
            status=status or None,
            status_contacted=kind in uncontacted
            and bool(status)
            and status not in uncontacted[kind],
            activity_day=date.fromisoformat(str(day)[:10]) if day else None,
        )

    def writer(self) -> OwnerWriter:
        """OwnerId writes through sObject Collections, 200 a call."""
        return owner_writer(self.connection)
