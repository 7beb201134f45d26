"""The console's statistics: distribution against target shares, SLA per rep, and outcomes
per rep, rule and source with confidence intervals. Pure: facts and ``now`` in, numbers out.

Every figure is computed either from ``AssignmentFacts`` streamed once (``console_stats`` feeds
one stream to every view: the reference) or, the same figures, from what a store counted per
(rep, rule, source) group (``Store.fact_tallies``; ``console_stats_of_tallies``, ``feed_tallies``,
which the console uses). Only records that *assigned* a lead to a rep count: a ``kept``
decision moved nothing and an ``unassigned`` one gave nobody anything. Sweep rotations and
reassignments are assignments too: the rep who receives a rotated lead has to work it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol, get_args

from workflows.config import Config
from workflows.ops_distribution import Distribution, DistributionCounter, assigned_to, period_starts
from workflows.stats_intervals import Median, Proportion, median_with_interval, p90, wilson
from workflows.store import AssignmentFacts, FactTally, TallyQuery

DEFAULT_WINDOW = timedelta(days=30)
# How far back a view reads by default: outcomes need leads old enough to have had the whole
# conversion window; the SLA and health views are about now, and every day read costs time
# (the log is streamed whole for the period).
DEFAULT_LOOKBACK = timedelta(days=90)
RECENT_LOOKBACK = timedelta(days=30)

Grouping = Literal["rep", "rule", "source"]
GROUPINGS: tuple[Grouping, ...] = get_args(Grouping)


class Counter(Protocol):
    """Takes facts one at a time (one stream feeds several counters), or the same counted by
    group (``Store.fact_tallies``): either way, the same result."""

    def add(self, fact: AssignmentFacts) -> None: ...

    def add_tally(self, tally: FactTally) -> None: ...


# --- SLA per rep -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RepSla:
    """How one rep met first-touch SLAs on the leads assigned to them in the period.

    ``rotated_away``: their leads the sweep moved on for a missed first touch (rotated or
    escalated); ``escalated_away``: of those, the ones escalated; ``escalations_received``:
    leads escalated to them; ``open_breaches``: their leads past the deadline now, not yet
    moved by the sweep.
    """

    rep: str
    leads: int
    under_sla: int
    ttft: Median  # seconds on the SLA's clock, over the leads touched in time to be measured
    p90_ttft_s: float | None
    rotated_away: int
    escalated_away: int
    escalations_received: int
    open_breaches: int


@dataclass
class _SlaTally:
    leads: int = 0
    under_sla: int = 0
    ttfts: list[float] = field(default_factory=list)
    rotated_away: int = 0
    escalated_away: int = 0
    escalations_received: int = 0
    open_breaches: int = 0


class SlaCounter:
    """Counts facts decided since ``since`` into one ``RepSla`` per rep."""

    def __init__(self, now: datetime, since: datetime, reps: Iterable[str] = ()) -> None:
        self.now, self.since = now, since
        self.tallies: dict[str, _SlaTally] = {rep: _SlaTally() for rep in reps}

    def add(self, fact: AssignmentFacts) -> None:
        rep = assigned_to(fact)
        if rep is None or not self.since <= fact.decided_at <= self.now:
            return
        tally = self.tallies.setdefault(rep, _SlaTally())
        tally.leads += 1
        if fact.sla_status is None:
            return
        tally.under_sla += 1
        if fact.ttft_s is not None:
            tally.ttfts.append(fact.ttft_s)
        if fact.sla_outcome in ("rotated", "escalated"):
            tally.rotated_away += 1
        tally.escalated_away += fact.sla_outcome == "escalated"
        tally.escalations_received += fact.sla_status == "escalated"
        deadline = fact.sla_deadline
        tally.open_breaches += (
            fact.sla_status == "open" and deadline is not None and deadline < self.now
        )

    def add_tally(self, counted: FactTally) -> None:
        """Add a group counted for ``TallyQuery(since=self.since, now=self.now, ...)``."""
        if counted.rep is None or not counted.leads:
            return
        tally = self.tallies.setdefault(counted.rep, _SlaTally())
        tally.leads += counted.leads
        tally.under_sla += counted.under_sla
        tally.ttfts += counted.ttfts_sla
        tally.rotated_away += counted.rotated_away
        tally.escalated_away += counted.escalated_away
        tally.escalations_received += counted.escalations_received
        tally.open_breaches += counted.open_breaches

    def result(self) -> list[RepSla]:
        return [
            RepSla(
                rep=rep,
                leads=t.leads,
                under_sla=t.under_sla,
                ttft=median_with_interval(t.ttfts),
                p90_ttft_s=p90(t.ttfts),
                rotated_away=t.rotated_away,
                escalated_away=t.escalated_away,
                escalations_received=t.escalations_received,
                open_breaches=t.open_breaches,
            )
            for rep, t in self.tallies.items()
        ]


# --- outcomes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeRow:
    """Outcomes of the leads one rep, rule or source was assigned in the period.

    ``converted`` counts only leads decided at least ``window`` before now, converted within
    ``window`` of their decision: a lead decided yesterday has not had its chance yet, and
    counting the recent ones that converted early (but not the rest) would flatter every
    rate. ``converted_recently`` says how many conversions that leaves out.
    """

    key: str
    leads: int
    contacted: Proportion
    ttft: Median
    converted: Proportion
    converted_recently: int


@dataclass
class _OutcomeTally:
    leads: int = 0
    contacted: int = 0
    ttfts: list[float] = field(default_factory=list)
    mature: int = 0
    converted: int = 0
    converted_recently: int = 0


class OutcomeCounter:
    """Counts facts decided since ``since`` into ``OutcomeRow``s per rep, rule and source."""

    def __init__(self, now: datetime, since: datetime, window: timedelta) -> None:
        self.now, self.since, self.window = now, since, window
        self._mature_before = now - window
        self.tallies: dict[Grouping, dict[str, _OutcomeTally]] = {g: {} for g in GROUPINGS}

    def add(self, fact: AssignmentFacts) -> None:
        rep = assigned_to(fact)
        if rep is None or not self.since <= fact.decided_at <= self.now:
            return
        mature = fact.decided_at <= self._mature_before
        converted = (
            fact.converted_at is not None and fact.converted_at - fact.decided_at <= self.window
        )
        contacted = fact.contacted_at is not None
        ttft = fact.ttft_s
        for grouping, key in zip(GROUPINGS, (rep, fact.rule, fact.source), strict=True):
            tallies = self.tallies[grouping]
            tally = tallies.get(key)
            if tally is None:
                tally = tallies[key] = _OutcomeTally()
            tally.leads += 1
            tally.contacted += contacted
            if ttft is not None:
                tally.ttfts.append(ttft)
            if mature:
                tally.mature += 1
                tally.converted += converted
            else:
                tally.converted_recently += converted

    def add_tally(self, counted: FactTally) -> None:
        """Add a group counted for ``TallyQuery(since=self.since, now=self.now,
        window=self.window)``."""
        if counted.rep is None or not counted.leads:
            return
        keys = (counted.rep, counted.rule, counted.source)
        for grouping, key in zip(GROUPINGS, keys, strict=True):
            tally = self.tallies[grouping].setdefault(key, _OutcomeTally())
            tally.leads += counted.leads
            tally.contacted += counted.contacted
            tally.ttfts += counted.ttfts_sla
            tally.ttfts += counted.ttfts_other
            tally.mature += counted.mature
            tally.converted += counted.converted
            tally.converted_recently += counted.converted_recently

    def result(self, grouping: Grouping) -> list[OutcomeRow]:
        tallies = self.tallies[grouping]
        return [
            OutcomeRow(
                key=key,
                leads=t.leads,
                contacted=wilson(t.contacted, t.leads),
                ttft=median_with_interval(t.ttfts),
                converted=wilson(t.converted, t.mature),
                converted_recently=t.converted_recently,
            )
            for key, t in sorted(tallies.items())
        ]


# --- write-backs waiting ---------------------------------------------------------------------


@dataclass(frozen=True)
class WritebackBacklog:
    """Decisions whose owner write to the CRM failed and waits for a retry."""

    failed: int
    oldest: datetime | None  # when the oldest of them was decided


class WritebackCounter:
    """Counts the failed write-backs of decisions made since ``since``."""

    def __init__(self, since: datetime) -> None:
        self.since = since
        self.failed = 0
        self.oldest: datetime | None = None

    def add(self, fact: AssignmentFacts) -> None:
        if fact.writeback_status != "failed" or fact.decided_at < self.since:
            return
        self.failed += 1
        if self.oldest is None or fact.decided_at < self.oldest:
            self.oldest = fact.decided_at

    def add_tally(self, counted: FactTally) -> None:
        """Add a group counted for ``TallyQuery(since=self.since, ...)``."""
        self.failed += counted.failed_writebacks
        oldest = counted.oldest_failed
        if oldest is not None and (self.oldest is None or oldest < self.oldest):
            self.oldest = oldest

    def result(self) -> WritebackBacklog:
        return WritebackBacklog(self.failed, self.oldest)


# --- everything in one pass ------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleStats:
    now: datetime
    since: datetime
    window: timedelta
    distribution: Distribution
    sla: list[RepSla]
    outcomes: dict[Grouping, list[OutcomeRow]]
    writebacks: WritebackBacklog


def facts_since(now: datetime, since: datetime, timezone: str) -> datetime:
    """The earliest decision ``console_stats`` needs: ``since``, or the week's or month's start
    when earlier."""
    return min(since, *period_starts(now, timezone).values())


def feed(facts: Iterable[AssignmentFacts], *counters: Counter) -> None:
    """Stream ``facts`` once through every counter."""
    for fact in facts:
        for counter in counters:
            counter.add(fact)


def feed_tallies(tallies: Iterable[FactTally], *counters: Counter) -> None:
    """Add counted groups to every counter, in the order their reps first appear in the log
    (as ``feed`` would meet them)."""
    ordered = sorted(tallies, key=lambda t: (t.first_id is None, t.first_id or 0, t.key))
    for tally in ordered:
        for counter in counters:
            counter.add_tally(tally)


def console_tally_query(
    config: Config, *, now: datetime, since: datetime, window: timedelta = DEFAULT_WINDOW
) -> TallyQuery:
    """What ``console_stats_of_tallies`` needs counted."""
    starts = tuple(period_starts(now, config.timezone).values())
    return TallyQuery(since=since, now=now, window=window, starts=starts)


def console_stats_of_tallies(
    tallies: Iterable[FactTally],
    config: Config,
    *,
    now: datetime,
    since: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> ConsoleStats:
    """``console_stats`` from groups counted for ``console_tally_query`` (the same result)."""
    counters = _Counters.of(config, now, since, window)
    feed_tallies(tallies, *counters.all())
    return counters.stats(now, since, window)


def console_stats(
    facts: Iterable[AssignmentFacts],
    config: Config,
    *,
    now: datetime,
    since: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> ConsoleStats:
    """Every statistic of the console from one pass over ``facts`` (every fact decided since
    ``facts_since(now, since, config.timezone)``). SLA, outcomes and write-backs cover the
    decisions since ``since``; the distribution covers today, this week and this month."""
    counters = _Counters.of(config, now, since, window)
    feed(facts, *counters.all())
    return counters.stats(now, since, window)


@dataclass(frozen=True)
class _Counters:
    """The console's four counters, fed from facts or from the store's tallies alike."""

    distribution: DistributionCounter
    sla: SlaCounter
    outcomes: OutcomeCounter
    writebacks: WritebackCounter

    @classmethod
    def of(cls, config: Config, now: datetime, since: datetime, window: timedelta) -> _Counters:
        return cls(
            DistributionCounter(config, now),
            SlaCounter(now, since, (r.id for r in config.reps.values() if r.active)),
            OutcomeCounter(now, since, window),
            WritebackCounter(since),
        )

    def all(self) -> tuple[Counter, ...]:
        return (self.distribution, self.sla, self.outcomes, self.writebacks)

    def stats(self, now: datetime, since: datetime, window: timedelta) -> ConsoleStats:
        return ConsoleStats(
            now=now,
            since=since,
            window=window,
            distribution=self.distribution.result(),
            sla=self.sla.result(),
            outcomes={g: self.outcomes.result(g) for g in GROUPINGS},
            writebacks=self.writebacks.result(),
        )
