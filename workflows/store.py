"""The store interface: rotation state, daily counts, idempotency keys and the assignment log.

Every store hands out *transactions* that serialize every routing decision across threads and
processes, so no two leads ever get the same turn. A transaction buffers its writes and applies
them all at once: a decision is either wholly on disk or not at all. What to write is never the
store's call: ``workflows.ledger`` (pure) turns a decision and the values it read into rows,
and the store applies them. A store never reads the clock either: callers pass ``now``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NotRequired, Protocol, TypedDict

from workflows.model import (
    AssignmentRecord,
    Outcome,
    SlaClock,
    SlaOutcome,
    SlaStatus,
    WritebackStatus,
)


class SlaTerms(TypedDict):
    """What a new assignment's SLA promises (``workflows.sla_clock.sla_terms``)."""

    deadline: str  # ISO time
    due_key: str  # the deadline as fixed-width UTC text (``sla_clock.to_key``)
    clock: SlaClock
    first_touch_s: int
    max_reassignments: int
    escalation: NotRequired[bool]  # made by an escalation: never due
    queue: NotRequired[str]  # parked in this queue: picked up, or escalated, never rotated


class SlaUpdate(TypedDict, total=False):
    """What the sweep merges into an SLA state: a settlement, or a new deadline."""

    status: SlaStatus
    outcome: SlaOutcome
    detail: str
    settled_at: str  # ISO time
    ttft_s: float | None  # time to first touch on the SLA's clock
    next_record: int  # the log record that took the lead over
    deadline: str
    due_key: str


class SlaState(SlaTerms):
    """The SLA state of one log record: its terms, rotations so far, and how it ended."""

    rotations: int
    status: SlaStatus
    assigned_at: str  # ISO time
    outcome: NotRequired[SlaOutcome]
    detail: NotRequired[str]
    settled_at: NotRequired[str]
    ttft_s: NotRequired[float | None]
    next_record: NotRequired[int]


class WriteBack(TypedDict, total=False):
    """Whether a decision reached the CRM: ``pending``, ``not_needed``, ``written``, ``failed``.

    A store always holds ``status``, ``detail``, ``attempts`` and ``at``; every key is
    optional in the type only so that callers may read ``(writeback or {}).get("status")``.
    """

    status: WritebackStatus
    detail: str
    attempts: int
    at: str  # ISO time of the last change
    final: bool  # a failure no retry can fix
    claimed_until: str  # ISO time: a delivery is writing it until then


class OutboxItem(TypedDict):
    """Work a decision left for a background flusher (HubSpot's batch mode): ``payload`` is
    what the connector recorded with the decision (the contact, the owner to write, the
    output fields to complete the execution with); the store keeps it until it is done."""

    payload: dict[str, Any]
    attempts: int  # flushes that ended without finishing it
    enqueued_at: str  # ISO time of the decision
    claimed_until: str  # ISO time: a flusher works on it until then ("" when free)
    error: NotRequired[str]  # why the last flush did not finish it


class OutboxChange(TypedDict, total=False):
    """What a flush that did not finish an outbox item changes in it."""

    payload: dict[str, Any]  # replaces the payload (e.g. the owner is written now)
    retry_at: str  # ISO time before which no flusher claims it again
    error: str


# A follow-up task's state beside its log record: being created or moved (a live claim),
# created, moved (an earlier record's task given to this record's owner), failed, superseded
# (a later decision took the lead over before the task was made).
TaskStatus = Literal["pending", "created", "moved", "failed", "superseded"]


class TaskRow(TypedDict, total=False):
    """The follow-up task of one log record (``task:<id>`` beside ``wb:<id>``)."""

    status: TaskStatus
    task_id: str  # the CRM's id of the task (a moved task keeps the id it had)
    owner: str  # the CRM owner id it is (to be) assigned to
    attempts: int  # calls that ended (created, moved or failed)
    detail: str
    at: str  # ISO time of the last change
    claimed_until: str  # ISO time: a delivery creates or moves it until then
    final: bool  # a failure no retry can fix
    moved_from: int  # the log id whose task this record's owner got


