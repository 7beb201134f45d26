"""One decision: try the matched target, its ``else:`` chain and the fallback, and explain it.

Reads go through the store transaction; every change (pool states, the chosen rep's daily
count) is kept aside for the router to record, so a dry run changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workflows.availability import Requirement, Skip, local_day, unavailability
from workflows.config import Config, Queue, Target
from workflows.model import Decision, Lead, Outcome, Rep
from workflows.store import StoreTransaction
from workflows.strategies import PoolContext, take_turn

CRMS_WITH_OWNER_IDS = ("hubspot", "salesforce")

# Sticky routing by domain would send every gmail.com lead to one rep.
FREE_MAIL_DOMAINS = frozenset(
    (
        "gmail.com googlemail.com yahoo.com ymail.com hotmail.com outlook.com live.com msn.com "
        "icloud.com me.com mac.com aol.com gmx.com gmx.de web.de proton.me protonmail.com "
        "mail.com yandex.ru mail.ru qq.com 163.com 126.com"
    ).split()
)


@dataclass
class _Attempt:
    rep: Rep | None
    reason: str
    strategy: str | None = None
    pool: str | None = None
    examined: list[str] = field(default_factory=list)
    skipped: dict[str, Skip] = field(default_factory=dict)
    kept_owner: str | None = None  # set when a `keep` target leaves the CRM owner in place
    queue: Queue | None = None  # set when a `queue` target parks the lead in a queue


class Deciding:
    """The working state of one decision: reads through the transaction, changes kept aside."""

    def __init__(
        self,
        config: Config,
        tx: StoreTransaction,
        lead: Lead,
        now: datetime,
        exclude: frozenset[str],
    ) -> None:
        self.config = config
        self.tx = tx
        self.lead = lead
        self.now = now
        self.exclude = exclude
        self.counts: dict[str, tuple[str, int]] = {}
        self._days: dict[str, str] = {}  # rep id -> the rep's local date at ``now`` (ISO)
        self.pool_states: dict[str, dict[str, Any]] = {}
        self.assigned: Rep | None = None

    # -- the decision ---------------------------------------------------------------------
    def decide(self, rule: str, target: Target | None) -> Decision:
        attempts: list[_Attempt] = []
        notes: list[str] = [] if target else ["no rule matched"]

        def settled(candidate: Target, label: str, forced: bool) -> bool:
            attempt = self._try(candidate, forced=forced)
            attempts.append(attempt)
            notes.append(f"{label}: {attempt.reason}")
            return any(x is not None for x in (attempt.rep, attempt.kept_owner, attempt.queue))

        if not any(settled(t, rule, False) for t in (target.chain() if target else ())):
            rule = "fallback"
            fallback = list(self.config.fallback.chain())
            # The last resort is tried as configured, then regardless of hours, leave and caps.
            if not any(settled(t, rule, False) for t in fallback):
                any(settled(t, rule, True) for t in fallback)
        return self._decision(rule, attempts, notes)

    def keep(self, reason: str) -> Decision:
        """The lead keeps the owner it has, for a reason the connector gives."""
        rep = self.config.rep_by_crm_id(self.lead.crm, self.lead.owner)
        return Decision(
            lead_id=self.lead.id,
            rep_id=rep.id if rep else None,
            outcome="kept",
            rule="kept",
            reason=reason,
            owner_crm_id=self.lead.owner,
        )

    def _decision(self, rule: str, attempts: list[_Attempt], notes: list[str]) -> Decision:
        crm = self.lead.crm
        attempt = attempts[-1]
        examined: list[str] = []
        skipped: dict[str, Skip] = {}
        for each in attempts:
            examined += [r for r in each.examined if r not in examined]
            for rep, skip in each.skipped.items():
                skipped.setdefault(rep, skip)
        if attempt.rep:
            skipped.pop(attempt.rep.id, None)  # a rep skipped early may be the one forced last
        outcome: Outcome
        owner_crm_id: str | None
        if attempt.kept_owner:
            outcome, owner_crm_id = "kept", attempt.kept_owner
        elif attempt.queue:
            # No rep: no pool turn taken, no daily count; the queue's members pick it up.
            outcome, owner_crm_id = "queued", attempt.queue.crm_id(crm)
        elif attempt.rep:
            outcome, owner_crm_id = "assigned", attempt.rep.crm_id(crm) or attempt.rep.id
            self.assigned = attempt.rep
        else:
            outcome, owner_crm_id = "unassigned", None
        return Decision(
            lead_id=self.lead.id,
            rep_id=attempt.rep.id if attempt.rep else None,
            outcome=outcome,
            rule=rule,
            reason="; ".join(notes),
            strategy=attempt.strategy,
            pool=attempt.pool,
            owner_crm_id=owner_crm_id,
            candidates=examined,
            skipped={rep: str(skip) for rep, skip in skipped.items()},
            queue=attempt.queue.name if attempt.queue else None,
        )

    def _try(self, target: Target, *, forced: bool) -> _Attempt:
        require = None if forced else target.require
        if target.kind == "pool":
            return self._try_pool(target, require, forced)
        if target.kind == "queue":
            queue = self.config.queues[str(target.name)]
            if not queue.crm_id(self.lead.crm):
                return _Attempt(None, f"queue {queue.name}: has no {self.lead.crm} id in app.yaml")
            return _Attempt(None, f"queue {queue.name}", queue=queue)
        if target.kind == "keep":
            if self.lead.owner:
                rep = self.config.rep_by_crm_id(self.lead.crm, self.lead.owner)
                who = rep.id if rep else self.lead.owner
                return _Attempt(rep, f"kept current owner {who}", kept_owner=self.lead.owner)
            return _Attempt(None, "keep: the lead has no owner")
        if target.kind == "rep":
            rep, why = self.config.reps[str(target.name)], "rep"
        elif target.kind == "account_owner":
            rep = self.config.rep_by_crm_id(self.lead.crm, self.lead.account_owner)
            why = "account owner"
            if rep is None:
                known = self.lead.account_owner
                missing = (
                    f"{known} is not a rep in app.yaml"
                    if known
                    else self.lead.account_owner_missing or "the lead has none"
                )
                return _Attempt(None, f"account owner: {missing}")
        else:
            rep_id = self.tx.previous_owner(self.lead.email, self._sticky_domain())
            rep, why = self.config.reps.get(rep_id or ""), "previous owner"
            if rep is None:
                return _Attempt(None, "previous owner: none on record for this email or domain")
        skip = self._unavailability(rep, require, forced)
        if skip:
            return _Attempt(
                None, f"{why} {rep.id} skipped: {skip}", examined=[rep.id], skipped={rep.id: skip}
            )
        note = " (fallback regardless of availability)" if forced else ""
        return _Attempt(rep, f"{why} {rep.id}{note}", examined=[rep.id])

    def _try_pool(self, target: Target, require: Requirement | None, forced: bool) -> _Attempt:
        pool = self.config.pools[str(target.name)]
        if pool.id not in self.pool_states:
            self.pool_states[pool.id] = self.tx.pool_state(pool.id)
        state = self.pool_states[pool.id]
        reps = self.config.reps
        ctx = PoolContext(
            unavailability=lambda r: self._unavailability(reps[r], require, forced),
            assigned_today=lambda r: self._assigned_today(reps[r]),
            local_day=lambda r: self._local_day(reps[r]),
            weight=lambda r: reps[r].weight,
        )
        turn = take_turn(
            pool.strategy, pool.members, state, ctx,
            absence=pool.absence, max_credit=pool.max_credit,
        )  # fmt: skip
        label = f"pool {pool.id} ({pool.strategy})"
        skipped = "".join(f"; skipped {r}: {s}" for r, s in turn.skipped.items())
        if turn.rep_id is None:
            reason = f"{label}: nobody available{skipped}"
            return _Attempt(None, reason, pool.strategy, pool.id, turn.examined, turn.skipped)
        how = " as catch-up for missed turns" if turn.catch_up else ""
        if forced:
            how += " (fallback regardless of availability)"
        reason = f"{label} chose {turn.rep_id}{how}{skipped}"
        return _Attempt(
            reps[turn.rep_id], reason, pool.strategy, pool.id, turn.examined, turn.skipped
        )

    # -- availability ---------------------------------------------------------------------
    def _unavailability(self, rep: Rep, require: Requirement | None, forced: bool) -> Skip | None:
        if self.lead.crm in CRMS_WITH_OWNER_IDS and not rep.crm_id(self.lead.crm):
            # Writing a rep without an owner id in this CRM could never succeed.
            return Skip("no_crm_id", f"has no {self.lead.crm} owner id in app.yaml")
        if forced:
            # The last resort ignores hours, leave and caps, but never hands a lead to
            # someone who left or who is excluded from this lead.
            if rep.id in self.exclude:
                return Skip("excluded", "excluded: previously owned this lead")
            return None if rep.active else Skip("inactive", "inactive")
        return unavailability(rep, self.now, self._assigned_today(rep), require, self.exclude)

    def _assigned_today(self, rep: Rep) -> int:
        if rep.id not in self.counts:
            self.counts[rep.id] = self.tx.daily_count(rep.id)
        day, count = self.counts[rep.id]
        return count if day == self._local_day(rep) else 0

    def _local_day(self, rep: Rep) -> str:
        # Asked for every candidate, several times each: a time-zone conversion per rep.
        day = self._days.get(rep.id)
        if day is None:
            day = self._days[rep.id] = local_day(rep, self.now).isoformat()
        return day

    def _sticky_domain(self) -> str | None:
        domain = self.lead.domain
        return None if not domain or domain.casefold() in FREE_MAIL_DOMAINS else domain

    def new_counts(self) -> dict[str, tuple[str, int]]:
        """The daily count this decision changes (none when it assigned nobody)."""
        rep = self.assigned
        if rep is None:
            return {}
        return {rep.id: (self._local_day(rep), self._assigned_today(rep) + 1)}
