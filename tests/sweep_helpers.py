"""An in-memory CRM for sweep tests: lead states to read, owner writes to record, failures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from conftest import config_data, rep

from workflows.delivery import OwnerWriter
from workflows.errors import CrmError
from workflows.model import Decision, Lead
from workflows.sweep import LeadState

OWNER_IDS = {"alice": "101", "bob": "102", "chen": "103", "dana": "104", "maria": "900"}


def sla_config_data(*, team_hours: str = "always", **sla: Any) -> dict[str, Any]:
    """Four reps in one pool working ``team_hours``, maria the manager (always on); a 15-minute
    wall-clock SLA, 2 reassignments, unless ``sla`` overrides them."""
    data = config_data(
        reps=[
            rep(name, hubspot_owner_id=owner, hours="always" if name == "maria" else team_hours)
            for name, owner in OWNER_IDS.items()
        ],
        pools={"team": {"members": ["alice", "bob", "chen", "dana"], "strategy": "round_robin"}},
        fallback={"rep": "maria"},
        sla={
            "first_touch": "15m",
            "clock": "wall",
            "max_reassignments": 2,
            "escalate_to": {"rep": "maria"},
            **sla,
        },
    )
    return data


@dataclass
class MemoryCrm:
    """The CRM's current view of each lead, as a LeadReader answers it."""

    crm: str = "hubspot"
    batch_size: int = 100
    states: dict[str, LeadState] = field(default_factory=dict)
    written: list[tuple[str, str]] = field(default_factory=list)
    reads: list[list[str]] = field(default_factory=list)
    write_calls: int = 0
    fail_reads_after: int | None = None  # read calls that succeed before the CRM fails
    fail_writes: bool = False
    refused_owners: set[str] = field(default_factory=set)  # owner ids the CRM refuses for good

    def add(self, lead_id: str, owner: str, **state: Any) -> None:
        lead = Lead(id=lead_id, crm=self.crm, object_type="contact", owner=owner)
        self.states[lead_id] = LeadState(lead, owner=owner, **state)

    def touch(self, lead_id: str, when: datetime) -> None:
        self.states[lead_id] = replace(self.states[lead_id], activity_at=when)

    def set(self, lead_id: str, **state: Any) -> None:
        self.states[lead_id] = replace(self.states[lead_id], **state)

    def read(self, lead_ids: Sequence[str]) -> dict[str, LeadState]:
        if self.fail_reads_after is not None and len(self.reads) >= self.fail_reads_after:
            raise CrmError("HubSpot answered 503", retryable=True, status=503)
        self.reads.append(list(lead_ids))
        return {i: self.states.get(i, LeadState(None, deleted=True)) for i in lead_ids}

    def writer(self) -> OwnerWriter:
        def write(batch: Sequence[tuple[Lead, Decision]]) -> dict[str, CrmError | None]:
            self.write_calls += 1
            if self.fail_writes:
                raise CrmError("HubSpot answered 503", retryable=True, status=503)
            answers: dict[str, CrmError | None] = {}
            for lead, decision in batch:
                assert decision.owner_crm_id
                if decision.owner_crm_id in self.refused_owners:
                    answers[lead.id] = CrmError(
                        "HubSpot answered 400: owner is inactive", retryable=False, status=400
                    )
                    continue
                self.written.append((lead.id, decision.owner_crm_id))
                self.set(lead.id, owner=decision.owner_crm_id)
                answers[lead.id] = None
            return answers

        return write
