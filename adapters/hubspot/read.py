"""Read records back from HubSpot for the SLA sweep: up to 100 per batch-read call.

Calls go through ``HubSpotApi``'s rate limiter, retries and deadline (``hubspot_limits.call``),
so a sweep and live workflow actions share one budget. What "contacted" means comes from
app.yaml's ``hubspot:`` section: a ``contacted_properties`` time after the assignment, or a
lead status outside ``uncontacted_statuses``. Contacts, companies and deals have those times
(deals no lead status; a closed deal counts as converted); tickets have neither, so the sweep
says it cannot judge them (``for_object``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hubspot.crm.contacts import (
    ApiException,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectId,
)
from hubspot.crm.contacts.rest import RESTResponse

from adapters.hubspot.client import BATCH_LIMIT, HubSpotApi
from adapters.hubspot.contact import OWNER_PROPERTY, object_properties
from adapters.hubspot.limits import call
from adapters.hubspot.objects import (
    CONTACT,
    hubspot_object,
    lead_from_object,
    no_signal_reason,
    written_as,
)
from workflows.config import Config
from workflows.delivery import OwnerWriter
from workflows.errors import LeadError
from workflows.model import parse_datetime
from workflows.sweep_model import LeadState

STATUS_PROPERTY = "hs_lead_status"
LIFECYCLE_PROPERTY = "lifecyclestage"
DEAL_CLOSED_PROPERTY = "hs_is_closed"  # "true" once the deal is closed won or lost


class HubSpotReader:
    """The sweep's HubSpot side: batch reads of one object type (contacts unless ``kind``
    says otherwise), owner writes in batches of 100."""

    crm = "hubspot"
    batch_size = BATCH_LIMIT

    def __init__(self, api: HubSpotApi, config: Config, kind: str = "contact") -> None:
        self.api = api
        self.config = config
        self.object = hubspot_object(kind)
        spec = config.hubspot
        wanted = {*object_properties(config, kind), *spec.contacted_properties, OWNER_PROPERTY}
        if self.object.lead_status:
            wanted |= {STATUS_PROPERTY, LIFECYCLE_PROPERTY}
        if kind == "deal":
            wanted.add(DEAL_CLOSED_PROPERTY)
        self.properties = sorted(wanted)
        # app.yaml's stages by their internal names, which HubSpot sends in lower case.
        self.converted_stages = frozenset(stage.lower() for stage in spec.converted_stages)
        # HubSpotApi's own batch client (built once; hubspot.Client builds one per access).
        self._batch = api.contacts_batch

    def for_object(self, kind: str) -> HubSpotReader | str:
        """The reader of ``kind`` records, or why the sweep cannot judge them (tickets)."""
        obj = written_as(kind)  # a lead of no HubSpot kind (routed by hand) is a contact
        if obj is self.object:
            return self
        reason = no_signal_reason(obj.kind)
        return reason if reason is not None else HubSpotReader(self.api, self.config, obj.kind)

    def read(self, lead_ids: Sequence[str]) -> dict[str, LeadState]:
        """Each contact's state; ids HubSpot does not find are deleted (archived or merged)."""
        states: dict[str, LeadState] = {}
        for start in range(0, len(lead_ids), BATCH_LIMIT):
            states.update(self._read_chunk(lead_ids[start : start + BATCH_LIMIT]))
        return states

    def _read_chunk(self, ids: Sequence[str]) -> dict[str, LeadState]:
        body = BatchReadInputSimplePublicObjectId(
            properties=self.properties,
            properties_with_history=[],
            inputs=[SimplePublicObjectId(id=str(i)) for i in ids],
        )
        answer = call(
            lambda timeout: self._read_raw(body, timeout),
            f"reading {len(ids)} {self.object.path}",
            limiter=self.api.limiter,
            deadline=self.api.deadline(),
            policy=self.api.policy,
        )
        results = answer.get("results") if isinstance(answer, dict) else None
        found = {
            str(result["id"]): dict(result.get("properties") or {})
            for result in results or ()
            if isinstance(result, dict) and "id" in result
        }
        # A 207 names the ids HubSpot could not find: archived, merged away or deleted.
        gone = LeadState(None, deleted=True)
        return {str(i): self._safe_state(str(i), found[str(i)]) if str(i) in found else gone
                for i in ids}  # fmt: skip

    def _safe_state(self, contact_id: str, props: dict[str, Any]) -> LeadState:
        try:
            return self.state(contact_id, props)
        except LeadError as exc:  # one odd contact must not fail the others
            return LeadState(None, error=f"cannot read the {self.object.kind}: {exc}")

    def _read_raw(self, body: BatchReadInputSimplePublicObjectId, timeout: Any) -> Any:
        # The generated client spends two thirds of a batch read parsing timestamps (dateutil)
        # into models the sweep does not use: take the JSON as it comes.
        if self.object is CONTACT:
            response = self._batch.read(
                body, archived=False, _request_timeout=timeout, _preload_content=False
            )
        else:
            response = self.api.objects_batch.read(
                self.object.path, body, archived=False, _request_timeout=timeout,
                _preload_content=False,
            )  # fmt: skip
        if not 200 <= response.status <= 299:
            raise ApiException(http_resp=RESTResponse(response))  # call() retries or fails
        try:
            return json.loads(response.data)
        except ValueError:
            raise ValueError("HubSpot's batch read answer is not JSON") from None

    def state(self, contact_id: str, props: dict[str, Any]) -> LeadState:
        """A record's properties as the sweep's neutral ``LeadState``."""
        spec = self.config.hubspot
        status = str(props.get(STATUS_PROPERTY) or "")
        times = []
        for name in spec.contacted_properties:
            try:
                moment = parse_datetime(name, props.get(name))
            except LeadError:
                moment = None
            if moment is not None:
                times.append(moment)
        lead = lead_from_object(self.object, contact_id, props)
        stage = str(props.get(LIFECYCLE_PROPERTY) or "").lower()
        closed = str(props.get(DEAL_CLOSED_PROPERTY) or "").lower() == "true"
        has_status = self.object.lead_status  # a deal's stage is no lead status
        if not has_status:
            status = ""
        return LeadState(
            lead,
            owner=props.get(OWNER_PROPERTY) or None,
            converted=stage in self.converted_stages or closed,
            disqualified=bool(status) and status in spec.disqualified_statuses,
            status=status or None,
            status_contacted=has_status and status not in spec.uncontacted_statuses,
            activity_at=max(times) if times else None,
        )

    def writer(self) -> OwnerWriter:
        """Owner writes in batches of 100, under one deadline per sweep page."""
        return self.api.owner_writer(self.api.deadline())