class TaskWanted(TypedDict):
    """What a delivery asks of a record whose owner is written: its lead, its owner, and
    whether a new task is wanted (app.yaml's ``task:``; a task the lead already has moves
    to the new owner either way)."""

    crm: str
    lead_id: str
    owner: str
    create: bool
    object_type: NotRequired[str]  # HubSpot's kinds number their records apart


class TaskClaim(TypedDict):
    """The work a delivery claimed for a record: ``create`` a task, ``move`` the lead's task
    ``task_id`` to the owner, or nothing (``done``: already there, ``busy``: another delivery
    holds the claim, ``none``: no task wanted and none to move)."""

    action: Literal["create", "move", "done", "busy", "none"]
    row: TaskRow  # the record's task row as it stands after the claim
    task_id: NotRequired[str]


class TaskUpdate(TypedDict, total=False):
    """How a claimed creation or move ended."""

    status: Literal["created", "moved", "failed"]
    task_id: str
    detail: str
    final: bool


class LeadHistory(TypedDict):
    """One lead's assignments: its log ids and owners, oldest first, and its open SLA."""

    log_ids: list[int]
    owners: list[str]
    sla_open: NotRequired[int]  # the log id whose SLA runs now
    sla_rotations: NotRequired[int]  # sweep rotations since the last other assignment


@dataclass(frozen=True)
class LogQuery:
    """Filters for reading the assignment log back."""

    since: datetime | None = None
    rep: str | None = None
    lead: str | None = None
    crm: str | None = None

    def matches(self, record: AssignmentRecord) -> bool:
        """Whether ``record`` passes these filters (``lead`` aside: a store reads a lead's
        records from its history, not by scanning the log)."""
        if self.since and record.decided_at < self.since:
            return False
        if self.rep and self.rep not in (record.new_owner, record.previous_owner):
            return False
        return not self.crm or record.crm == self.crm


ALL = LogQuery()


class OutcomeTimes(TypedDict, total=False):
    """When a routed record first showed each outcome in its CRM (ISO times).

    Merged, never overwritten: the first time a store hears of an outcome is the one kept, so
    a watcher that reads the CRM again and again cannot move it later. ``checked_at`` is the
    exception: the last time anything read the CRM for this record (a watcher resumes by it).
    """

    contacted_at: str
    converted_at: str
    disqualified_at: str
    checked_at: str


@dataclass(frozen=True)
class AssignmentQuery:
    """The console's and the API's filters on the assignment log. All optional, all ANDed.

    ``rep`` matches a record given to that rep or taken from them (new or previous owner);
    ``rule`` matches that rule and every rule under it (``enterprise`` matches
    ``enterprise/na``); ``since`` is inclusive and ``until`` exclusive; ``source`` is the
    record's own source (``hubspot``, ``salesforce``, ``salesforce-flow``, ``sweep``,
    ``reassign``, ...). ``matches`` is the reference meaning; a store answers with its indexes.
    """

    since: datetime | None = None
    until: datetime | None = None
    rep: str | None = None
    rule: str | None = None
    outcome: Outcome | None = None
    source: str | None = None
    crm: str | None = None
    object_type: str | None = None

    def matches(self, record: AssignmentRecord) -> bool:
        if self.since and record.decided_at < self.since:
            return False
        if self.until and record.decided_at >= self.until:
            return False
        if self.rep and self.rep not in (record.new_owner, record.previous_owner):
            return False
        if self.rule and record.rule != self.rule and not record.rule.startswith(f"{self.rule}/"):
            return False
        checks = (
            (self.outcome, record.decision.outcome),
            (self.source, record.source),
            (self.crm, record.crm),
            (self.object_type, record.object_type),
        )
        return all(wanted is None or wanted == value for wanted, value in checks)


