"""The SLA sweep: settle what was handled, rotate what was not, then escalate; never twice."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from conftest import TUESDAY_10AM
from sweep_helpers import OWNER_IDS, MemoryCrm, sla_config_data

from workflows.delivery import Inbound, deliver
from workflows.errors import CrmError
from workflows.model import Lead
from workflows.router import Router
from workflows.sweep import LeadState, sweep

LATER = TUESDAY_10AM + timedelta(minutes=20)


@pytest.fixture
def crm() -> MemoryCrm:
    return MemoryCrm()


@pytest.fixture
def router(make_router) -> Router:
    return make_router(sla_config_data())


def assign(router: Router, crm: MemoryCrm, lead_id: str, when=TUESDAY_10AM) -> str:
    """Route a new HubSpot contact as a workflow action would; the CRM now shows the owner."""
    lead = Lead(id=lead_id, crm="hubspot", object_type="contact")
    result = router.route(lead, when, source="hubspot", idempotency_key=f"cb-{lead_id}")
    owner = result.decision.rep_id
    assert owner is not None
    crm.add(lead_id, OWNER_IDS[owner])
    return owner


def run(router, crm, now=LATER, **kwargs):
    actions = []
    summary = sweep(router, {"hubspot": crm}, now, on_action=actions.append, **kwargs)
    return summary, actions


def sla_of(router: Router, lead_id: str) -> list[dict]:
    return [
        record.extra.get("sla", {})
        for record in router.store.log()
        if record.lead_id == lead_id and "sla" in record.extra
    ]


def test_nothing_is_swept_before_its_deadline(router, crm):
    assign(router, crm, "C1")
    summary, actions = run(router, crm, now=TUESDAY_10AM + timedelta(minutes=14))
    assert summary.total == 0 and actions == [] and crm.reads == []


def test_contacted_in_time_is_settled_with_time_to_first_touch(router, crm):
    assign(router, crm, "C1")
    crm.touch("C1", TUESDAY_10AM + timedelta(minutes=7))
    summary, (action,) = run(router, crm)
    assert action.action == "contacted"
    assert action.ttft == timedelta(minutes=7)
    (state,) = sla_of(router, "C1")
    assert state["status"] == "settled" and state["ttft_s"] == 420
    assert crm.written == []
    assert run(router, crm, now=LATER + timedelta(hours=1))[0].total == 0


def test_contact_before_the_assignment_does_not_count(router, crm):
    assign(router, crm, "C1")
    crm.touch("C1", TUESDAY_10AM - timedelta(days=3))  # the previous owner's call
    _, (action,) = run(router, crm)
    assert action.action == "rotated"


def test_status_moved_past_new_counts_as_contacted(router, crm):
    assign(router, crm, "C1")
    crm.set("C1", status="IN_PROGRESS", status_contacted=True)
    _, (action,) = run(router, crm)
    assert action.action == "contacted" and action.ttft is None


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        ({"converted": True}, "converted"),
        ({"deleted": True}, "deleted"),
        ({"disqualified": True, "status": "UNQUALIFIED"}, "disqualified"),
    ],
)
def test_closed_leads_are_settled(router, crm, state, outcome):
    assign(router, crm, "C1")
    crm.set("C1", **state)
    _, (action,) = run(router, crm)
    assert action.action == outcome
    assert crm.written == []


def test_lead_the_crm_no_longer_knows_is_settled_as_deleted(router, crm):
    assign(router, crm, "C1")
    del crm.states["C1"]
    _, (action,) = run(router, crm)
    assert action.action == "deleted"


def test_owner_changed_by_a_person_is_a_manual_override_never_fought(router, crm):
    assign(router, crm, "C1")
    crm.set("C1", owner="555")
    _, (action,) = run(router, crm)
    assert action.action == "manual_override"
    assert crm.written == []
    assert run(router, crm, now=LATER + timedelta(days=1))[0].total == 0


def test_untouched_lead_rotates_through_the_same_rule_with_a_new_deadline(router, crm):
    first = assign(router, crm, "C1")
    _, (action,) = run(router, crm)
    assert action.action == "rotated" and action.owner == first
    assert action.new_owner not in (first, "maria", None)
    assert crm.written == [("C1", OWNER_IDS[action.new_owner])]
    records = [r for r in router.store.log() if r.lead_id == "C1"]
    assert [r.source for r in records] == ["hubspot", "sweep"]
    rotated = records[1]
    assert rotated.decision.rule == "everyone"
    assert rotated.previous_owner == first
    deadline = datetime.fromisoformat(rotated.extra["sla"]["deadline"])
    assert deadline == LATER + timedelta(minutes=15)
    assert records[0].extra["sla"]["outcome"] == "rotated"
    assert records[0].extra["sla"]["next_record"] == rotated.id


def test_rep_who_failed_once_is_excluded_then_escalation_after_the_cap(router, crm):
    owners = [assign(router, crm, "C1")]
    now = LATER
    for _ in range(2):
        _, (action,) = run(router, crm, now=now)
        assert action.action == "rotated"
        assert action.new_owner not in owners
        owners.append(action.new_owner)
        now += timedelta(minutes=20)
    _, (action,) = run(router, crm, now=now)
    assert action.action == "escalated" and action.new_owner == "maria"
    assert crm.written[-1] == ("C1", OWNER_IDS["maria"])
    # Escalated: never rotated again, however long nobody calls.
    assert run(router, crm, now=now + timedelta(days=3))[0].total == 0
    last = [r for r in router.store.log() if r.lead_id == "C1"][-1]
    assert last.extra["sla"]["status"] == "escalated"
    assert len(set(owners)) == 3


def test_cap_without_escalate_to_stops_rotating(make_router, crm):
    router = make_router(sla_config_data(max_reassignments=0, escalate_to=None))
    assign(router, crm, "C1")
    _, (action,) = run(router, crm)
    assert action.action == "cap_reached"
    assert crm.written == []
    assert run(router, crm, now=LATER + timedelta(days=1))[0].total == 0


def two_rep_team(**sla) -> dict:
    data = sla_config_data(max_reassignments=5, **sla)
    data["fallback"] = {"pool": "team"}
    data["pools"]["team"]["members"] = ["alice", "bob"]
    return data


def test_a_lead_everyone_has_owned_escalates_before_the_cap(make_router, crm):
    router = make_router(two_rep_team())
    assert assign(router, crm, "C1") == "alice"
    assert run(router, crm)[1][0].new_owner == "bob"
    _, (action,) = run(router, crm, now=LATER + timedelta(minutes=20))

    assert (action.action, action.owner, action.new_owner) == ("escalated", "bob", "maria")
    assert "everyone it could rotate to has had it" in action.detail
    assert crm.written[-1] == ("C1", OWNER_IDS["maria"])
    rows = list(router.store.log())
    assert [r.new_owner for r in rows] == ["alice", "bob", "maria"]  # no "unassigned" row
    assert rows[-1].extra["sla"]["status"] == "escalated"
    assert run(router, crm, now=LATER + timedelta(days=3))[0].total == 0  # never due again


def test_a_dry_run_shows_the_escalation_of_a_lead_everyone_has_owned(make_router, crm):
    router = make_router(two_rep_team())
    assign(router, crm, "C1")
    run(router, crm)
    _, (action,) = run(router, crm, now=LATER + timedelta(minutes=20), dry_run=True)
    assert (action.action, action.new_owner) == ("escalated", "maria")
    assert len(list(router.store.log())) == 2 and len(crm.written) == 1


def test_nobody_left_and_no_escalate_to_leaves_the_lead_with_its_owner(make_router, crm):
    router = make_router(two_rep_team(escalate_to=None))
    assign(router, crm, "C1")
    run(router, crm)
    _, (action,) = run(router, crm, now=LATER + timedelta(minutes=20))

    assert action.action == "no_rotation" and action.new_owner is None
    assert action.detail.startswith("nobody to rotate to, so it stays with bob: ")
    assert crm.written == [("C1", OWNER_IDS["bob"])]  # the first rotation only
    rows = list(router.store.log())
    assert [r.new_owner for r in rows] == ["alice", "bob"]  # the log matches the CRM
    assert rows[-1].extra["sla"]["outcome"] == "no_rotation"
    assert run(router, crm, now=LATER + timedelta(days=3))[0].total == 0


def test_escalating_to_the_rep_who_has_it_moves_nothing(make_router, crm):
    data = sla_config_data(escalate_to={"rep": "alice"}, max_reassignments=0)
    router = make_router(data)
    assert assign(router, crm, "C1") == "alice"
    _, (action,) = run(router, crm)
    assert action.action == "no_rotation"
    assert "escalate_to gives it to its owner alice, so it stays" in action.detail
    assert crm.written == [] and len(list(router.store.log())) == 1


def test_dry_run_prints_but_changes_nothing(router, crm):
    assign(router, crm, "C1")
    before = list(router.store.log())
    summary, (action,) = run(router, crm, dry_run=True)
    assert action.action == "rotated" and action.new_owner
    assert crm.written == []
    assert [r.id for r in router.store.log()] == [r.id for r in before]
    assert run(router, crm)[1][0].action == "rotated"  # still due for the real sweep


def test_crm_failing_mid_sweep_next_sweep_finishes_and_nothing_twice(router, crm):
    for number in range(250):
        assign(router, crm, f"C{number}")
    crm.fail_reads_after = 1  # the first read call (100 leads) works, then HubSpot fails
    summary, _ = run(router, crm)
    assert summary.counts["rotated"] == 100
    assert summary.counts["failed"] == 150
    crm.fail_reads_after = None
    summary, _ = run(router, crm, now=LATER + timedelta(minutes=1))
    assert summary.counts["rotated"] == 150 and summary.counts["failed"] == 0
    written = [lead for lead, _ in crm.written]
    assert sorted(written) == sorted(f"C{n}" for n in range(250))  # each written once


def test_write_failing_mid_sweep_is_written_next_time_without_deciding_again(router, crm):
    assign(router, crm, "C1")
    crm.fail_writes = True
    summary, (action,) = run(router, crm)
    assert action.action == "failed"
    decided = [r for r in router.store.log() if r.lead_id == "C1"]
    assert len(decided) == 2  # the rotation is decided and recorded, not yet written
    crm.fail_writes = False
    _, (action,) = run(router, crm, now=LATER + timedelta(minutes=2))
    assert action.action == "rotated"
    assert [r.id for r in router.store.log() if r.lead_id == "C1"] == [r.id for r in decided]
    assert crm.written == [("C1", OWNER_IDS[decided[1].new_owner])]


def test_one_unreadable_lead_does_not_stop_the_others(router, crm):
    assign(router, crm, "C1")
    assign(router, crm, "C2")
    original = crm.read

    def read(ids):
        states = original(ids)
        states.pop("C1")
        return states

    crm.read = read  # type: ignore[method-assign]
    summary, actions = run(router, crm)
    assert {a.lead_id: a.action for a in actions} == {"C1": "failed", "C2": "rotated"}


def test_batches_of_exactly_the_api_maximum_and_one_more(router, crm):
    for number in range(101):
        assign(router, crm, f"C{number}")
    summary, _ = run(router, crm)
    assert summary.counts["rotated"] == 101
    assert [len(ids) for ids in crm.reads] == [100, 1]
    assert crm.write_calls == 1  # one page: one call to the writer (it chunks by 100)


def test_a_new_assignment_by_a_crm_supersedes_the_open_sla(router, crm):
    assign(router, crm, "C1")
    lead = Lead(id="C1", crm="hubspot", object_type="contact", owner=crm.states["C1"].owner)
    result = router.route(lead, TUESDAY_10AM + timedelta(minutes=5), source="hubspot")
    crm.set("C1", owner=OWNER_IDS[result.decision.rep_id])
    summary, actions = run(router, crm, now=TUESDAY_10AM + timedelta(minutes=16))
    assert summary.total == 0  # the first SLA ended with the reassignment
    states = sla_of(router, "C1")
    assert states[0]["status"] == "superseded" and states[1]["status"] == "open"


def test_leads_from_no_crm_are_settled_as_untracked(router, crm):
    router.route(Lead(id="api-1"), TUESDAY_10AM, source="api")
    summary, (action,) = run(router, crm)
    assert action.action == "untracked"
    assert run(router, crm)[0].total == 0


def test_crm_without_credentials_leaves_leads_due(router, crm):
    assign(router, crm, "C1")
    summary = sweep(router, {}, LATER)
    assert summary.counts == {"skipped": 1}
    assert run(router, crm)[1][0].action == "rotated"


def test_rule_with_sla_disabled_is_never_swept(make_router, crm):
    data = sla_config_data()
    data["flow"][0]["sla"] = {"enabled": False}
    router = make_router(data)
    assign(router, crm, "C1")
    assert run(router, crm, now=LATER + timedelta(days=2))[0].total == 0


def test_sweep_refuses_a_naive_now(router, crm):
    with pytest.raises(ValueError):
        sweep(router, {"hubspot": crm}, LATER.replace(tzinfo=None))


def test_reader_error_type_is_crm_error():
    assert issubclass(CrmError, Exception)
    assert LeadState(None, deleted=True).deleted


def test_rule_renamed_since_the_assignment_rotates_through_the_whole_flow(make_config, store, crm):
    before = sla_config_data()
    first = assign(Router(make_config(before), store), crm, "C1")
    after = sla_config_data()
    after["flow"][0]["name"] = "all-leads"
    _, (action,) = run(Router(make_config(after), store), crm)
    assert action.action == "rotated" and action.new_owner not in (first, None)


def test_rotations_and_escalations_are_notified_after_the_write(make_router, crm):
    router = make_router(sla_config_data(max_reassignments=1))
    assign(router, crm, "C1")
    events: list[tuple[str, list[str], int]] = []

    def notify(event, deliveries):
        events.append((event, [d.status for d in deliveries], len(crm.written)))

    sweep(router, {"hubspot": crm}, LATER, notify=notify)
    sweep(router, {"hubspot": crm}, LATER + timedelta(minutes=20), notify=notify)
    assert events == [("reassigned", ["written"], 1), ("escalated", ["written"], 2)]


def test_an_owner_the_crm_refused_for_good_is_not_waited_on_forever(router, crm):
    lead = Lead(id="C1", crm="hubspot", object_type="contact")
    crm.add("C1", "")
    crm.refused_owners.add(OWNER_IDS["alice"])
    (delivery,) = deliver(
        router, [Inbound(lead, "cb-C1")], TUESDAY_10AM, source="hubspot", write=crm.writer()
    )
    assert delivery.status == "failed" and delivery.done

    _, (action,) = run(router, crm)
    assert action.action == "write_failed"
    assert "refused the owner" in action.detail and "inactive" in action.detail
    assert run(router, crm, now=LATER + timedelta(days=30))[0].total == 0  # settled, not waiting


def test_a_rotation_the_crm_refuses_for_good_is_not_logged_as_a_move(router, crm):
    assign(router, crm, "C1")  # alice
    crm.refused_owners.add(OWNER_IDS["bob"])
    _, (action,) = run(router, crm)

    assert action.action == "write_failed" and action.new_owner is None
    assert action.detail.startswith("hubspot refused bob as the new owner, so it stays with alice")
    assert crm.states["C1"].owner == OWNER_IDS["alice"] and crm.written == []
    first, rotation = router.store.log()
    assert first.extra["sla"]["outcome"] == "write_failed"
    assert rotation.extra["sla"]["outcome"] == "write_failed"
    assert run(router, crm, now=LATER + timedelta(days=2))[0].total == 0
