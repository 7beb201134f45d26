"""The console's statistics counted per (rep, rule, source) group: what a store can count in
its database (``Store.fact_tallies``) instead of streaming a million facts into Python.

A ``FactTally`` holds every count the distribution, SLA, outcome and write-back views need for
one group, plus the times to first touch a median needs (those cannot be counted). The views
roll the groups up (``workflows.ops_stats``). ``tally_facts`` is the reference meaning, from
facts, in Python: every store must answer as it does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from workflows.store import AssignmentFacts


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


def tally_facts(facts: Iterable[AssignmentFacts], query: TallyQuery) -> list[FactTally]:
    """The reference tallies of ``facts``, one per group with a decision since
    ``query.earliest``, ordered by ``FactTally.key``."""
    earliest, since, now, window = query.earliest, query.since, query.now, query.window
    mature_before = now - window
    groups: dict[tuple[str | None, str, str], FactTally] = {}
    firsts: dict[str, int] = {}
    for fact in facts:
        if fact.decided_at < earliest:
            continue
        rep = fact.new_owner if fact.outcome == "assigned" else None
        tally = groups.get((rep, fact.rule, fact.source))
        if tally is None:
            tally = FactTally(rep, fact.rule, fact.source, since_starts=[0] * len(query.starts))
            groups[rep, fact.rule, fact.source] = tally
        if fact.writeback_status == "failed" and fact.decided_at >= since:
            tally.failed_writebacks += 1
            if tally.oldest_failed is None or fact.decided_at < tally.oldest_failed:
                tally.oldest_failed = fact.decided_at
        if rep is None or fact.decided_at > now:
            continue
        tally.up_to_now += 1
        for i, start in enumerate(query.starts):
            tally.since_starts[i] += fact.decided_at >= start
        if fact.decided_at < since:
            continue
        if rep not in firsts or fact.id < firsts[rep]:
            firsts[rep] = fact.id
        tally.leads += 1
        tally.contacted += fact.contacted_at is not None
        converted = fact.converted_at is not None and fact.converted_at - fact.decided_at <= window
        if fact.decided_at <= mature_before:
            tally.mature += 1
            tally.converted += converted
        else:
            tally.converted_recently += converted
        if fact.sla_status is None:
            if fact.ttft_s is not None and query.ttfts:
                tally.ttfts_other.append(fact.ttft_s)
            continue
        tally.under_sla += 1
        if fact.ttft_s is not None and query.ttfts:
            tally.ttfts_sla.append(fact.ttft_s)
        tally.rotated_away += fact.sla_outcome in ("rotated", "escalated")
        tally.escalated_away += fact.sla_outcome == "escalated"
        tally.escalations_received += fact.sla_status == "escalated"
        deadline = fact.sla_deadline
        tally.open_breaches += fact.sla_status == "open" and deadline is not None and deadline < now
    for tally in groups.values():
        tally.first_id = firsts.get(tally.rep) if tally.rep is not None else None
        tally.ttfts_sla.sort()
        tally.ttfts_other.sort()
    return sorted(groups.values(), key=lambda t: t.key)
