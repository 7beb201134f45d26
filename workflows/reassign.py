"""Reassign a departing rep's book: route each lead again without them, write back in batches.

The CRM adapters list what the rep owns (``Owned``); this module decides and writes through
``deliver``, so a batch is one store commit and one CRM write call. Resuming is safe because
every decision is made under an idempotency key that is the same on every run for as long as
the rep keeps the lead:

    reassign:<crm>:<lead id>:from:<rep>:<times leadrelay gave it to the rep>[:<CRM marker>]

Run again after an interruption, a lead already written is no longer the rep's (the CRM does
not list it); a lead the CRM still shows (written just before a stale search, or decided but not
written) replays its first decision: written once, never decided twice. When the rep gets the
lead again later (leadrelay counts one more assignment to them, or the CRM's own marker, such
as HubSpot's ``hubspot_owner_assigneddate``, moves) the key changes and it is reassigned anew.
A lead nobody could take is left with the rep and recorded; the next run tries it again under
the next attempt number (``:try1``...), so a full pool today does not pin it forever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from workflows.delivery import Delivery, Inbound, OwnerWriter, deliver
from workflows.errors import LeadRelayError
from workflows.follow_up import TaskWriter
from workflows.model import Decision, Lead, record_name
from workflows.router import Router
from workflows.store import StoreTransaction

SOURCE = "reassign"
BATCH_SIZE = 100
MAX_ATTEMPTS_KEYS = 50  # attempts per lead with nobody available, before we stop looking


@dataclass(frozen=True)
class Owned:
    """One lead a CRM shows the departing rep owning."""

    lead: Lead
    closed: str | None = None  # why the CRM counts it converted or closed (None: open)
    marker: str = ""  # the CRM's "owner since" for this lead, when it has one


@dataclass(frozen=True)
class Outcome:
    """What happened (or would happen) to one lead.

    ``status``: ``reassigned``, ``would_reassign`` (dry run), ``already_done`` (an earlier run
    wrote it), ``kept`` (nobody could take it: left with the rep), ``skipped`` (closed, with
    --only-open), ``failed`` (decided, not written: the next run writes it).
    """

    lead: Lead
    status: str
    decision: Decision | None = None
    detail: str = ""


@dataclass
class Reassignment:
    """One ``leadrelay reassign`` run over any number of CRMs' books."""

    router: Router
    from_rep: str
    now: datetime
    entry: str | None = None  # a pool or top-level rule; None: the whole flow
    only_open: bool = False
    dry_run: bool = False  # give it a router over a scratch copy of the store
    batch_size: int = BATCH_SIZE
    notify: Callable[[Sequence[Delivery]], None] | None = None
    stopping: Callable[[], bool] = lambda: False  # asked to stop: decide no further batch
    why: str | None = None  # the operator's reason, for each moved lead's log row
    # By CRM: moves each lead's follow-up task to its new owner along with the lead.
    tasks: Mapping[str, TaskWriter] = field(default_factory=dict)

    @property
    def why_moved(self) -> str:
        """What leads the reason of every decision that moves a lead: ``reassigned by an
        operator from jo: jo left the team``."""
        text = f"reassigned by an operator from {self.from_rep}"
        note = one_line(self.why or "")
        return f"{text}: {note}" if note else text

    def run(self, owned: Iterable[Owned], write: OwnerWriter | None) -> Iterator[Outcome]:
        """Reassign each lead of ``owned`` (one CRM), batch by batch, yielding outcomes."""
        for batch in self.batches(owned, write):
            yield from batch

    def batches(self, owned: Iterable[Owned], write: OwnerWriter | None) -> Iterator[list[Outcome]]:
        """Reassign the leads of ``owned`` (one CRM) a batch at a time: each batch is decided,
        written and notified before it is yielded.

        When listing fails (the CRM's error is raised from ``owned``), the leads listed so far
        are still reassigned before the error is raised again. Once ``stopping()`` is true, no
        further batch is decided: a batch being listed is dropped (nothing of it moved).
        """
        items = iter(owned)
        while not self.stopping():
            batch: list[Owned] = []
            try:
                for item in items:
                    batch.append(item)
                    if len(batch) >= self.batch_size or self.stopping():
                        break
            except LeadRelayError:
                if not self.stopping():
                    yield self._batch(batch, write)
                raise
            if not batch or self.stopping():
                return
            yield self._batch(batch, write)

    def _batch(self, batch: list[Owned], write: OwnerWriter | None) -> list[Outcome]:
        outcomes: list[Outcome] = []
        todo: list[Owned] = []
        for item in batch:
            if self.only_open and item.closed:
                outcomes.append(Outcome(item.lead, "skipped", detail=item.closed))
            else:
                todo.append(item)
        if not todo:
            return outcomes
        with self.router.store.transaction() as tx:  # reads only: nothing is recorded here
            keys = [self._key(tx, item) for item in todo]
        inbound = [
            Inbound(
                item.lead,
                key,
                entry=self.entry,
                exclude=frozenset({self.from_rep}),
                why=self.why_moved,
            )
            for item, key in zip(todo, keys, strict=True)
        ]
        deliveries = deliver(
            self.router,
            inbound,
            self.now,
            source=SOURCE,
            write=None if self.dry_run else write,
            notify=None if self.dry_run else self.notify,
            tasks=None if self.dry_run else self.tasks.get(todo[0].lead.crm),
        )
        return outcomes + [self._outcome(delivery) for delivery in deliveries]

    def _key(self, tx: StoreTransaction, item: Owned) -> str:
        lead = item.lead
        times = tx.lead_owners(lead.crm, lead.id, lead.object_type).count(self.from_rep)
        name = record_name(lead.crm, lead.id, lead.object_type)
        base = f"reassign:{lead.crm}:{name}:from:{self.from_rep}:{times}"
        if item.marker:
            base += f":{item.marker}"
        for attempt in range(MAX_ATTEMPTS_KEYS):
            key = base if attempt == 0 else f"{base}:try{attempt}"
            first = tx.seen(key)
            if first is None or _moves(first.decision, self.from_rep):
                return key
        return key

    def _outcome(self, delivery: Delivery) -> Outcome:
        result, lead = delivery.result, delivery.lead
        decision = result.decision
        if not _moves(decision, self.from_rep):
            return Outcome(lead, "kept", decision, f"nobody could take it: {decision.reason}")
        before = (result.writeback or {}).get("status")
        if result.replayed and before == "written":
            return Outcome(
                lead,
                "already_done",
                decision,
                f"an earlier run moved it (if the CRM shows {self.from_rep} again, it was given"
                " back by hand: move it there)",
            )
        if self.dry_run:
            return Outcome(lead, "would_reassign", decision, decision.reason)
        if delivery.status == "failed":
            return Outcome(lead, "failed", decision, str(delivery.error))
        task = delivery.task
        if task is not None and task.error is not None:
            moved = f"owner moved, follow-up task not: {task.error}"
            return Outcome(lead, "failed", decision, moved)
        return Outcome(lead, "reassigned", decision, decision.reason)


def _moves(decision: Decision, from_rep: str) -> bool:
    if decision.outcome == "queued":  # parked in a queue: away from the rep all the same
        return bool(decision.owner_crm_id)
    return (
        decision.outcome == "assigned"
        and decision.rep_id not in (None, from_rep)
        and bool(decision.owner_crm_id)
    )


WHY_LIMIT = 200  # characters of an operator's reason kept in a log row


def one_line(text: str, limit: int = WHY_LIMIT) -> str:
    """``text`` as one line of ASCII for a log row: whitespace runs (newlines too) as one
    space, other control characters dropped, non-ASCII as ``\\u`` escapes, at most ``limit``
    characters."""
    flat = " ".join(text.split())
    printable = "".join(c for c in flat if c.isprintable())
    ascii_text = printable.encode("ascii", "backslashreplace").decode("ascii")
    return ascii_text if len(ascii_text) <= limit else ascii_text[: limit - 3] + "..."
