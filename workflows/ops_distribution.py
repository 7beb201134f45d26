"""Leads assigned per rep today, this week and this month, beside each pool's target shares.

Pure: facts, the config and ``now`` in; counts and shares out. Periods start at midnight in
app.yaml's ``timezone`` (UTC unless it names another), weeks on Monday.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from workflows.config import Config, Pool
from workflows.model import Rep
from workflows.store import AssignmentFacts

Period = Literal["today", "week", "month"]
PERIODS: tuple[Period, ...] = get_args(Period)


def period_starts(now: datetime, timezone: str) -> dict[Period, datetime]:
    """Where today, this week (from Monday) and this month began, at midnight in ``timezone``
    (in UTC: comparing a million UTC times with these is several times faster than with
    times in a ZoneInfo zone)."""
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    days = {
        "today": today,
        "week": today - timedelta(days=today.weekday()),
        "month": today.replace(day=1),
    }
    return {
        period: datetime.combine(days[period], time(0), tzinfo=zone).astimezone(UTC)
        for period in PERIODS
    }


def target_shares(pool: Pool, reps: Mapping[str, Rep]) -> dict[str, float | None]:
    """Each member's fair share of the pool's leads, by its strategy, among active members.

    ``weighted``: weight / sum of the active members' weights; ``round_robin`` and
    ``least_loaded``: equal shares; ``first_available`` is a priority list, with no share to
    aim at (None). An inactive member's target is 0.
    """
    active = [m for m in pool.members if m in reps and reps[m].active]
    shares: dict[str, float | None] = {m: 0.0 for m in pool.members}
    if not active:
        return shares
    if pool.strategy == "first_available":
        return {m: None for m in pool.members}
    weights = {m: reps[m].weight if pool.strategy == "weighted" else 1 for m in active}
    total = sum(weights.values())
    shares.update({m: weights[m] / total for m in active})
    return shares


@dataclass(frozen=True)
class PoolMember:
    rep: str
    active: bool
    counts: dict[Period, int]
    shares: dict[Period, float | None]  # of the leads of this pool's members, that period
    target: float | None


@dataclass(frozen=True)
class PoolDistribution:
    pool: str
    strategy: str
    members: list[PoolMember]
    totals: dict[Period, int]  # leads of this pool's members (all their leads, see below)


@dataclass(frozen=True)
class RepCounts:
    rep: str
    counts: dict[Period, int]


@dataclass(frozen=True)
class Distribution:
    """Leads assigned per rep today, this week and this month, overall and pool by pool.

    The log records the rule that decided, not the pool, so a member's count in a pool's
    table is all the leads they were assigned: a rep in two pools shows in both tables with
    the same count, beside each pool's own target share.
    """

    timezone: str
    starts: dict[Period, datetime]
    reps: list[RepCounts]
    totals: dict[Period, int]
    pools: list[PoolDistribution]


def assigned_to(fact: AssignmentFacts) -> str | None:
    """The rep a record gave its lead to; None for a kept or unassigned decision."""
    return fact.new_owner if fact.outcome == "assigned" else None


class DistributionCounter:
    """Counts facts into a ``Distribution`` (feed it every fact since the month or week began)."""

    def __init__(self, config: Config, now: datetime) -> None:
        self.config, self.now = config, now
        self.starts = period_starts(now, config.timezone)
        self._starts = tuple(self.starts.items())
        self.counts: dict[str, dict[Period, int]] = {}

    def add(self, fact: AssignmentFacts) -> None:
        rep = assigned_to(fact)
        if rep is None or fact.decided_at > self.now:
            return
        counts = self.counts.get(rep)
        if counts is None:
            counts = self.counts[rep] = dict.fromkeys(PERIODS, 0)
        for period, start in self._starts:
            if fact.decided_at >= start:
                counts[period] += 1

    def result(self) -> Distribution:
        reps = self.config.reps
        # Every configured rep, then anyone the log names who is no longer in app.yaml.
        names = [*reps, *sorted(set(self.counts) - set(reps))]
        counts = {name: self.counts.get(name, dict.fromkeys(PERIODS, 0)) for name in names}
        pools = [self._pool(pool, counts) for pool in self.config.pools.values()]
        totals = {p: sum(c[p] for c in counts.values()) for p in PERIODS}
        rows = [RepCounts(name, counts[name]) for name in names]
        return Distribution(self.config.timezone, self.starts, rows, totals, pools)

    def _pool(self, pool: Pool, counts: Mapping[str, dict[Period, int]]) -> PoolDistribution:
        targets = target_shares(pool, self.config.reps)
        zero = dict.fromkeys(PERIODS, 0)
        totals = {p: sum(counts.get(m, zero)[p] for m in pool.members) for p in PERIODS}
        members = []
        for name in pool.members:
            mine = counts.get(name, zero)
            shares = {p: (mine[p] / totals[p] if totals[p] else None) for p in PERIODS}
            rep = self.config.reps.get(name)
            active = rep is not None and rep.active
            members.append(PoolMember(name, active, dict(mine), shares, targets[name]))
        return PoolDistribution(pool.id, pool.strategy, members, totals)
