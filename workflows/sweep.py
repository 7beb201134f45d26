"""The SLA sweep: settle or rotate every assignment whose first-touch deadline has passed.

The store streams due assignments, earliest deadline first, a page at a time. Each page is
read back from its CRM in batches (a ``LeadReader`` per CRM, from ``adapters/``), and each lead
is settled (contacted, manual override, converted, deleted, disqualified) or routed again
through the same rule with every previous owner excluded, until ``max_reassignments``; then it
is escalated and no longer rotated. Rotations go through ``deliver`` under the key
``sweep:<log id>``, so a sweep that dies half-way never rotates a lead twice: the next sweep
replays the decision and only writes what is still unwritten. One lead's failure never stops
the others, and only what succeeded is taken off the deadline index.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from workflows.config import Config
from workflows.crm_ids import same_id
from workflows.delivery import Delivery, Inbound, deliver
from workflows.errors import CrmError
from workflows.follow_up import TaskWriter
from workflows.model import OWNER_OUTCOMES, Decision, NotifyEvent, SlaOutcome
from workflows.outcome_watch import seen_outcomes, utc_text
from workflows.router import ESCALATE, Router, RouteRequest
from workflows.sla_clock import elapsed
from workflows.store import DueAssignment, OutcomeTimes, SlaUpdate, WriteBack
from workflows.sweep_model import (
    LeadReader,
    LeadState,
    SweepAction,
    SweepActionKind,
    SweepSummary,
    object_reader,
    queue_missed,
    why_moved,
)

__all__ = ["LeadReader", "LeadState", "SweepAction", "SweepSummary", "sweep"]

log = logging.getLogger("leadrelay.sweep")
PAGE = 200  # due assignments read from the store at a time (Salesforce's batch size)
# Called with "reassigned" or "escalated" and the deliveries, after the owners are written.
Notify = Callable[[str, Sequence[Delivery]], None]


def sweep(
    router: Router,
    readers: Mapping[str, LeadReader],
    now: datetime,
    *,
    dry_run: bool = False,
    notify: Notify | None = None,
    on_action: Callable[[SweepAction], None] | None = None,
    page: int = PAGE,
    tasks: Mapping[str, TaskWriter] | None = None,
) -> SweepSummary:
    """Sweep every assignment due at ``now`` (aware); see the module docstring.

    ``tasks`` (by CRM) moves a rotated lead's follow-up task to its new owner."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    summary = SweepSummary()

    def report(action: SweepAction) -> None:
        summary.counts[action.action] += 1
        if on_action is not None:
            on_action(action)

    run = _Run(router, readers, now, dry_run, notify, report, tasks or {})
    after = ""
    while True:
        due = router.store.due(now, page, after)
        if not due:
            return summary
        after = due[-1].key
        by_crm: dict[tuple[str, str], list[DueAssignment]] = defaultdict(list)
        for item in due:
            by_crm[(item.record.crm, item.record.object_type)].append(item)
        for (crm, kind), items in by_crm.items():
            run.crm_batch(crm, items, kind)