@dataclass(frozen=True)
class AssignmentFacts:
    """One log record flattened for statistics: the decision, how its SLA went, its outcomes.

    What the console's distribution, SLA and outcome views (and, later, the evaluation of
    routing rules) are computed from; a store streams these without decoding whole decisions.
    """

    id: int
    decided_at: datetime
    crm: str
    object_type: str
    lead_id: str
    source: str
    rule: str
    outcome: Outcome
    previous_owner: str | None
    new_owner: str | None
    sla_status: SlaStatus | None = None
    sla_outcome: SlaOutcome | None = None
    sla_deadline: datetime | None = None  # the first-touch deadline (open SLAs: a breach
    # is open once it is past and the sweep has not moved the lead yet)
    ttft_s: float | None = None  # time to first touch on the SLA's clock
    rotations: int = 0
    writeback_status: WritebackStatus | None = None
    contacted_at: datetime | None = None
    converted_at: datetime | None = None
    disqualified_at: datetime | None = None


# The console's statistics counted per group (``Store.fact_tallies``): a FactTally holds every
# count the distribution, SLA, outcome and write-back views need for one group, plus the times
# to first touch a median needs (those cannot be counted). ``workflows.stats_tally`` gives the
# reference meaning; the views roll groups up in ``workflows.ops_stats``.


@dataclass(frozen=True)
class TallyQuery:
    """What to count: decisions since ``since`` up to ``now`` (SLA, outcomes), failed
    write-backs since ``since`` (any time after), and assignments up to ``now`` since each of
    ``starts`` (the distribution's periods). Only decisions since the earliest of ``since`` and
    ``starts`` are read. ``window``: the conversion window of the outcomes."""

    since: datetime
    now: datetime
    window: timedelta
    starts: tuple[datetime, ...] = ()
    ttfts: bool = True  # False: leave the times to first touch out (they cost the most)

    @property
    def earliest(self) -> datetime:
        return min((self.since, *self.starts))


@dataclass
class FactTally:
    """The counts of one group: the rep a decision assigned its lead to (None: kept or
    unassigned, which count only as write-backs), its rule and its source.

    "In the period": decided since ``since``, up to ``now``. ``first_id``: the lowest id the
    group's rep was assigned in the period (None: none), so rep order can follow the log as
    the counters' does.
    ``since_starts[i]``: assigned up to ``now`` since ``starts[i]``; ``up_to_now``: assigned
    at all up to ``now`` (read from the earliest start on). ``ttfts_sla``/``ttfts_other``: times
    to first touch in the period of records with/without an SLA status, in ascending order.
    """

    rep: str | None
    rule: str
    source: str
    first_id: int | None = None
    leads: int = 0
    up_to_now: int = 0
    since_starts: list[int] = field(default_factory=list)
    under_sla: int = 0
    rotated_away: int = 0
    escalated_away: int = 0
    escalations_received: int = 0
    open_breaches: int = 0
    contacted: int = 0
    mature: int = 0
    converted: int = 0
    converted_recently: int = 0
    ttfts_sla: list[float] = field(default_factory=list)
    ttfts_other: list[float] = field(default_factory=list)
    failed_writebacks: int = 0
    oldest_failed: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """A sort key (None first)."""
        return ("" if self.rep is None else "r", self.rep or "", self.rule, self.source)


@dataclass(frozen=True)
class DueAssignment:
    """An assignment whose first-touch deadline has passed and that is not settled yet."""

    record: AssignmentRecord
    sla: SlaState
    owners: tuple[str, ...]  # every rep this lead was ever assigned to, oldest first
    key: str  # its deadline-index key: pass as ``after`` to read on past it
    writeback: WriteBack | None = None  # the record's CRM write-back status, if any


