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
from workflows.store import SlaState

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


def object_reader(reader: LeadReader, object_type: str) -> LeadReader | str:
    """The reader of ``object_type`` records (a deal, a case), or why first touch cannot be
    judged on them (the CRM records no "contacted" for that kind). A reader may offer
    ``for_object(object_type)`` to say so; one that does not reads every kind alike."""
    for_object = getattr(reader, "for_object", None)
    if for_object is None:
        return reader
    picked: LeadReader | str = for_object(object_type)
    return picked


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


def why_moved(sla: SlaState, escalated: bool) -> str:
    """Why the sweep moves a lead, for the new decision's reason: ``first touch missed: 15 min
    on the working-hours clock, 2nd rotation``. Made of config values only: one ASCII line."""
    clock = "working-hours" if sla["clock"] == "working_hours" else "wall"
    window = f"{span_text(sla['first_touch_s'])} on the {clock} clock"
    missed = f"first touch missed: {window}"
    if sla.get("queue"):
        return f"{queue_missed(sla)}: escalated"
    rotations = sla.get("rotations", 0)
    cap = sla["max_reassignments"]
    if not escalated:
        return f"{missed}, {ordinal(rotations + 1)} rotation"
    if rotations < cap:  # a rotation found nobody it had not already been given to
        return f"stranded: {missed}, and everyone it could rotate to has had it: escalated"
    if rotations == 0:
        return f"escalated: {missed}, and max_reassignments is 0"
    times = "1 rotation" if rotations == 1 else f"{rotations} rotations"
    each = "" if rotations == 1 else " each"
    return f"escalated after {times} without first touch ({window}{each})"


def queue_missed(sla: SlaState) -> str:
    """``not picked up from queue nurture within 1 h on the wall clock``."""
    window = span_text(sla["first_touch_s"])
    return f"not picked up from queue {sla.get('queue')} within {window} on the wall clock"


def span_text(seconds: float) -> str:
    """``15 min``, ``2 h``, ``1 h 30 min``, ``1 d``: an SLA's length as a person writes it."""
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (rest, "s")]
    return " ".join(f"{n} {unit}" for n, unit in parts if n) or "0 s"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
