"""Reassigning a departing rep's book: batches, resuming after an interruption, nothing twice."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import TUESDAY_10AM, lead, rep

from workflows.errors import CrmError
from workflows.reassign import Owned, Reassignment
from workflows.router import Router
from workflows.store import LogQuery


class FakeCrm:
    """Lead owners in a CRM: lists a rep's book, writes owners, can fail on command."""

    def __init__(self, owners: dict[str, str]) -> None:
        self.owners = dict(owners)
        self.written: list[str] = []  # lead ids, once per successful write
        self.write_calls = 0
        self.fail_writes_from_call: int | None = None  # this write call and later ones fail
        self.fail_listing_after: int | None = None  # leads listed before the listing fails
        self.stale: set[str] = set()  # listed as the rep's even once moved (search lag)
        self.closed: dict[str, str] = {}
        self.markers: dict[str, str] = {}

    def book(self, rep_id: str):
        listed = 0
        for lead_id, owner in sorted(self.owners.items()):
            if owner != rep_id and lead_id not in self.stale:
                continue
            if self.fail_listing_after is not None and listed >= self.fail_listing_after:
                raise CrmError("search answered 503", retryable=True)
            listed += 1
            yield Owned(
                lead(lead_id, owner=rep_id),
                self.closed.get(lead_id),
                self.markers.get(lead_id, ""),
            )

    def write(self, batch):
        self.write_calls += 1
        if (
            self.fail_writes_from_call is not None
            and self.write_calls >= self.fail_writes_from_call
        ):
            raise CrmError("CRM answered 503", retryable=True)
        for item, decision in batch:
            self.owners[item.id] = decision.owner_crm_id
            self.written.append(item.id)
        return {item.id: None for item, _ in batch}


def alice_leaves(make_config, store, **overrides) -> Router:
    data = {"reps": [rep("alice", active=False), rep("bob"), rep("chen")], **overrides}
    return Router(make_config(**data), store)


def job(router: Router, **options) -> Reassignment:
    return Reassignment(router, "alice", TUESDAY_10AM, batch_size=3, **options)


def statuses(outcomes) -> Counter:
    return Counter(outcome.status for outcome in outcomes)


def test_every_lead_of_the_rep_moves_in_batches_and_is_logged(make_config, store):
    router = alice_leaves(make_config, store)
    crm = FakeCrm({f"L{i}": "alice" for i in range(7)} | {"X1": "bob"})
    outcomes = list(job(router).run(crm.book("alice"), crm.write))
    assert statuses(outcomes) == {"reassigned": 7}
    assert crm.write_calls == 3  # batches of 3, 3 and 1
    assert sorted(crm.written) == [f"L{i}" for i in range(7)]
    assert "alice" not in [crm.owners[f"L{i}"] for i in range(7)]
    assert Counter(crm.owners[f"L{i}"] for i in range(7)) == {"bob": 4, "chen": 3}
    log = list(store.log())
    assert [r.source for r in log] == ["reassign"] * 7
    assert all(r.previous_owner == "alice" for r in log)


def test_interrupted_listing_is_resumed_and_nothing_is_done_twice(make_config, store):
    router = alice_leaves(make_config, store)
    crm = FakeCrm({f"L{i}": "alice" for i in range(8)})
    crm.fail_listing_after = 4
    first = job(router).run(crm.book("alice"), crm.write)
    with pytest.raises(CrmError):
        list(first)
    assert sorted(crm.written) == ["L0", "L1", "L2", "L3"]  # what was listed, then stop
    crm.fail_listing_after = None
    again = list(job(router).run(crm.book("alice"), crm.write))
    assert statuses(again) == {"reassigned": 4}
    assert sorted(crm.written) == [f"L{i}" for i in range(8)]  # each once
    assert len(list(store.log())) == 8


def test_failed_writes_are_finished_by_the_next_run_with_the_same_decisions(make_config, store):
    router = alice_leaves(make_config, store)
    crm = FakeCrm({f"L{i}": "alice" for i in range(7)})
    crm.fail_writes_from_call = 2
    first = list(job(router).run(crm.book("alice"), crm.write))
    assert statuses(first) == {"reassigned": 3, "failed": 4}
    decided = {r.lead_id: r.new_owner for r in store.log()}
    crm.fail_writes_from_call = None
    again = list(job(router).run(crm.book("alice"), crm.write))
    assert statuses(again) == {"reassigned": 4}
    assert sorted(crm.written) == [f"L{i}" for i in range(7)]
    assert {r.lead_id: r.new_owner for r in store.log()} == decided  # no new decisions
    assert {lead_id: crm.owners[lead_id] for lead_id in decided} == decided


def test_a_stale_listing_of_a_moved_lead_writes_nothing(make_config, store):
    router = alice_leaves(make_config, store)
    crm = FakeCrm({"L1": "alice", "L2": "alice"})
    list(job(router).run(crm.book("alice"), crm.write))
    crm.stale = {"L1", "L2"}  # HubSpot's search index still shows alice for a few seconds
    again = list(job(router).run(crm.book("alice"), crm.write))
    assert statuses(again) == {"already_done": 2}
    assert crm.write_calls == 1 and len(list(store.log())) == 2