class StoreTransaction(Protocol):
    """Reads and one final write, under the store's exclusive routing lock."""

    def prefetch(
        self,
        *,
        pools: Iterable[str] = (),
        idempotency_key: str | None = None,
        email: str | None = None,
        domain: str | None = None,
        lead: tuple[str, str, str] | None = None,  # crm, id, object type
        reps: Iterable[str] = (),
    ) -> None:
        """Load what a decision will read in one round trip (an optimisation, never required)."""

    def seen(self, idempotency_key: str) -> AssignmentRecord | None:
        """The record first made under this key, if any."""

    def pool_state(self, pool: str) -> dict[str, Any]:
        """A private copy of a pool's rotation state (empty for a new pool)."""

    def daily_count(self, rep: str) -> tuple[str, int]:
        """(the rep's local day of their last assignment, leads assigned that day)."""

    def previous_owner(self, email: str | None, domain: str | None) -> str | None:
        """The rep who last owned a lead with this email, else this domain."""

    def lead_owners(self, crm: str, lead_id: str, object_type: str = "") -> list[str]:
        """Every rep this lead was ever assigned to, oldest first."""

    def record(
        self,
        record: AssignmentRecord,
        *,
        pool_states: dict[str, dict[str, Any]],
        daily_counts: dict[str, tuple[str, int]],
        now: datetime,
        writeback: WritebackStatus | None = None,
        sla: SlaTerms | None = None,
        aliases: Sequence[str] = (),
        outbox: dict[str, Any] | None = None,
    ) -> AssignmentRecord:
        """Append ``record`` (numbered here, in place) with the state it advances and, when
        given, its initial write-back status (``pending`` or ``not_needed``, stamped ``now``)
        and its SLA terms, which put it on the deadline index. ``aliases`` are more
        idempotency keys that name the same decision (``seen`` finds it by each). ``outbox``
        puts a payload in the outbox under the record's id, in the same commit."""

    def writeback(self, record_id: int) -> WriteBack | None:
        """The write-back status of a record, as this transaction sees it."""

    def claim_writeback(self, record_id: int, lease: timedelta, now: datetime) -> bool:
        """Take the right to write this record's owner to the CRM from ``now`` for ``lease``.

        True only when the write is still to do (pending or failed) and no other delivery
        holds a live claim: two deliveries of one lead never write it at the same time.
        """


