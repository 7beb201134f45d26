"""The outcome watcher: what became of routed leads after their SLA (or with none at all).

Each pass reads, through each CRM's ``LeadReader`` (batch reads on the shared API budget), the
latest log record of every lead decided within ``outcomes.watch_for`` that shows no conversion
or disqualification yet and was not read within ``outcomes.every``, and records what the CRM
shows on the log record it belongs to. An outcome belongs to the decision that routed the lead
to its owner at that time: the latest record of the lead at or before the outcome's time. The
store keeps the first time it hears of each outcome, so reading a lead again never moves it.
The sweep records the same times when it settles an SLA (``seen_outcomes``).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from workflows.config import OutcomeSettings
from workflows.crm_ids import id_key
from workflows.errors import CrmError
from workflows.store import AssignmentFacts, AssignmentQuery, OutcomeTimes, Store
from workflows.sweep_model import LeadReader, LeadState

log = logging.getLogger("leadrelay.outcomes")
OUTCOME_LOCK = "outcome-watch"
WATCHED_CRMS = ("hubspot", "salesforce")  # leads from no CRM have nobody to ask
# Conversion and disqualification are a lead's story: HubSpot contacts and Salesforce Leads
# only (companies, deals, tickets, accounts, opportunities and cases are not watched).
WATCHED_OBJECTS = frozenset({("hubspot", "contact"), ("salesforce", "lead")})
OUTCOME_KINDS = ("contacted", "converted", "disqualified")


def outcome_lock(store: Store) -> AbstractContextManager[bool]:
    """Yields True holding the watcher's lock of ``store`` (one pass at a time across every
    process), or False at once when another pass holds it."""
    return store.lock(OUTCOME_LOCK)


def seen_outcomes(
    state: LeadState, assigned_at: datetime, now: datetime, timezone: str
) -> OutcomeTimes:
    """What ``state`` shows happened since an assignment at ``assigned_at``, seen at ``now``.

    Contacted: at the CRM's contact time when it gives one after the assignment, else at
    ``now`` (a contact day on or after the assignment's day in ``timezone``, or a status past
    the uncontacted ones that is not a disqualification). Converted and disqualified: at
    ``now``, when they were seen.
    """
    times: OutcomeTimes = {}
    if state.lead is None or state.deleted:
        return times
    local_day = assigned_at.astimezone(ZoneInfo(timezone)).date()
    if state.activity_at is not None and assigned_at < state.activity_at <= now:
        times["contacted_at"] = utc_text(state.activity_at)
    elif _day_counts(state.activity_day, local_day) or (
        state.status_contacted and not state.disqualified
    ):
        times["contacted_at"] = utc_text(now)
    if state.converted:
        times["converted_at"] = utc_text(now)
    if state.disqualified:
        times["disqualified_at"] = utc_text(now)
    return times


def utc_text(moment: datetime) -> str:
    """An aware time as ISO text in UTC, as the store keeps outcome times."""
    return moment.astimezone(UTC).isoformat()


def _day_counts(activity_day: date | None, assigned_day: date) -> bool:
    return activity_day is not None and activity_day >= assigned_day


@dataclass(frozen=True)
class Found:
    """What one pass found for one lead (recorded, or on a dry run, to be recorded)."""

    record_id: int
    crm: str
    lead_id: str
    owner: str | None
    times: OutcomeTimes

    def describe(self, dry_run: bool = False) -> str:
        """One line for a person: ``hubspot 1001 (#3, bob): converted at ...``."""
        what = ", ".join(
            f"{kind} at {self.times[key]}"  # type: ignore[literal-required]
            for kind in OUTCOME_KINDS
            if (key := f"{kind}_at") in self.times
        )
        verb = "would record" if dry_run else "recorded"
        owner = self.owner or "-"
        return f"{self.crm} {self.lead_id} (#{self.record_id}, {owner}): {verb} {what}"


@dataclass
class WatchSummary:
    """One pass: leads read per CRM, outcomes found, leads skipped (no credentials) or
    failed (the CRM's answer could not be read: tried again next pass)."""

    read: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    failed: int = 0

    def describe(self) -> str:
        read = sum(self.read.values())
        by_crm = ", ".join(f"{crm} {n}" for crm, n in sorted(self.read.items()))
        text = f"{read} lead(s) read" + (f" ({by_crm})" if by_crm else "")
        found = ", ".join(f"{self.found[kind]} {kind}" for kind in OUTCOME_KINDS)
        text += f"; outcomes: {found}"
        if self.failed:
            text += f"; {self.failed} failed"
        for crm, n in sorted(self.skipped.items()):
            text += f"; {n} {crm} lead(s) skipped"
        return text


@dataclass
class _Lead:
    """One lead's records within the window, oldest first."""

    crm: str
    lead_id: str
    records: list[AssignmentFacts]

    @property
    def latest(self) -> AssignmentFacts:
        return self.records[-1]

    def owning(self, moment: datetime) -> AssignmentFacts | None:
        """The record that routed the lead to its owner at ``moment``: the latest decided
        before it (None: the moment precedes every record in the window)."""
        owning = None
        for record in self.records:
            if record.decided_at < moment:
                owning = record
        return owning


def watch_outcomes(
    store: Store,
    readers: Mapping[str, LeadReader],
    settings: OutcomeSettings,
    timezone: str,
    now: datetime,
    *,
    dry_run: bool = False,
    on_found: Callable[[Found], None] | None = None,
    on_skip: Callable[[str, int], None] | None = None,
) -> WatchSummary:
    """One pass over the leads to watch at ``now`` (aware); see the module docstring.

    ``on_skip(crm, leads)`` is called for each CRM that has leads to watch but no reader.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    summary = WatchSummary()
    by_crm = _leads_to_read(store, settings, now)
    for crm, leads in sorted(by_crm.items()):
        reader = readers.get(crm)
        if reader is None:
            summary.skipped[crm] += len(leads)
            if on_skip is not None:
                on_skip(crm, len(leads))
            continue
        for start in range(0, len(leads), reader.batch_size):
            chunk = leads[start : start + reader.batch_size]
            found = _read_chunk(reader, chunk, timezone, now, summary)
            if not dry_run:
                store.record_outcomes(found)
            for lead in chunk:
                _report(lead, found, summary, on_found)
    return summary


def _leads_to_read(
    store: Store, settings: OutcomeSettings, now: datetime
) -> dict[str, list[_Lead]]:
    """The leads a pass reads, per CRM, the least recently read first."""
    leads: dict[tuple[str, str], _Lead] = {}
    for fact in store.facts(AssignmentQuery(since=now - settings.watch_for, until=now)):
        if (fact.crm, fact.object_type) in WATCHED_OBJECTS:
            key = (fact.crm, id_key(fact.crm, fact.lead_id))  # a Salesforce id in 15 or 18
            leads.setdefault(key, _Lead(fact.crm, fact.lead_id, [])).records.append(fact)
    checked_before = now - settings.every
    due: dict[str, list[tuple[str, _Lead]]] = defaultdict(list)
    for lead in leads.values():
        latest = lead.latest
        if latest.converted_at is not None or latest.disqualified_at is not None:
            continue  # its story is told: nothing later can belong to this decision
        checked = (store.outcomes(latest.id) or {}).get("checked_at")
        if checked and datetime.fromisoformat(checked) > checked_before:
            continue
        due[lead.crm].append((checked or "", lead))
    return {crm: [lead for _, lead in sorted(items, key=lambda i: i[0])]
            for crm, items in due.items()}  # fmt: skip


def _read_chunk(
    reader: LeadReader, chunk: Sequence[_Lead], timezone: str, now: datetime, summary: WatchSummary
) -> dict[int, OutcomeTimes]:
    """Read one batch of leads in one call and return what to record, by log record id."""
    try:
        states = reader.read([lead.lead_id for lead in chunk])
    except Exception as exc:  # this batch is read again next pass; the rest goes on
        if not isinstance(exc, CrmError):
            log.exception("reading %d %s leads failed", len(chunk), reader.crm)
        log.warning("outcome watch: reading %d %s leads failed: %s", len(chunk), reader.crm, exc)
        summary.failed += len(chunk)
        return {}
    updates: dict[int, OutcomeTimes] = {}
    for lead in chunk:
        state = states.get(lead.lead_id)
        if state is None or state.error is not None:
            summary.failed += 1
            continue
        summary.read[reader.crm] += 1
        for record_id, times in _attributed(lead, state, timezone, now).items():
            updates.setdefault(record_id, {}).update(times)
        updates.setdefault(lead.latest.id, {})["checked_at"] = utc_text(now)
    return updates


def _attributed(
    lead: _Lead, state: LeadState, timezone: str, now: datetime
) -> dict[int, OutcomeTimes]:
    """What ``state`` shows, each time on the record that owned the lead at that time, less
    what those records already hold."""
    updates: dict[int, OutcomeTimes] = {}
    latest = lead.latest
    seen = seen_outcomes(state, latest.decided_at, now, timezone)
    contact = state.activity_at
    if "contacted_at" not in seen and contact is not None and contact <= now:
        # The CRM dates the contact before the latest record: the owner before made it.
        owner = lead.owning(contact)
        if owner is not None:
            _add(updates, owner, {"contacted_at": utc_text(contact)})
    _add(updates, latest, seen)
    return updates


def _add(updates: dict[int, OutcomeTimes], record: AssignmentFacts, times: OutcomeTimes) -> None:
    """Add to ``updates`` the times ``record`` does not hold yet (the store would keep the
    first anyway: this keeps the report to what is new)."""
    new: OutcomeTimes = {}
    if "contacted_at" in times and record.contacted_at is None:
        new["contacted_at"] = times["contacted_at"]
    if "converted_at" in times and record.converted_at is None:
        new["converted_at"] = times["converted_at"]
    if "disqualified_at" in times and record.disqualified_at is None:
        new["disqualified_at"] = times["disqualified_at"]
    if new:
        updates.setdefault(record.id, {}).update(new)


def _report(
    lead: _Lead,
    found: dict[int, OutcomeTimes],
    summary: WatchSummary,
    on_found: Callable[[Found], None] | None,
) -> None:
    for record in lead.records:
        times = found.get(record.id, {}).copy()
        times.pop("checked_at", None)
        if not times:
            continue
        for kind in OUTCOME_KINDS:
            if f"{kind}_at" in times:
                summary.found[kind] += 1
        if on_found is not None:
            on_found(Found(record.id, lead.crm, lead.lead_id, record.new_owner, times))