@dataclass
class _Run:
    router: Router
    readers: Mapping[str, LeadReader]
    now: datetime
    dry_run: bool
    notify: Notify | None
    report: Callable[[SweepAction], None]
    tasks: Mapping[str, TaskWriter]

    @property
    def config(self) -> Config:
        return self.router.config

    def crm_batch(self, crm: str, items: list[DueAssignment], kind: str = "lead") -> None:
        found = self.readers.get(crm)
        reader = object_reader(found, kind) if found is not None else None
        if reader is None and crm not in ("hubspot", "salesforce"):
            # Leads routed from no CRM (API, CLI): nothing can tell whether they were called.
            self._untracked(items, "the lead comes from no CRM, so first touch cannot be checked")
            return
        if reader is None:
            for item in items:
                self.report(_action(item, "skipped", f"no {crm} connection to read it with"))
            return
        if isinstance(reader, str):
            # The CRM records no "contacted" for this kind of record: say so, never guess.
            self._untracked(items, reader)
            return
        refused = [i for i in items if _refused(i.writeback)]
        if refused:
            # The CRM refused this owner for good: there is nobody's first touch to wait for.
            details = {i.record.id: f"{crm} refused the owner: {i.writeback['detail']}"
                       for i in refused if i.writeback}  # fmt: skip
            if not self.dry_run:
                self.router.store.settle(
                    {key: self._settled("write_failed", detail) for key, detail in details.items()}
                )
            for item in refused:
                self.report(_action(item, "write_failed", details[item.record.id]))
        waiting = [
            i
            for i in items
            if i not in refused and (i.writeback or {}).get("status") in ("pending", "failed")
        ]
        for item in waiting:
            # Its owner never reached the CRM: judge it once the write-back is done.
            self.report(_action(item, "waiting", "the owner is not written to the CRM yet"))
        items = [item for item in items if item not in waiting and item not in refused]
        states: dict[str, LeadState] = {}
        for start in range(0, len(items), reader.batch_size):
            chunk = items[start : start + reader.batch_size]
            try:
                states.update(reader.read([item.record.lead_id for item in chunk]))
            except Exception as exc:  # this chunk waits for the next sweep; the rest goes on
                if not isinstance(exc, CrmError):
                    log.exception("reading %d %s leads failed", len(chunk), crm)
                log.warning("reading %d %s leads failed: %s", len(chunk), crm, exc)
                for item in chunk:
                    self.report(_action(item, "failed", f"reading the lead failed: {exc}"))
                continue
            for item in chunk:
                if item.record.lead_id not in states:
                    self.report(_action(item, "failed", f"{crm} did not answer for this lead"))
        settled: dict[int, SlaUpdate] = {}
        seen: dict[int, OutcomeTimes] = {}  # what each lead shows, for its record's outcomes
        rotate: list[tuple[DueAssignment, LeadState]] = []
        escalate: list[tuple[DueAssignment, LeadState]] = []
        moved = self._moved_before(items)
        for item in items:
            state = states.get(item.record.lead_id)
            if state is None:
                continue  # its read failed: reported above, and it stays due
            if state.error is not None:
                self.report(_action(item, "failed", state.error))
                continue
            if item.record.id in moved:
                # An earlier sweep moved it but did not finish (its follow-up task was not
                # moved): the owner the CRM shows is that sweep's, not someone else's change.
                # The replay finishes what is left.
                rotate.append((item, state))
                continue
            try:
                outcome = self.settle_outcome(item, state)
                seen[item.record.id] = self._seen(item, state)
            except Exception as exc:  # one odd lead must not stop the sweep
                log.exception("sweeping lead %s failed", item.record.lead_id)
                self.report(_action(item, "failed", f"{type(exc).__name__}: {exc}"))
                continue
            if outcome is not None:
                settled[item.record.id] = outcome
                ttft = outcome.get("ttft_s")
                self.report(
                    _action(
                        item,
                        outcome["outcome"],
                        outcome["detail"],
                        ttft=timedelta(seconds=ttft) if ttft is not None else None,
                    )
                )
            elif item.sla.get("queue"):
                # Nobody picked it up: a queue is never rotated inside, only escalated.
                if self._escalation_target(item):
                    escalate.append((item, state))
                else:
                    detail = f"{queue_missed(item.sla)}; no escalate_to"
                    settled[item.record.id] = self._settled("no_rotation", detail)
                    self.report(_action(item, "no_rotation", detail))
            elif item.sla.get("rotations", 0) < item.sla["max_reassignments"]:
                rotate.append((item, state))
            elif self._escalation_target(item):
                escalate.append((item, state))
            else:
                detail = f"{item.sla['max_reassignments']} reassignments made; no escalate_to"
                settled[item.record.id] = self._settled("cap_reached", detail)
                self.report(_action(item, "cap_reached", detail))
        if not self.dry_run:
            self.router.store.settle(settled)
            self.router.store.record_outcomes(seen)
        # A lead every candidate has already owned escalates now, not after the cap.
        stranded = self.reroute(reader, rotate, escalated=False)
        self.reroute(reader, escalate + stranded, escalated=True)

    def _untracked(self, items: list[DueAssignment], detail: str) -> None:
        """Settle ``items`` as having no first touch to judge, saying why."""
        if not self.dry_run:
            self.router.store.settle(
                {item.record.id: self._settled("untracked", detail) for item in items}
            )
        for item in items:
            self.report(_action(item, "untracked", detail))

    def _moved_before(self, items: list[DueAssignment]) -> set[int]:
        """The items an earlier sweep already routed again (under ``sweep:<log id>``)."""
        if self.dry_run or not self.tasks:
            return set()
        with self.router.store.transaction() as tx:  # reads only
            return {item.record.id for item in items if tx.seen(f"sweep:{item.record.id}")}

    def _escalation_target(self, item: DueAssignment) -> bool:
        settings = self.config.sla_for(item.record.rule)
        return settings is not None and settings.escalate_to is not None

    def _settled(self, outcome: SlaOutcome, detail: str, ttft: float | None = None) -> SlaUpdate:
        return {
            "status": "settled",
            "outcome": outcome,
            "detail": detail,
            "settled_at": self.now.isoformat(),
            "ttft_s": ttft,
        }

    def _seen(self, item: DueAssignment, state: LeadState) -> OutcomeTimes:
        """The outcome times ``state`` shows for the record whose SLA ran out, and that it
        was read now."""
        assigned = datetime.fromisoformat(item.sla["assigned_at"])
        times = seen_outcomes(state, assigned, self.now, self.config.timezone)
        times["checked_at"] = utc_text(self.now)
        return times

    def settle_outcome(self, item: DueAssignment, state: LeadState) -> SlaUpdate | None:
        """The settlement of one due assignment, or None when it must move on."""
        if state.deleted or state.lead is None:
            return self._settled("deleted", "the lead no longer exists in the CRM")
        if state.converted:
            return self._settled("converted", "the lead was converted")
        if state.disqualified:
            return self._settled("disqualified", f"status {state.status!r}")
        assigned = datetime.fromisoformat(item.sla["assigned_at"])
        rep = self.config.reps.get(item.record.new_owner or "")
        if state.activity_at is not None and state.activity_at > assigned:
            ttft = elapsed(assigned, state.activity_at, item.sla["clock"], rep)
            when = state.activity_at.isoformat()
            return self._settled("contacted", f"contact recorded at {when}", ttft.total_seconds())
        local_day = assigned.astimezone(ZoneInfo(self.config.timezone)).date()
        if state.activity_day is not None and state.activity_day >= local_day:
            return self._settled("contacted", f"activity on {state.activity_day}")
        if state.status_contacted:
            return self._settled("contacted", f"status moved to {state.status!r}")
        expected = item.record.decision.owner_crm_id
        queue = item.sla.get("queue")
        moved = state.owner and not same_id(item.record.crm, state.owner, expected)
        if queue and moved and self.config.queue_by_crm_id(item.record.crm, state.owner) is None:
            # Someone took the lead out of the queue: the pick-up SLA is met.
            taker = self.config.rep_by_crm_id(item.record.crm, state.owner)
            who = taker.id if taker else state.owner
            return self._settled("picked_up", f"picked up from queue {queue} by {who}")
        if not same_id(item.record.crm, state.owner, expected):
            return self._settled(
                "manual_override", f"owner changed to {state.owner or 'nobody'} by someone else"
            )
        return None

    def reroute(
        self, reader: LeadReader, batch: list[tuple[DueAssignment, LeadState]], escalated: bool
    ) -> list[tuple[DueAssignment, LeadState]]:
        """Route ``batch`` again (rotate, or escalate) and settle what moved.

        Returns the leads a rotation found nobody for that have an ``escalate_to``: nothing was
        recorded for them, and the caller escalates them.
        """
        if not batch:
            return []
        inbound = [self._inbound(item, state, escalated) for item, state in batch]
        if self.dry_run:
            return self._preview(batch, inbound, escalated)
        event: NotifyEvent = "escalated" if escalated else "reassigned"
        notifier = self.notify
        notify = (lambda ds: notifier(event, ds)) if notifier is not None else None
        write = reader.writer()
        tasks = self.tasks.get(batch[0][0].record.crm)
        try:
            deliveries = deliver(
                self.router, inbound, self.now, source="sweep", write=write, notify=notify,
                tasks=tasks,
            )  # fmt: skip
            outcomes: list[Delivery | Exception] = list(deliveries)
        except Exception:
            # One lead's decision raised: route them one by one to isolate it.
            outcomes = []
            for one in inbound:
                try:
                    outcomes += deliver(
                        self.router, [one], self.now, source="sweep", write=write, notify=notify,
                        tasks=tasks,
                    )  # fmt: skip
                except Exception as exc:
                    log.exception("rerouting lead %s failed", one.lead.id)
                    outcomes.append(exc)
        return self._record(batch, outcomes, escalated)

    def _inbound(self, item: DueAssignment, state: LeadState, escalated: bool) -> Inbound:
        assert state.lead is not None
        lead = replace(state.lead, owner=state.owner)
        key = f"sweep:{item.record.id}"
        why = why_moved(item.sla, escalated)
        # A decision that moves nothing records nothing: the log keeps matching the CRM.
        if escalated:
            escalate = f"{ESCALATE}{item.record.rule}"
            return Inbound(lead, key, entry=escalate, must_move=True, why=why)
        owners = frozenset(item.owners) | {item.record.new_owner or ""}
        entry = _entry(item.record.rule)
        if entry is not None and not self.config.accepts_entry(entry):
            entry = None  # the rule is gone from app.yaml since: route through the whole flow
        return Inbound(lead, key, entry=entry, exclude=owners - {""}, must_move=True, why=why)

    def _record(
        self,
        batch: list[tuple[DueAssignment, LeadState]],
        outcomes: list[Delivery | Exception],
        escalated: bool,
    ) -> list[tuple[DueAssignment, LeadState]]:
        updates: dict[int, SlaUpdate] = {}
        stranded: list[tuple[DueAssignment, LeadState]] = []
        verb: SlaOutcome = "escalated" if escalated else "rotated"
        for (item, state), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Exception):
                self.report(_action(item, "failed", f"{type(outcome).__name__}: {outcome}"))
                continue
            decision = outcome.result.decision
            if outcome.status == "failed" and not outcome.done:
                self.report(_action(item, "failed", f"writing the owner failed: {outcome.error}"))
                continue  # stays due: the next sweep replays the decision and writes it
            if outcome.task is not None and outcome.task.retry:
                detail = f"owner moved, follow-up task not: {outcome.task.error or 'in progress'}"
                self.report(_action(item, "failed", detail))
                continue  # stays due: the next sweep replays the decision and moves the task
            record = outcome.result.record
            new_id = record.id if record is not None else None
            if new_id is None or decision.outcome not in OWNER_OUTCOMES:  # nobody can take it
                if not escalated and new_id is None and self._escalation_target(item):
                    stranded.append((item, state))
                    continue
                detail = self._stays(item, escalated, decision)
                updates[item.record.id] = {**self._settled("no_rotation", detail)}
                self.report(_action(item, "no_rotation", detail))
                continue
            if outcome.status == "failed" and new_id is not None:
                # The CRM refused the new owner for good: the lead never moved, so neither
                # assignment has an SLA to run, and the log must not claim a rotation.
                refused = f"{item.record.crm} refused {_taker(decision)} as the new owner"
                updates[new_id] = self._settled("write_failed", f"{refused}: {outcome.error}")
                detail = f"{refused}, so it stays with {item.record.new_owner}: {outcome.error}"
                updates[item.record.id] = {**self._settled("write_failed", detail)}
                self.report(_action(item, "write_failed", detail))
                continue
            detail = decision.reason  # the router put why it moved first
            updates[item.record.id] = {
                **self._settled(verb, detail),
                "next_record": new_id,
            }
            self.report(_action(item, verb, detail, new_owner=_taker(decision)))
        self.router.store.settle(updates)
        return stranded

    def _stays(self, item: DueAssignment, escalated: bool, decision: Decision) -> str:
        queue = item.record.decision.queue
        owner = item.record.new_owner or (f"queue {queue}" if queue else None)
        if decision.outcome == "assigned":  # the escalation chose the rep who has it
            return f"escalate_to gives it to its owner {owner}, so it stays: {decision.reason}"
        to = "escalate" if escalated else "rotate"
        return f"nobody to {to} to, so it stays with {owner}: {decision.reason}"

    def _preview(
        self,
        batch: list[tuple[DueAssignment, LeadState]],
        inbound: list[Inbound],
        escalated: bool,
    ) -> list[tuple[DueAssignment, LeadState]]:
        stranded: list[tuple[DueAssignment, LeadState]] = []
        requests = [
            RouteRequest(i.lead, self.now, source="sweep", dry_run=True, exclude=i.exclude,
                         entry=i.entry, why=i.why)
            for i in inbound
        ]  # fmt: skip
        verb: SlaOutcome = "escalated" if escalated else "rotated"
        for (item, state), request in zip(batch, requests, strict=True):
            try:
                (result,) = self.router.route_many([request])
            except Exception as exc:
                self.report(_action(item, "failed", f"{type(exc).__name__}: {exc}"))
                continue
            decision = result.decision
            moves = decision.outcome in OWNER_OUTCOMES
            if moves and decision.owner_crm_id != request.lead.owner:
                self.report(_action(item, verb, decision.reason, new_owner=_taker(decision)))
            elif not escalated and self._escalation_target(item):
                stranded.append((item, state))
            else:
                detail = self._stays(item, escalated, decision)
                self.report(_action(item, "no_rotation", detail))
        return stranded


def _taker(decision: Decision) -> str | None:
    """Who a move gave the lead to, as the sweep reports it: a rep, or ``queue <name>``."""
    return decision.rep_id or (f"queue {decision.queue}" if decision.queue else None)


def _refused(writeback: WriteBack | None) -> bool:
    return bool(writeback and writeback.get("status") == "failed" and writeback.get("final"))


def _entry(rule_path: str) -> str | None:
    """Where to route again so the lead goes through the same rule."""
    if rule_path.startswith("pool:"):
        return rule_path
    if rule_path == "fallback" or not rule_path:
        return None
    return f"rule:{rule_path.split('/', 1)[0]}"


def _action(
    item: DueAssignment,
    action: SweepActionKind,
    detail: str,
    *,
    ttft: timedelta | None = None,
    new_owner: str | None = None,
) -> SweepAction:
    record = item.record
    return SweepAction(
        record.id, record.crm, record.lead_id, action, record.new_owner, new_owner, detail, ttft
    )