def test_a_lead_given_back_to_the_rep_later_is_reassigned_again(make_config, store):
    router = alice_leaves(make_config, store)
    crm = FakeCrm({"L1": "alice"})
    list(job(router).run(crm.book("alice"), crm.write))
    # Months later alice is back, gets the lead from leadrelay, and leaves again.
    back = Router(make_config(flow=[{"name": "a", "assign": {"rep": "alice"}}]), store)
    assert back.route(lead("L1"), TUESDAY_10AM, source="api").decision.rep_id == "alice"
    crm.owners["L1"] = "alice"
    again = list(job(router).run(crm.book("alice"), crm.write))
    assert statuses(again) == {"reassigned": 1}
    assert crm.written == ["L1", "L1"]


def test_a_new_crm_marker_means_a_new_assignment_to_reassign(make_config, store):
    router = alice_leaves(make_config, store)
    crm = FakeCrm({"L1": "alice"})
    crm.markers["L1"] = "2026-01-05T10:00:00Z"
    list(job(router).run(crm.book("alice"), crm.write))
    crm.owners["L1"] = "alice"  # a manager gave it back by hand; HubSpot dates the change
    crm.markers["L1"] = "2026-06-01T09:00:00Z"
    assert statuses(job(router).run(crm.book("alice"), crm.write)) == {"reassigned": 1}


def test_a_lead_nobody_can_take_stays_and_is_tried_again_next_run(make_config, store):
    nobody = {"reps": [rep("alice", active=False), rep("bob", active=False), rep("chen")],
              "pools": {"pair": {"members": ["alice", "bob"]}},
              "flow": [{"name": "x", "assign": {"pool": "pair"}}],
              "fallback": {"rep": "alice"}}  # fmt: skip
    crm = FakeCrm({"L1": "alice"})
    first = list(job(Router(make_config(**nobody), store)).run(crm.book("alice"), crm.write))
    assert statuses(first) == {"kept": 1} and crm.written == []
    assert "nobody could take it" in first[0].detail
    nobody["reps"][1] = rep("bob")  # bob is back
    again = list(job(Router(make_config(**nobody), store)).run(crm.book("alice"), crm.write))
    assert statuses(again) == {"reassigned": 1} and crm.owners["L1"] == "bob"
    assert next(store.log(LogQuery(lead="L1", since=None))).idempotency_key.endswith(":0")
    assert list(store.log())[-1].idempotency_key.endswith(":0:try1")


def test_only_open_leaves_closed_leads_alone(make_config, store):
    router = alice_leaves(make_config, store)
    crm = FakeCrm({"L1": "alice", "L2": "alice"})
    crm.closed["L2"] = "lifecycle stage customer"
    outcomes = list(job(router, only_open=True).run(crm.book("alice"), crm.write))
    skipped = [(o.lead.id, o.detail) for o in outcomes if o.status == "skipped"]
    assert skipped == [("L2", "lifecycle stage customer")]
    assert crm.written == ["L1"] and crm.owners["L2"] == "alice"


def test_to_a_pool_routes_from_that_pool(make_config, store):
    data = {"pools": {"team": {"members": ["alice", "bob", "chen"]},
                      "solo": {"members": ["chen"]}}}  # fmt: skip
    router = alice_leaves(make_config, store, **data)
    crm = FakeCrm({"L1": "alice", "L2": "alice"})
    outcomes = list(job(router, entry="pool:solo").run(crm.book("alice"), crm.write))
    assert [o.decision.rep_id for o in outcomes] == ["chen", "chen"]
    assert {o.decision.rule for o in outcomes} == {"pool:solo"}


def test_a_stop_asked_for_mid_batch_finishes_that_batch_and_decides_no_other(make_config, store):
    router = alice_leaves(make_config, store)
    crm = FakeCrm({f"L{i}": "alice" for i in range(7)})
    asked = []
    reassignment = job(router, stopping=lambda: bool(asked))
    batches = reassignment.batches(crm.book("alice"), crm.write)
    first = next(batches)
    asked.append("SIGINT")  # arrives while the first batch is printed
    assert list(batches) == []
    assert statuses(first) == {"reassigned": 3} and sorted(crm.written) == ["L0", "L1", "L2"]
    assert len(list(store.log())) == 3  # nothing else decided: the next run sees the rest


def test_a_stop_asked_for_while_a_batch_is_listed_moves_nothing_of_it(make_config, store):
    router = alice_leaves(make_config, store)
    crm = FakeCrm({f"L{i}": "alice" for i in range(7)})
    listed = []

    def book():
        for item in crm.book("alice"):
            listed.append(item.lead.id)
            yield item

    reassignment = job(router, stopping=lambda: len(listed) >= 2)
    assert list(reassignment.batches(book(), crm.write)) == []
    assert crm.written == [] and list(store.log()) == []