class Store(Protocol):
    """Where leadrelay keeps everything that must survive a restart."""

    def transaction(self) -> AbstractContextManager[StoreTransaction]:
        """Exclusive across threads and processes; writes nothing unless ``record`` is called."""

    def log(self, query: LogQuery = ALL) -> Iterator[AssignmentRecord]:
        """Assignment records oldest first, streamed."""

    def assignments(
        self, query: AssignmentQuery, *, before: int | None = None, limit: int = 50
    ) -> list[AssignmentRecord]:
        """Up to ``limit`` records matching ``query``, newest first, with ids below ``before``
        (the cursor: the last id of the previous page). Fast at millions of records for each
        single filter: a store keeps indexes for them. Records carry their SLA state in
        ``extra["sla"]`` as ``log`` does."""

    def assignment(self, record_id: int) -> AssignmentRecord | None:
        """One record by its log id (with ``extra["sla"]``), None when there is none."""

    def facts(self, query: AssignmentQuery) -> Iterator[AssignmentFacts]:
        """The facts of every record matching ``query``, oldest first, streamed."""

    def fact_tallies(self, query: TallyQuery) -> list[FactTally]:
        """The console's statistics counted per (rep, rule, source) group, as
        ``workflows.stats_tally.tally_facts`` counts them from ``facts`` (ordered by
        ``FactTally.key``), but counted where the records are: fast at millions of records."""

    def record_outcomes(self, updates: dict[int, OutcomeTimes]) -> None:
        """Merge what a CRM showed about routed records, in one commit: each ``*_at`` is kept
        from the first update that names it; ``checked_at`` always takes the newest value.
        Ids not in the log are ignored."""

    def outcomes(self, record_id: int) -> OutcomeTimes | None:
        """What is known of a record's outcomes (None: nothing yet)."""

    def set_writebacks(
        self,
        updates: dict[int, tuple[WritebackStatus, str]],
        now: datetime,
        *,
        final: Collection[int] = (),
    ) -> None:
        """Record what happened when decisions were written to the CRM, in one commit.

        ``updates`` maps a log record id to (status, detail); status is ``written`` or
        ``failed``. Kept beside the append-only log row, so a CRM retry can tell "decided but
        not yet written" apart; each update counts one attempt. ``final`` names the failures
        no retry can fix (the CRM refused that owner for that record): marked ``final``.
        """

    def writeback(self, record_id: int) -> WriteBack | None:
        """The latest write-back status of a record: status, detail, attempts, at."""

    def outbox_claim(self, limit: int, lease: timedelta, now: datetime) -> dict[int, OutboxItem]:
        """Up to ``limit`` outbox items (by log id, oldest first) that no live claim holds and
        whose retry time has come, claimed from ``now`` for ``lease`` in one commit: two
        flushers (threads or processes) never get the same item while a claim lives."""

    def outbox_update(
        self,
        done: Collection[int],
        now: datetime,
        changes: Mapping[int, OutboxChange] | None = None,
    ) -> None:
        """In one commit: remove the ``done`` items; merge ``changes`` into the others (each
        counts one more attempt and is free again at its ``retry_at``, else at once)."""

    def outbox_size(self) -> int:
        """How many items the outbox holds (claimed or not)."""

    def claim_tasks(
        self, wanted: Mapping[int, TaskWanted], lease: timedelta, now: datetime
    ) -> dict[int, TaskClaim]:
        """Claim, in one commit, the follow-up task work of log records whose owners are
        written: a new task, or the lead's open task moved to the new owner. A task created or
        moved is never claimed again, and two deliveries never hold one claim at once."""

    def set_tasks(self, updates: Mapping[int, TaskUpdate], now: datetime) -> None:
        """Record how claimed creations and moves ended, in one commit (releasing claims)."""

    def task(self, record_id: int) -> TaskRow | None:
        """The follow-up task row of a log record (None: no task was asked for)."""

    def due(self, now: datetime, limit: int, after: str = "") -> list[DueAssignment]:
        """Up to ``limit`` open assignments with a deadline at or before ``now``, earliest
        first, starting after the deadline-index key ``after`` (``""``: from the start)."""

    def settle(self, updates: dict[int, SlaUpdate]) -> None:
        """Merge ``updates`` into the SLA state of log records, in one commit.

        A status other than ``open`` takes the record off the deadline index; a new
        ``due_key`` moves it there. The append-only log rows are never touched.
        """

    def sla(self, record_id: int) -> SlaState | None:
        """The SLA state of a log record (None when no SLA applied)."""

    def lock(self, name: str) -> AbstractContextManager[bool]:
        """A named lock across threads and processes, never waited for: yields True while
        held, or False at once when another holder has it. Released on exit, or when the
        holding process dies (a crash never leaves it taken)."""

    def snapshot(self) -> Store:
        """A scratch copy of the whole store, taken consistently (for dry runs that must not
        touch live state); closing it discards it."""

    def shared_value(self, name: str) -> AbstractContextManager[SharedValue]:
        """A small value every process of this store shares, read and written back under a
        cross-process lock of its own (not the routing lock) while the context is open."""

    def shared_names(self, prefix: str) -> list[str]:
        """The names of the shared values that exist and start with ``prefix``."""

    def close(self) -> None: ...


class SharedValue(Protocol):
    """Read-modify-write access to one shared value, inside ``Store.shared_value``."""

    def read(self) -> bytes:
        """The stored bytes (empty when nothing was stored yet)."""

    def write(self, data: bytes) -> None:
        """Replace the stored bytes (kept once the context exits)."""

    @property
    def where(self) -> str:
        """Where the value lives, for messages (a path, a table)."""


class SharedValues(Protocol):
    """A store's shared values alone, reachable without opening the store itself."""

    def shared_value(self, name: str) -> AbstractContextManager[SharedValue]:
        """As ``Store.shared_value``."""

    def shared_names(self, prefix: str) -> list[str]:
        """As ``Store.shared_names``."""

    def close(self) -> None: ...


class StoreKind(Protocol):
    """One kind of store, as the registry (``workflows.store_registry``) knows it."""

    def shared_values_of(self, url: str) -> SharedValues:
        """The shared values of the store a URL names, without opening or creating the store:
        an operator lifts a HubSpot pause even while the store is broken."""

    def from_url(self, url: str) -> Store:
        """Open (creating if new) the store a URL names; StoreError naming what is wrong."""

    def snapshot_of(self, url: str) -> Store:
        """A scratch copy of the store a URL names (empty when it holds nothing yet),
        never creating or changing the live store."""
