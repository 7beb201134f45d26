"""The router: flows, targets, else chains, fallback, and the decisions it explains."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import TUESDAY_10AM, at, lead, owners, rep

from workflows.model import Lead

ENTERPRISE_FLOW = [
    {
        "name": "enterprise",
        "when": {"employees": {"gte": 1000}},
        "flow": [
            {"name": "enterprise-na", "when": {"country": {"in": ["US", "CA"]}},
             "assign": {"pool": "big"}},
            {"name": "enterprise-rest", "assign": {"rep": "chen"}},
        ],
    },
    {"name": "spanish", "when": {"language": "es"},
     "assign": {"pool": "team", "require": {"languages": ["es"]}}},
    {"name": "everyone", "assign": {"pool": "team"}},
]  # fmt: skip


def enterprise_router(make_router):
    return make_router(
        reps=[rep("alice", languages=["en", "es"]), rep("bob"), rep("chen"), rep("dana")],
        pools={
            "team": {"members": ["alice", "bob", "chen"], "strategy": "round_robin"},
            "big": {"members": ["dana"], "strategy": "round_robin"},
        },
        flow=ENTERPRISE_FLOW,
    )


def test_nested_flow_reports_the_whole_rule_path(make_router):
    router = enterprise_router(make_router)
    decision = router.route(lead(employees=5000, country="ca"), TUESDAY_10AM).decision
    assert (decision.rep_id, decision.rule) == ("dana", "enterprise/enterprise-na")
    decision = router.route(lead("L2", employees=5000, country="DE"), TUESDAY_10AM).decision
    assert (decision.rep_id, decision.rule) == ("chen", "enterprise/enterprise-rest")


def test_language_requirement_skips_reps_who_do_not_speak_it(make_router):
    router = enterprise_router(make_router)
    owners(router, 1)  # alice had the last turn: bob and chen are next in the cycle
    decision = router.route(lead("L9", language="ES"), TUESDAY_10AM).decision
    assert decision.rep_id == "alice"
    assert decision.skipped == {"bob": "does not speak es", "chen": "does not speak es"}


def test_no_matching_rule_goes_to_fallback(make_router):
    router = make_router(
        flow=[{"name": "us", "when": {"country": "US"}, "assign": {"rep": "chen"}}]
    )
    decision = router.route(lead(country="FR"), TUESDAY_10AM).decision
    assert (decision.rep_id, decision.rule, decision.outcome) == ("bob", "fallback", "assigned")
    assert decision.reason.startswith("no rule matched")


def test_else_target_is_tried_when_the_first_yields_nobody(make_router):
    router = make_router(
        reps=[rep("alice", out_of_office=["2026-11-24"]), rep("bob"), rep("chen")],
        flow=[{"name": "vip", "assign": {"rep": "alice", "else": {"rep": "chen"}}}],
    )
    decision = router.route(lead(), TUESDAY_10AM).decision
    assert (decision.rep_id, decision.rule) == ("chen", "vip")
    assert decision.skipped == {"alice": "out of office 2026-11-24"}


def test_fallback_takes_the_lead_regardless_of_hours_when_nobody_works(make_router):
    office = "Mon-Fri 09:00-17:00"
    saturday = at("2026-11-28 10:00")
    router = make_router(
        reps=[rep("alice", hours=office), rep("bob", hours=office), rep("chen", hours=office)]
    )
    decision = router.route(lead(), saturday).decision
    assert (decision.rep_id, decision.rule, decision.outcome) == ("bob", "fallback", "assigned")
    assert "regardless of availability" in decision.reason
    assert set(decision.skipped) == {"alice", "chen"}


def test_inactive_fallback_leaves_the_lead_unassigned_with_a_reason(make_router):
    router = make_router(
        reps=[rep("alice", active=False), rep("bob", active=False), rep("chen", active=False)]
    )
    decision = router.route(lead(), TUESDAY_10AM).decision
    assert (decision.rep_id, decision.outcome) == (None, "unassigned")
    assert "rep bob skipped: inactive" in decision.reason


def test_account_owner_target_routes_to_the_rep_who_owns_the_account(make_router):
    router = make_router(
        reps=[rep("alice", hubspot_owner_id="101"), rep("bob", hubspot_owner_id="102"),
              rep("chen", hubspot_owner_id=103)],
        flow=[{"name": "accounts", "when": {"account_owner": {"exists": True}},
               "assign": {"account_owner": True, "else": {"pool": "team"}}},
              {"name": "everyone", "assign": {"pool": "team"}}],
    )  # fmt: skip
    decision = router.route(lead(crm="hubspot", account_owner="103"), TUESDAY_10AM).decision
    assert (decision.rep_id, decision.owner_crm_id, decision.rule) == ("chen", "103", "accounts")
    stranger = router.route(lead("L2", crm="hubspot", account_owner="555"), TUESDAY_10AM).decision
    assert stranger.rep_id == "alice"
    assert "account owner: 555 is not a rep in app.yaml" in stranger.reason


def test_salesforce_account_owner_matches_15_and_18_character_ids(make_router):
    router = make_router(
        reps=[rep("alice", salesforce_user_id="005000000000001AAA"), rep("bob"), rep("chen")],
        flow=[{"name": "accounts", "assign": {"account_owner": True}}],
    )
    sf_lead = lead(crm="salesforce", account_owner="005000000000001")
    decision = router.route(sf_lead, TUESDAY_10AM).decision
    assert (decision.rep_id, decision.owner_crm_id) == ("alice", "005000000000001AAA")


def test_previous_owner_is_sticky_by_email_then_by_domain(make_router):
    router = make_router(
        flow=[{"name": "sticky", "assign": {"previous_owner": True, "else": {"pool": "team"}}}]
    )
    first = router.route(lead("L1", email="pat@acme.com"), TUESDAY_10AM).decision
    assert first.rep_id == "alice" and "previous owner: none on record" in first.reason
    owners(router, 1, email="x@other.com")  # bob
    assert router.route(lead("L3", email="PAT@acme.com"), TUESDAY_10AM).decision.rep_id == "alice"
    assert router.route(lead("L4", email="sam@acme.com"), TUESDAY_10AM).decision.rep_id == "alice"


def test_free_mail_domains_are_never_sticky(make_router):
    router = make_router(
        flow=[{"name": "sticky", "assign": {"previous_owner": True, "else": {"pool": "team"}}}]
    )
    picks = [router.route(lead(f"L{i}", email=f"p{i}@gmail.com"), TUESDAY_10AM).decision.rep_id
             for i in range(3)]  # fmt: skip
    assert picks == ["alice", "bob", "chen"]


def test_keep_leaves_the_current_owner_and_counts_no_assignment(make_router, store):
    router = make_router(
        flow=[{"name": "owned", "when": {"owner": {"exists": True}}, "assign": {"keep": True}},
              {"name": "everyone", "assign": {"pool": "team"}}]
    )  # fmt: skip
    decision = router.route(lead(owner="777"), TUESDAY_10AM).decision
    assert (decision.outcome, decision.owner_crm_id, decision.rep_id) == ("kept", "777", None)
    assert owners(router, 1) == ["alice"]
    assert [r.decision.outcome for r in store.log()] == ["kept", "assigned"]


def test_excluded_reps_are_skipped_with_a_reason(make_router):
    router = make_router()
    decision = router.route(lead(), TUESDAY_10AM, exclude=frozenset({"alice"})).decision
    assert decision.rep_id == "bob"
    assert decision.skipped == {"alice": "excluded: previously owned this lead"}


def test_working_hours_follow_the_dst_change(make_router):
    router = make_router(
        reps=[rep("alice", hours="Mon-Fri 09:00-17:00", timezone="Europe/London"), rep("bob")],
        pools={"team": {"members": ["alice", "bob"], "strategy": "first_available"}},
    )
    # 13:30 UTC is 09:30 New York time on both Mondays below. London moved its clocks on
    # 2026-10-25 and New York on 2026-11-01: in the week between, London is only 4 hours ahead.
    between = at("2026-10-26 09:30")  # 13:30 in London: alice works
    after = at("2026-11-02 09:30")  # 14:30 in London: alice works
    late = at("2026-10-26 12:45")  # 16:45 in London: alice works
    later = at("2026-11-02 12:45")  # 17:45 in London: alice has gone home
    assert [router.route(lead(f"L{i}"), t).decision.rep_id
            for i, t in enumerate([between, after, late, later])] == [
        "alice", "alice", "alice", "bob"]  # fmt: skip


def test_decision_is_a_plain_record_in_the_log(make_router, store):
    router = make_router()
    router.route(Lead.from_dict({"id": "L1", "employees": "1,200", "x_custom": "y"}), TUESDAY_10AM)
    (record,) = store.log()
    assert record.decision.candidates == ["alice"]
    assert record.to_dict()["decision"]["rule"] == "everyone"


def test_daily_count_follows_each_reps_local_day(make_router):
    router = make_router(
        reps=[rep("alice", daily_cap=2, timezone="Asia/Tokyo"), rep("bob")],
        pools={"team": {"members": ["alice", "bob"], "strategy": "first_available"}},
    )
    evening = at("2026-11-24 09:00")  # 23:00 in Tokyo
    assert owners(router, 3, when=evening) == ["alice", "alice", "bob"]
    assert owners(router, 1, when=evening + timedelta(hours=1, minutes=5)) == ["alice"]


def test_rep_without_an_owner_id_in_the_leads_crm_is_skipped(make_router):
    router = make_router(
        reps=[rep("alice"), rep("bob", hubspot_owner_id="102"), rep("chen", hubspot_owner_id="103")]
    )
    decision = router.route(lead(crm="hubspot"), TUESDAY_10AM).decision
    assert (decision.rep_id, decision.owner_crm_id) == ("bob", "102")
    assert decision.skipped == {"alice": "has no hubspot owner id in app.yaml"}


def test_entry_names_a_pool_or_a_rule_even_when_they_share_a_name(make_router):
    router = make_router(
        pools={
            "team": {"members": ["alice", "bob", "chen"], "strategy": "round_robin"},
            "vip": {"members": ["chen"], "strategy": "round_robin"},
        },
        flow=[
            {"name": "vip", "flow": [{"name": "big", "assign": {"rep": "bob"}}]},
            {"name": "everyone", "assign": {"pool": "team"}},
        ],
    )
    assert router.config.entry_points() == ["pool:team", "pool:vip", "rule:vip", "rule:everyone"]
    by_rule = router.route(lead("L1"), TUESDAY_10AM, entry="rule:vip").decision
    by_pool = router.route(lead("L2"), TUESDAY_10AM, entry="pool:vip").decision
    bare = router.route(lead("L3"), TUESDAY_10AM, entry="vip").decision  # a pool wins
    assert [(d.rep_id, d.rule) for d in (by_rule, by_pool, bare)] == [
        ("bob", "vip/big"), ("chen", "pool:vip"), ("chen", "pool:vip")
    ]  # fmt: skip


def test_a_bad_request_fails_alone_and_the_others_in_its_batch_are_decided(make_router, store):
    from datetime import datetime

    from workflows.router import RouteRequest

    router = make_router()
    naive = datetime(2026, 11, 24, 10, 0)
    with pytest.raises(LookupError, match="no pool named 'nope'"):
        router.route_many(
            [
                RouteRequest(lead("good"), TUESDAY_10AM),
                RouteRequest(lead("bad-entry"), TUESDAY_10AM, entry="pool:nope"),
            ]
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        router.route(lead("naive"), naive)
    assert [r.lead_id for r in store.log()] == ["good"]


def test_many_threads_each_get_their_own_answer_promptly(make_router):
    import threading

    router = make_router()
    answers: dict[str, str | None] = {}

    def work(n: int) -> None:
        for i in range(40):
            key = f"t{n}-{i}"
            answers[key] = router.route(
                lead(key), TUESDAY_10AM, idempotency_key=key
            ).decision.rep_id

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 240 and set(answers.values()) == {"alice", "bob", "chen"}


def test_a_store_that_cannot_open_a_transaction_fails_the_route_with_its_error(
    make_router, store, monkeypatch
):
    from workflows.errors import StoreError

    router = make_router()

    def refuse():
        raise StoreError("store opened in another process; open it again after fork")

    monkeypatch.setattr(store, "transaction", refuse)
    with pytest.raises(StoreError, match="open it again after fork"):
        router.route(lead("L1"), TUESDAY_10AM)
    monkeypatch.undo()
    assert router.route(lead("L2"), TUESDAY_10AM).decision.rep_id == "alice"
