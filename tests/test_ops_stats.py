"""The console's statistics against hand-computed values: intervals, periods, target shares,
distribution, SLA per rep and outcomes (pure: facts built here, ``now`` passed in)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import config_data, rep
from workflows.config import Config
from workflows.ops_distribution import DistributionCounter, period_starts, target_shares
from workflows.ops_stats import OutcomeCounter, SlaCounter, console_stats, facts_since
from workflows.stats_intervals import MIN_TO_JUDGE, median_with_interval, p90, wilson
from workflows.store import AssignmentFacts

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # Tuesday 22:00 in New York
_ids = iter(range(1, 1_000_000))


def fact(owner: str | None, decided_at: datetime, **fields: Any) -> AssignmentFacts:
    values: dict[str, Any] = {
        "id": next(_ids),
        "decided_at": decided_at,
        "crm": "hubspot",
        "object_type": "contact",
        "lead_id": f"L{next(_ids)}",
        "source": "hubspot",
        "rule": "everyone",
        "outcome": "assigned" if owner else "unassigned",
        "previous_owner": None,
        "new_owner": owner,
        **fields,
    }
    return AssignmentFacts(**values)


# --- intervals -------------------------------------------------------------------------------


def test_wilson_interval_of_three_in_ten_matches_the_formula() -> None:
    # p = 0.3, z = 1.96: centre (0.3 + z²/20) / (1 + z²/10) = 0.3555, half-width
    # z * sqrt(0.3 * 0.7 / 10 + z²/400) / (1 + z²/10) = 0.2477.
    three_in_ten = wilson(3, 10)
    assert three_in_ten.rate == pytest.approx(0.3)
    assert three_in_ten.low == pytest.approx(0.1078, abs=1e-4)
    assert three_in_ten.high == pytest.approx(0.6032, abs=1e-4)
    assert not three_in_ten.judged


def test_wilson_interval_of_none_in_five_starts_at_zero() -> None:
    # Upper bound z² / (n + z²) = 3.8415 / 8.8415.
    none_in_five = wilson(0, 5)
    assert none_in_five.low == pytest.approx(0.0, abs=1e-12)
    assert none_in_five.high == pytest.approx(0.4345, abs=1e-4)


def test_no_leads_have_no_rate_and_no_interval() -> None:
    empty = wilson(0, 0)
    assert (empty.rate, empty.low, empty.high) == (None, None, None)


def test_a_rate_over_enough_leads_is_judged() -> None:
    assert wilson(MIN_TO_JUDGE // 2, MIN_TO_JUDGE).judged
    assert not wilson(1, MIN_TO_JUDGE - 1).judged


def test_median_interval_of_ten_values_is_the_second_and_ninth() -> None:
    # P(X(2) <= m <= X(9)) = 1 - 2 * P(Binomial(10, 1/2) <= 1) = 1 - 22/1024 = 0.979;
    # the narrower X(3)..X(8) covers only 1 - 2 * 56/1024 = 0.891 < 0.95.
    median = median_with_interval([10.0, 9, 8, 7, 6, 5, 4, 3, 2, 1])
    assert (median.count, median.value, median.low, median.high) == (10, 5.5, 2, 9)


def test_five_values_are_too_few_for_a_median_interval() -> None:
    # Even X(1)..X(5) covers only 1 - 2/32 = 0.9375.
    median = median_with_interval([1.0, 2, 3, 4, 5])
    assert (median.value, median.low, median.high) == (3, None, None)


def test_p90_interpolates_between_order_statistics() -> None:
    assert p90([float(v) for v in range(1, 11)]) == pytest.approx(9.1)  # 1 + 0.9 * 9
    assert p90([42.0]) == 42.0
    assert p90([]) is None


# --- periods and target shares ---------------------------------------------------------------


def test_periods_start_at_local_midnight_in_the_configured_zone() -> None:
    starts = period_starts(NOW, "America/New_York")  # Tuesday 24 November, 22:00 local
    assert starts["today"] == datetime(2026, 11, 24, 5, 0, tzinfo=UTC)  # EST: UTC-5
    assert starts["week"] == datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # Monday
    assert starts["month"] == datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # still EDT at 00:00


def test_periods_in_utc_when_the_config_names_no_zone() -> None:
    starts = period_starts(NOW, "UTC")  # Wednesday 25 November, 03:00
    assert starts["today"] == datetime(2026, 11, 25, tzinfo=UTC)
    assert starts["week"] == datetime(2026, 11, 23, tzinfo=UTC)


def team(make_config: Callable[..., Config], **pool: Any) -> Config:
    data = config_data(
        reps=[rep("alice", weight=3), rep("bob"), rep("chen"), rep("dana", active=False)],
        pools={"team": {"members": ["alice", "bob", "chen", "dana"], **pool}},
    )
    return make_config(data)


def test_weighted_target_is_weight_over_the_active_members_weights(
    make_config: Callable[..., Config],
) -> None:
    config = team(make_config, strategy="weighted")
    shares = target_shares(config.pools["team"], config.reps)
    assert shares == {"alice": 0.6, "bob": 0.2, "chen": 0.2, "dana": 0.0}


def test_round_robin_target_is_an_equal_share_whatever_the_weights(
    make_config: Callable[..., Config],
) -> None:
    config = team(make_config, strategy="round_robin")
    shares = target_shares(config.pools["team"], config.reps)
    assert shares == pytest.approx({"alice": 1 / 3, "bob": 1 / 3, "chen": 1 / 3, "dana": 0.0})


def test_a_priority_list_has_no_target_share(make_config: Callable[..., Config]) -> None:
    config = team(make_config, strategy="first_available")
    assert set(target_shares(config.pools["team"], config.reps).values()) == {None}


# --- distribution ----------------------------------------------------------------------------


def test_distribution_counts_each_period_and_each_pools_share(
    make_config: Callable[..., Config],
) -> None:
    config = team(make_config, strategy="weighted")
    earlier_this_month = datetime(2026, 11, 10, 15, tzinfo=UTC)
    monday = datetime(2026, 11, 23, 15, tzinfo=UTC)
    today = datetime(2026, 11, 24, 15, tzinfo=UTC)
    counter = DistributionCounter(config, NOW)
    for owner, when in [
        ("alice", today),
        ("alice", today),
        ("alice", monday),
        ("bob", today),
        ("bob", earlier_this_month),
        ("chen", earlier_this_month),
        ("gone", monday),  # a rep since removed from app.yaml
    ]:
        counter.add(fact(owner, when))
    counter.add(fact("chen", today, outcome="kept"))  # moved nothing
    counter.add(fact(None, today))  # unassigned
    counter.add(fact("chen", datetime(2026, 10, 31, 23, tzinfo=UTC)))  # last month
    dist = counter.result()
    counts = {row.rep: row.counts for row in dist.reps}
    assert counts["alice"] == {"today": 2, "week": 3, "month": 3}
    assert counts["bob"] == {"today": 1, "week": 1, "month": 2}
    assert counts["chen"] == {"today": 0, "week": 0, "month": 1}
    assert counts["gone"] == {"today": 0, "week": 1, "month": 1}
    assert dist.totals == {"today": 3, "week": 5, "month": 7}
    (pool,) = dist.pools
    members = {m.rep: m for m in pool.members}
    assert pool.totals["week"] == 4  # alice 3 + bob 1 (gone is in no pool)
    assert members["alice"].shares["week"] == 0.75
    assert members["alice"].target == 0.6
    assert members["dana"].shares["week"] == 0.0 and not members["dana"].active


# --- SLA -------------------------------------------------------------------------------------


def test_sla_per_rep_counts_touches_rotations_escalations_and_open_breaches() -> None:
    day = NOW - timedelta(days=2)
    facts = [
        *(
            fact("alice", day, sla_status="settled", sla_outcome="contacted", ttft_s=60.0 * m)
            for m in range(1, 11)
        ),  # fmt: skip
        fact("alice", day, sla_status="settled", sla_outcome="rotated"),
        fact("alice", day, sla_status="settled", sla_outcome="escalated"),
        fact("alice", day, sla_status="open", sla_deadline=NOW - timedelta(minutes=5)),
        fact("alice", day, sla_status="open", sla_deadline=NOW + timedelta(minutes=5)),
        fact("alice", day),  # no SLA
        fact("mgr", day, sla_status="escalated"),
        fact("alice", NOW - timedelta(days=40), sla_status="settled", sla_outcome="rotated"),
    ]
    counter = SlaCounter(NOW, NOW - timedelta(days=30), ["alice", "bob"])
    for item in facts:
        counter.add(item)
    rows = {row.rep: row for row in counter.result()}
    alice = rows["alice"]
    assert (alice.leads, alice.under_sla) == (15, 14)
    assert alice.ttft.value == 330.0  # median of 60..600 s
    assert (alice.ttft.low, alice.ttft.high) == (120.0, 540.0)
    assert alice.p90_ttft_s == pytest.approx(546.0)  # 540 + 0.1 * 60
    assert (alice.rotated_away, alice.escalated_away, alice.open_breaches) == (2, 1, 1)
    assert rows["mgr"].escalations_received == 1
    assert rows["bob"].leads == 0 and rows["bob"].ttft.value is None


# --- outcomes --------------------------------------------------------------------------------


def test_conversion_counts_only_leads_old_enough_to_have_had_the_window() -> None:
    window = timedelta(days=30)
    old = NOW - timedelta(days=40)
    recent = NOW - timedelta(days=5)
    facts = [
        fact("alice", old, contacted_at=old, converted_at=old + timedelta(days=10)),
        fact("alice", old, contacted_at=old, converted_at=old + timedelta(days=35)),  # too late
        fact("alice", old),
        fact("alice", old, rule="enterprise/na", source="sweep"),
        fact("alice", recent, contacted_at=recent, converted_at=recent + timedelta(days=1)),
        fact("alice", recent),
        fact("bob", recent, contacted_at=recent, ttft_s=90.0),
    ]
    counter = OutcomeCounter(NOW, NOW - timedelta(days=90), window)
    for item in facts:
        counter.add(item)
    by_rep = {row.key: row for row in counter.result("rep")}
    alice = by_rep["alice"]
    assert alice.leads == 6
    assert (alice.contacted.hits, alice.contacted.count) == (3, 6)
    assert (alice.converted.hits, alice.converted.count) == (1, 4)  # the 4 decided 40 days ago
    assert alice.converted_recently == 1
    assert by_rep["bob"].ttft.value == 90.0
    by_rule = {row.key: row.leads for row in counter.result("rule")}
    assert by_rule == {"everyone": 6, "enterprise/na": 1}
    by_source = {row.key: row.leads for row in counter.result("source")}
    assert by_source == {"hubspot": 6, "sweep": 1}


def test_one_pass_gives_every_view_and_the_failed_write_backs(
    make_config: Callable[..., Config],
) -> None:
    config = make_config()  # alice, bob, chen in a round-robin pool; New York time
    since = NOW - timedelta(days=3)
    first_failure = NOW - timedelta(days=2)
    facts = [
        fact("alice", NOW - timedelta(days=20), writeback_status="failed"),  # before since
        fact("alice", first_failure, writeback_status="failed"),
        fact("bob", NOW - timedelta(hours=1), writeback_status="failed"),
        fact("chen", NOW - timedelta(hours=1), writeback_status="written"),
    ]
    stats = console_stats(facts, config, now=NOW, since=since)
    assert facts_since(NOW, since, config.timezone) == datetime(2026, 11, 1, 4, tzinfo=UTC)
    assert (stats.writebacks.failed, stats.writebacks.oldest) == (2, first_failure)
    assert {row.rep: row.counts["month"] for row in stats.distribution.reps} == {
        "alice": 2,
        "bob": 1,
        "chen": 1,
    }
    assert {row.rep: row.leads for row in stats.sla} == {"alice": 1, "bob": 1, "chen": 1}
    assert [row.leads for row in stats.outcomes["source"]] == [3]
