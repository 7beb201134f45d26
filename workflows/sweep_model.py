"""What the SLA sweep speaks: a lead's state as a CRM shows it, the reader protocol each CRM
adapter implements, and what the sweep did with each lead."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal, Protocol

from workflows.delivery import OwnerWriter
from workflows.model import Lead, SlaOutcome

# What the sweep did with one due assignment: how its SLA ended (``untracked``: it has none
# to judge), or why it is still due (failed, waiting, skipped).
SweepActionKind = SlaOutcome | Literal["failed", "waiting", "skipped"]


@dataclass(frozen=True)
class LeadState:
    """What a CRM shows about a lead now, in CRM-neutral terms (a reader fills it)."""

    lead: Lead | None  # None: deleted or gone
    owner: str | None = None
    deleted: bool = False
    converted: bool = False
    disqualified: bool = False
    status: str | None = None
    status_contacted: bool = False  # the status moved past the "not contacted" values
    activity_at: datetime | None = None  # the latest contact time the CRM records
    activity_day: date | None = None  # a contact date without a time (Salesforce)
    error: str | None = None  # the CRM's answer for this lead could not be read


class LeadReader(Protocol):
    """One CRM's side of the sweep: batch reads of leads, and the owner writer."""

    crm: str
    batch_size: int

    def read(self, lead_ids: Sequence[str]) -> dict[str, LeadState]:
        """The state of each lead (an id the CRM does not know: deleted); CrmError if the
        call fails as a whole."""

    def writer(self) -> OwnerWriter:
        """Writes owners back in batches, as ``deliver`` takes it."""


@dataclass(frozen=True)
class SweepAction:
    """What the sweep did (or, on a dry run, would do) with one due assignment."""

    record_id: int
    crm: str
    lead_id: str
    action: SweepActionKind
    owner: str | None  # the owner whose SLA ran out
    new_owner: str | None = None
    detail: str = ""
    ttft: timedelta | None = None

    def describe(self, dry_run: bool = False) -> str:
        """One line for a person."""
        verb = f"would be {self.action}" if dry_run else self.action
        text = f"{self.crm} {self.lead_id} (#{self.record_id}, {self.owner or '-'}): {verb}"
        if self.new_owner:
            text += f" -> {self.new_owner}"
        if self.ttft is not None:
            text += f", first touch after {duration_text(self.ttft)}"
        return f"{text}; {self.detail}" if self.detail else text


@dataclass
class SweepSummary:
    """Counts per action; ``failed`` ones stay due for the next sweep."""

    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        parts = ", ".join(f"{n} {action}" for action, n in sorted(self.counts.items()))
        return f"{self.total} due assignments: {parts or 'nothing to do'}"


def duration_text(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"
