"""Pool strategies and their fairness, driven through the router as a CRM request would."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from itertools import groupby

from conftest import TUESDAY_10AM, at, lead, owners, rep


def pool(strategy: str, members: list[str], **extra: object) -> dict:
    return {"team": {"members": members, "strategy": strategy, **extra}}


def test_round_robin_cycles_in_config_order(make_router):
    router = make_router()
    assert owners(router, 7) == ["alice", "bob", "chen", "alice", "bob", "chen", "alice"]


def test_round_robin_skips_rep_on_vacation_and_says_why(make_router):
    router = make_router(
        reps=[rep("alice"), rep("bob", out_of_office=["2026-11-23..2026-11-27"]), rep("chen")]
    )
    results = [router.route(lead(f"L{i}"), TUESDAY_10AM).decision for i in range(4)]
    assert [d.rep_id for d in results] == ["alice", "chen", "alice", "chen"]
    assert results[1].skipped == {"bob": "out of office 2026-11-23..2026-11-27"}
    assert "skipped bob: out of office" in results[1].reason


def test_weighted_spread_follows_weights_exactly_in_every_cycle(make_router):
    router = make_router(
        reps=[rep("alice", weight=5), rep("bob", weight=3), rep("chen", weight=2)],
        pools=pool("weighted", ["alice", "bob", "chen"]),
    )
    picks = owners(router, 50)
    for cycle in range(5):
        counts = Counter(picks[cycle * 10 : cycle * 10 + 10])
        assert counts == {"alice": 5, "bob": 3, "chen": 2}


def test_weighted_interleaves_instead_of_running(make_router):
    router = make_router(
        reps=[rep("alice", weight=5), rep("bob", weight=1), rep("chen", weight=1)],
        pools=pool("weighted", ["alice", "bob", "chen"]),
    )
    picks = owners(router, 14)
    assert picks[:7] == picks[7:] == ["alice", "alice", "bob", "alice", "chen", "alice", "alice"]
    longest_run = max(len(list(run)) for _, run in groupby(picks[:7]))
    assert longest_run == 2  # a plain weighted cycle would give alice 5 in a row


def test_least_loaded_picks_the_rep_with_fewest_leads_today(make_router):
    router = make_router(
        pools={
            "team": {"members": ["alice", "bob", "chen"], "strategy": "least_loaded"},
            "solo": {"members": ["alice"], "strategy": "round_robin"},
        },
        flow=[
            {"name": "vip", "when": {"source": "vip"}, "assign": {"pool": "solo"}},
            {"name": "everyone", "assign": {"pool": "team"}},
        ],
    )
    owners(router, 2, source="vip")  # alice already has two leads today from another pool
    assert owners(router, 4) == ["bob", "chen", "bob", "chen"]
    assert owners(router, 3) == ["alice", "bob", "chen"]


def test_least_loaded_counts_restart_on_a_new_local_day(make_router):
    router = make_router(pools=pool("least_loaded", ["alice", "bob"]))
    owners(router, 3)  # alice 2, bob 1
    assert owners(router, 1, when=TUESDAY_10AM + timedelta(days=1)) == ["alice"]


def test_first_available_prefers_the_first_member_who_can_take_it(make_router):
    router = make_router(
        reps=[rep("alice", hours="Mon-Fri 13:00-17:00"), rep("bob"), rep("chen")],
        pools=pool("first_available", ["alice", "bob", "chen"]),
    )
    assert owners(router, 3) == ["bob", "bob", "bob"]
    assert owners(router, 2, when=at("2026-11-24 14:00")) == ["alice", "alice"]


def test_daily_cap_skips_rep_until_midnight_in_their_own_time_zone(make_router):
    router = make_router(
        reps=[
            rep("alice", daily_cap=1, timezone="America/Los_Angeles"),
            rep("bob"),
        ],
        pools=pool("round_robin", ["alice", "bob"]),
    )
    # 23:30 in New York is 20:30 in Los Angeles: still alice's day.
    late = at("2026-11-24 23:30")
    results = [router.route(lead(f"L{i}"), late).decision for i in range(3)]
    assert [d.rep_id for d in results] == ["alice", "bob", "bob"]
    assert results[2].skipped["alice"] == "daily cap reached: 1 of 1 today"
    # 03:30 New York is 00:30 in Los Angeles: a new day for alice.
    assert owners(router, 1, when=at("2026-11-25 03:30")) == ["alice"]


def test_forfeit_means_a_returning_rep_gets_no_extra_leads(make_router):
    router = make_router(
        reps=[rep("alice", out_of_office=["2026-11-24"]), rep("bob"), rep("chen")],
    )
    assert set(owners(router, 6)) == {"bob", "chen"}  # alice away on Tuesday
    back = owners(router, 9, when=TUESDAY_10AM + timedelta(days=1))
    assert Counter(back) == {"alice": 3, "bob": 3, "chen": 3}


def test_credit_gives_a_returning_rep_a_bounded_interleaved_catch_up(make_router):
    router = make_router(
        reps=[rep("alice", out_of_office=["2026-11-24"]), rep("bob"), rep("chen")],
        pools=pool("round_robin", ["alice", "bob", "chen"], absence="credit", max_credit=2),
    )
    owners(router, 12)  # alice misses four turns but may be owed two at most
    back = owners(router, 9, when=TUESDAY_10AM + timedelta(days=1))
    assert Counter(back) == {"alice": 5, "bob": 2, "chen": 2}
    catch_ups = [i for i, who in enumerate(back) if who == "alice"]
    assert all(b - a > 1 for a, b in zip(catch_ups, catch_ups[1:], strict=False)), back


def test_credit_is_earned_only_for_absence_not_for_a_full_cap(make_router):
    router = make_router(
        reps=[rep("alice", daily_cap=2), rep("bob"), rep("chen")],
        pools=pool("round_robin", ["alice", "bob", "chen"], absence="credit", max_credit=3),
    )
    assert Counter(owners(router, 12))["alice"] == 2  # capped after two, skipped four times
    next_day = owners(router, 3, when=TUESDAY_10AM + timedelta(days=1))
    assert Counter(next_day) == {"alice": 1, "bob": 1, "chen": 1}


def test_rep_added_to_round_robin_pool_gets_one_turn_per_cycle(make_router, make_config):
    router = make_router()
    owners(router, 30)
    router.config = make_config(
        reps=[rep("alice"), rep("bob"), rep("chen"), rep("dana")],
        pools=pool("round_robin", ["alice", "bob", "chen", "dana"]),
    )
    assert Counter(owners(router, 8)) == {"alice": 2, "bob": 2, "chen": 2, "dana": 2}


def test_rep_added_to_least_loaded_pool_starts_level_instead_of_being_flooded(
    make_router, make_config
):
    router = make_router(pools=pool("least_loaded", ["alice", "bob", "chen"]))
    owners(router, 15)  # five each today
    router.config = make_config(
        reps=[rep("alice"), rep("bob"), rep("chen"), rep("dana")],
        pools=pool("least_loaded", ["alice", "bob", "chen", "dana"]),
    )
    assert Counter(owners(router, 8)) == {"alice": 2, "bob": 2, "chen": 2, "dana": 2}


def test_rep_added_to_weighted_pool_starts_level(make_router, make_config):
    weighted = pool("weighted", ["alice", "bob"])
    router = make_router(reps=[rep("alice"), rep("bob"), rep("chen")], pools=weighted)
    owners(router, 41)
    router.config = make_config(
        reps=[rep("alice"), rep("bob"), rep("chen")],
        pools=pool("weighted", ["alice", "bob", "chen"]),
    )
    assert Counter(owners(router, 9)) == {"alice": 3, "bob": 3, "chen": 3}


def test_least_loaded_rep_back_from_a_morning_off_is_level_not_flooded(make_router):
    router = make_router(
        reps=[rep("alice", hours="Mon-Fri 13:00-18:00"), rep("bob"), rep("chen")],
        pools=pool("least_loaded", ["alice", "bob", "chen"]),
    )
    owners(router, 10, when=at("2026-11-24 10:00"))  # alice not working yet
    afternoon = owners(router, 6, when=at("2026-11-24 14:00"))
    assert Counter(afternoon) == {"alice": 2, "bob": 2, "chen": 2}


def test_pool_nobody_can_take_goes_to_else_then_fallback(make_router):
    router = make_router(
        reps=[rep("alice", active=False), rep("bob"), rep("chen", active=False)],
        pools={
            "team": {"members": ["alice", "chen"], "strategy": "round_robin"},
            "backup": {"members": ["chen"], "strategy": "round_robin"},
        },
        flow=[{"name": "everyone", "assign": {"pool": "team", "else": {"pool": "backup"}}}],
    )
    decision = router.route(lead(), TUESDAY_10AM).decision
    assert decision.rep_id == "bob"
    assert decision.rule == "fallback"
    assert decision.skipped == {
        "alice": "inactive: marked active: false in app.yaml",
        "chen": "inactive: marked active: false in app.yaml",
    }
    assert "pool team (round_robin): nobody available" in decision.reason
    assert "pool backup (round_robin): nobody available" in decision.reason


def test_credit_is_paid_in_a_pool_of_two(make_router):
    router = make_router(
        reps=[rep("alice", out_of_office=["2026-11-24"]), rep("bob"), rep("chen")],
        pools=pool("round_robin", ["alice", "bob"], absence="credit", max_credit=3),
    )
    owners(router, 6)  # alice misses three turns
    back = owners(router, 9, when=TUESDAY_10AM + timedelta(days=1))
    assert Counter(back) == {"alice": 6, "bob": 3}  # three own turns and three owed


def test_removing_a_round_robin_member_does_not_skip_the_next_one(make_router, make_config):
    members = ["alice", "bob", "chen", "dana"]
    router = make_router(
        reps=[rep(r) for r in members],
        pools=pool("round_robin", members),
        fallback={"rep": "alice"},
    )
    assert owners(router, 2) == ["alice", "bob"]
    router.config = make_config(
        reps=[rep(r) for r in members],
        pools=pool("round_robin", ["alice", "chen", "dana"]),
        fallback={"rep": "alice"},
    )
    assert owners(router, 3) == ["chen", "dana", "alice"]
