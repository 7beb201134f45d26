"""The router: which rep owns this lead, and why.

``Router.route(lead, now)`` matches the flow (pure), then, under the store's routing lock, tries
the matched target, its ``else:`` chain and the global fallback, and records the decision with
the rotation state it advanced. It never imports a CRM library.

Decisions are recorded in batches: ``route_many`` decides a list in one store transaction (one
commit), and concurrent ``route`` calls from several threads are combined the same way: the
thread that gets the lock decides everything waiting, in arrival order, and commits once.
Each caller still returns only once its own decision is on disk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from workflows.config import Config, Target
from workflows.deciding import FREE_MAIL_DOMAINS, Deciding
from workflows.errors import CrmError, LeadError
from workflows.model import OWNER_OUTCOMES, AssignmentRecord, Decision, Lead, WritebackStatus
from workflows.sla_clock import sla_terms
from workflows.store import SlaTerms, Store, StoreTransaction, WriteBack

log = logging.getLogger("leadrelay.router")
ESCALATE = "sla-escalate:"  # entry prefix: route to the SLA's escalate_to of the rule path after it


# Told of each new decision recorded and how long its caller waited for it (seconds), and of
# each owner write-back tried (the error, None when written): how the edge counts metrics
# without the core knowing of them. A listener must be quick and must not raise.
DecisionListener = Callable[["RouteRequest", "RoutingResult", float], None]
WriteListener = Callable[[Lead, CrmError | None], None]
# What a decision leaves in the store's outbox for a background flusher (HubSpot's batch
# mode): made from the decision inside the transaction that records it.
OutboxPayload = Callable[[Decision], dict[str, Any]]


# How long a delivery may take to write an owner before a redelivery may try in its place.
WRITE_LEASE = timedelta(seconds=60)


def wall_clock() -> datetime:
    """The time write-backs are stamped and leased by: the real one, whatever ``now`` a
    decision is made at (a replay, a simulation, ``sweep --now``)."""
    return datetime.now(UTC)


@dataclass
class RoutingResult:
    """A decision, the log record that holds it (None on a dry run), and whether it is a replay."""

    decision: Decision
    record: AssignmentRecord | None
    replayed: bool = False
    writeback: WriteBack | None = None  # the CRM write-back status recorded with it
    claimed: bool = False  # this caller holds the right to write the owner to the CRM now


@dataclass(frozen=True)
class RouteRequest:
    """One lead to route, with how to route it.

    ``entry`` starts at a pool or a top-level rule instead of the whole flow; ``keep_reason``
    records that the lead keeps its current owner (a connector's "do not reassign").
    """

    lead: Lead
    now: datetime
    source: str = "api"
    idempotency_key: str | None = None
    dry_run: bool = False
    exclude: frozenset[str] = frozenset()
    entry: str | None = None
    keep_reason: str | None = None
    writes_back: bool = False  # the caller will write a changed owner to the CRM
    # True: a decision that leaves the lead where it is (nobody found, or its current owner
    # chosen) records nothing, so the log never shows a move the CRM never saw (the sweep).
    must_move: bool = False
    aliases: tuple[str, ...] = ()  # more keys naming this delivery of this lead
    # Why the caller moves the lead (the sweep's missed SLA, an operator's reassignment): put
    # before the decision's reason when the decision moves it, so the log row says why.
    why: str | None = None
    # Set: a new decision puts this payload in the outbox in its own commit, and this caller
    # never claims the write (the outbox's flusher writes it).
    outbox: OutboxPayload | None = None


@dataclass
class _Waiting:
    requests: Sequence[RouteRequest]
    wake: threading.Event = field(default_factory=threading.Event)  # done, or now the leader
    done: bool = False
    outcomes: list[RoutingResult | BaseException] = field(default_factory=list)


class Router:
    """Decides owners for leads using one validated config and one store."""

    def __init__(
        self, config: Config, store: Store, clock: Callable[[], datetime] = wall_clock
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self._queue: list[_Waiting] = []
        self._queue_lock = threading.Lock()
        self._leader_busy = False
        self.decision_listeners: list[DecisionListener] = []
        self.write_listeners: list[WriteListener] = []

    def route(
        self,
        lead: Lead,
        now: datetime,
        *,
        source: str = "api",
        idempotency_key: str | None = None,
        dry_run: bool = False,
        exclude: frozenset[str] = frozenset(),
        entry: str | None = None,
        keep_reason: str | None = None,
    ) -> RoutingResult:
        """Decide the owner of ``lead`` at ``now`` (aware) and, unless ``dry_run``, record it.

        A key seen before returns the first decision and advances nothing. The other options
        are those of ``RouteRequest``.
        """
        request = RouteRequest(
            lead, now, source, idempotency_key, dry_run, exclude, entry, keep_reason
        )
        return self.route_many([request])[0]

    def route_many(self, requests: Sequence[RouteRequest]) -> list[RoutingResult]:
        """Decide several leads in order, recorded in one commit; raise the first error.

        Calls from several threads at once are combined: one caller, the leader, decides for
        everyone who queued meanwhile in one transaction, then hands the lead to the first
        caller still waiting and returns; the others just wait for their own results.
        """
        started = time.perf_counter()
        waiting = _Waiting(requests)
        with self._queue_lock:
            self._queue.append(waiting)
            leader = not self._leader_busy
            self._leader_busy = True
        if not leader:
            waiting.wake.wait()
        if not waiting.done:
            self._lead()
        if self.decision_listeners:
            self._tell_decided(requests, waiting.outcomes, time.perf_counter() - started)
        for outcome in waiting.outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return waiting.outcomes  # type: ignore[return-value]

    def written(self, lead: Lead, error: CrmError | None) -> None:
        """Tell the write listeners that ``lead``'s owner was written (``error``: or not)."""
        for listener in self.write_listeners:
            try:
                listener(lead, error)
            except Exception:  # counting must never fail a delivery
                log.exception("a write-back listener failed")

    def _tell_decided(
        self,
        requests: Sequence[RouteRequest],
        outcomes: Sequence[RoutingResult | BaseException],
        seconds: float,
    ) -> None:
        for request, outcome in zip(requests, outcomes, strict=True):
            # Only decisions made and recorded now: not dry runs, not a CRM retry's replay.
            if isinstance(outcome, BaseException) or outcome.record is None or outcome.replayed:
                continue
            for listener in self.decision_listeners:
                try:
                    listener(request, outcome, seconds)
                except Exception:  # counting must never fail a decision
                    log.exception("a decision listener failed")

    def _lead(self) -> None:
        batch: list[_Waiting] = []
        try:
            with self.store.transaction() as tx:
                # Taken once the lock is held: whoever queued while this leader waited for
                # another process's commit shares this commit (group commit).
                batch = self._take_batch()
                requests = [request for waiting in batch for request in waiting.requests]
                outcomes = self._route_batch(tx, requests)
        except BaseException as exc:  # no transaction, or no commit: nothing is recorded
            batch = batch or self._take_batch()
            outcomes = [exc] * sum(len(waiting.requests) for waiting in batch)
        start = 0
        for waiting in batch:
            waiting.outcomes = outcomes[start : start + len(waiting.requests)]
            start += len(waiting.requests)
            waiting.done = True
            waiting.wake.set()
        with self._queue_lock:
            # One batch per leader, so nobody's own answer waits on everyone else's.
            if self._queue:
                self._queue[0].wake.set()
            else:
                self._leader_busy = False

    def _take_batch(self) -> list[_Waiting]:
        with self._queue_lock:
            batch, self._queue = self._queue, []
        return batch

    def _route_batch(
        self, tx: StoreTransaction, requests: Sequence[RouteRequest]
    ) -> list[RoutingResult | BaseException]:
        # A caller's bad request (naive time, unknown entry) fails that request alone.
        outcomes: list[RoutingResult | BaseException] = []
        valid: list[tuple[int, RouteRequest, tuple[str, Target | None]]] = []
        for i, request in enumerate(requests):
            try:
                if request.now.tzinfo is None:
                    raise ValueError("now must be timezone-aware")
                valid.append((i, request, self._match(request.lead, request.entry)))
                outcomes.append(ValueError("not decided"))
            except (ValueError, LookupError) as exc:
                outcomes.append(exc)
        if not valid:
            return outcomes
        self._prefetch(tx, [r for _, r, _ in valid], [m for _, _, m in valid])
        clock = self.clock()
        for i, request, (rule, target) in valid:
            try:
                outcomes[i] = self._decide(tx, request, rule, target, clock)
            except Exception as exc:  # one bad lead must not sink the others
                outcomes[i] = exc
        return outcomes

    def _prefetch(
        self,
        tx: StoreTransaction,
        requests: Sequence[RouteRequest],
        matched: list[tuple[str, Target | None]],
    ) -> None:
        # One round trip for everything the batch will read, whatever the store.
        for request, (_, target) in zip(requests, matched, strict=True):
            lead = request.lead
            chains = [t for s in (target, self.config.fallback) if s for t in s.chain()]
            sticky = any(t.kind == "previous_owner" for t in chains)
            pools = [self.config.pools[t.name] for t in chains if t.kind == "pool" and t.name]
            tx.prefetch(
                pools=[pool.id for pool in pools],
                reps=[rep for pool in pools for rep in pool.members],
                idempotency_key=request.idempotency_key,
                email=lead.email if sticky else None,
                domain=lead.domain if sticky else None,
                lead=(lead.crm, lead.id),
            )

    def _decide(
        self,
        tx: StoreTransaction,
        request: RouteRequest,
        rule: str,
        target: Target | None,
        clock: datetime,
    ) -> RoutingResult:
        lead = request.lead
        key = request.idempotency_key
        aliases: list[str] = []
        if key:
            key, first = _replay_of(tx, key, lead)
            for alias in request.aliases:
                if first is not None:
                    break
                alias, first = _replay_of(tx, alias, lead)
                aliases.append(alias)
            if first is not None:
                claimed = (
                    request.writes_back
                    and request.outbox is None
                    and tx.claim_writeback(first.id, WRITE_LEASE, clock)
                )
                return RoutingResult(
                    first.decision,
                    first,
                    replayed=True,
                    writeback=tx.writeback(first.id),
                    claimed=claimed,
                )
        deciding = Deciding(self.config, tx, lead, request.now, request.exclude)
        if request.keep_reason and lead.owner:
            decision = deciding.keep(request.keep_reason)
        else:
            decision = deciding.decide(rule, target)
        changes_owner = decision.outcome in OWNER_OUTCOMES and decision.owner_crm_id != lead.owner
        if request.why and changes_owner:
            decision.reason = f"{request.why}; {decision.reason}"
        if request.dry_run or (request.must_move and not changes_owner):
            return RoutingResult(decision, None)
        previous = self.config.rep_by_crm_id(lead.crm, lead.owner)
        record = AssignmentRecord(
            id=0,
            decided_at=request.now,
            crm=lead.crm,
            object_type=lead.object_type,
            lead_id=lead.id,
            previous_owner=previous.id if previous else lead.owner,
            new_owner=decision.rep_id,
            decision=decision,
            source=request.source,
            idempotency_key=key,
            lead_email=lead.email,
            lead_domain=None if lead.domain in FREE_MAIL_DOMAINS else lead.domain,
            config_version=self.config.version,
        )
        writeback: WritebackStatus = (
            "pending" if request.writes_back and changes_owner else "not_needed"
        )
        stored = tx.record(
            record,
            pool_states=deciding.pool_states,
            daily_counts=deciding.new_counts(),
            now=clock,
            writeback=writeback,
            sla=self._sla_terms(request, decision),
            aliases=aliases,
            outbox=request.outbox(decision) if request.outbox is not None else None,
        )
        claimed = (
            writeback == "pending"
            and request.outbox is None
            and tx.claim_writeback(stored.id, WRITE_LEASE, clock)
        )
        return RoutingResult(decision, stored, writeback=tx.writeback(stored.id), claimed=claimed)

    def _sla_terms(self, request: RouteRequest, decision: Decision) -> SlaTerms | None:
        terms = sla_terms(self.config, decision, request.now)
        if terms is not None and (request.entry or "").startswith(ESCALATE):
            # An escalation is never due again, even one made before the rotation cap (when
            # everyone the lead could rotate to has had it).
            terms["escalation"] = True
        return terms

    def _match(self, lead: Lead, entry: str | None) -> tuple[str, Target | None]:
        """The matched rule path and its target: through the whole flow, or from ``entry``."""
        if entry is not None and entry.startswith(ESCALATE):
            # The SLA sweep escalates under the rule that made the assignment.
            rule_path = entry[len(ESCALATE) :]
            settings = self.config.sla_for(rule_path)
            return rule_path, settings.escalate_to if settings else None
        if entry is not None:
            kind, _, name = entry.partition(":") if ":" in entry else ("", "", entry)
            if kind == "pool" and name not in self.config.pools:
                raise LookupError(f"no pool named {name!r}")
            if kind == "pool" or (not kind and name in self.config.pools):
                return f"pool:{name}", Target("pool", name, None, None, f"entry {entry}")
            rule = self.config.rule(name)
            if rule.flow is not None:
                nested = rule.flow.first_match(lead)
                if nested is not None:
                    return "/".join((name, *nested.path)), nested.rule.assign
            return name, rule.assign
        match = self.config.flow.first_match(lead)
        if match is None:
            return "fallback", None
        return "/".join(match.path), match.rule.assign


def _replay_of(tx: StoreTransaction, key: str, lead: Lead) -> tuple[str, AssignmentRecord | None]:
    """The key this lead's decision lives under, and that decision if one was made.

    A key belongs to the record it was first used for. Sent again with another record (a
    HubSpot callbackId replayed with another contact, a Flow requestId an admin set to a
    constant), it is not a retry of that record: this record is routed under the key scoped
    to it, so neither lead gets the other's owner and a retry of either still replays.
    """
    if _SCOPE not in key:
        first = tx.seen(key)
        if first is None or _made_for(first, lead):
            return key, first
        log.warning(
            "idempotency key %r was made for %s lead %s; routing %s lead %s under %r",
            key, first.crm, first.lead_id, lead.crm, lead.id, record_key(key, lead),
        )  # fmt: skip
    # A key that already holds the scope mark is always scoped, so no caller can send a key
    # that reads as another record's scoped key: a scoped key names one record by design.
    scoped = record_key(key, lead)
    replay = tx.seen(scoped)
    if replay is not None and not _made_for(replay, lead):
        # Only a lead id holding the scope mark could get here: no CRM sends one.
        raise LeadError("idempotency key", f"{key!r} names another record; send another key")
    return scoped, replay


def _made_for(record: AssignmentRecord, lead: Lead) -> bool:
    # HubSpot numbers each object kind on its own: contact 42 and deal 42 are two records.
    return (record.crm, record.object_type, record.lead_id) == (lead.crm, lead.object_type, lead.id)


_SCOPE = "|"


def record_key(key: str, lead: Lead) -> str:
    """``key`` scoped to one record: what a key reused for another record is stored under.

    The kind is named unless it is the CRM's first (a contact, a Salesforce lead), so keys
    stored before other kinds were routed still replay."""
    if lead.object_type == _FIRST_KIND.get(lead.crm, "lead"):
        return f"{key}{_SCOPE}{lead.crm}:{lead.id}"
    return f"{key}{_SCOPE}{lead.crm}:{lead.object_type}:{lead.id}"


_FIRST_KIND = {"hubspot": "contact", "salesforce": "lead"}
