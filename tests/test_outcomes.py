"""Outcomes (contacted, converted, disqualified) recorded and joined to the decision that
routed the lead: by the sweep when it settles an SLA, and by the outcome watcher after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import TUESDAY_10AM
from sweep_helpers import OWNER_IDS, MemoryCrm, sla_config_data

from workflows.config import OutcomeSettings
from workflows.model import Lead
from workflows.outcome_watch import Found, watch_outcomes
from workflows.router import Router
from workflows.store import AssignmentQuery
from workflows.sweep import sweep

SETTINGS = OutcomeSettings(watch_for=timedelta(days=30), every=timedelta(minutes=15))
ZONE = "America/New_York"


@pytest.fixture
def crm() -> MemoryCrm:
    return MemoryCrm()


@pytest.fixture
def router(make_router) -> Router:
    return make_router(sla_config_data())


def assign(router: Router, crm: MemoryCrm, lead_id: str, when=TUESDAY_10AM, key="") -> int:
    """Route a HubSpot contact as a workflow action would; the CRM now shows the owner."""
    contact = Lead(id=lead_id, crm="hubspot", object_type="contact", owner=None)
    result = router.route(
        contact, when, source="hubspot", idempotency_key=key or f"cb-{lead_id}-{when}"
    )
    assert result.record is not None and result.decision.rep_id is not None
    owner = OWNER_IDS[result.decision.rep_id]
    if lead_id in crm.states:
        crm.set(lead_id, owner=owner)
    else:
        crm.add(lead_id, owner)
    return result.record.id


def watch(router: Router, crm: MemoryCrm, now: datetime, **kwargs) -> list[Found]:
    found: list[Found] = []
    watch_outcomes(router.store, {"hubspot": crm}, SETTINGS, ZONE, now,
                   on_found=found.append, **kwargs)  # fmt: skip
    return found


def at(minutes: float = 0, days: float = 0) -> datetime:
    return TUESDAY_10AM + timedelta(minutes=minutes, days=days)


def iso(moment: datetime) -> str:
    """As the store keeps outcome times: ISO text in UTC."""
    return moment.astimezone(UTC).isoformat()


# -- the sweep ----------------------------------------------------------------------------
def test_the_sweep_records_the_crms_contact_time_on_the_record_it_settles(router, crm):
    record = assign(router, crm, "C1")
    crm.touch("C1", at(7))
    sweep(router, {"hubspot": crm}, at(20))
    assert router.store.outcomes(record) == {"contacted_at": iso(at(7)), "checked_at": iso(at(20))}


def test_the_sweep_records_a_conversion_at_the_time_it_saw_it(router, crm):
    record = assign(router, crm, "C1")
    crm.set("C1", converted=True)
    sweep(router, {"hubspot": crm}, at(20))
    assert router.store.outcomes(record) == {"converted_at": iso(at(20)), "checked_at": iso(at(20))}


def test_a_status_past_new_counts_as_contacted_when_the_sweep_saw_it(router, crm):
    record = assign(router, crm, "C1")
    crm.set("C1", status="IN_PROGRESS", status_contacted=True)
    sweep(router, {"hubspot": crm}, at(20))
    assert (router.store.outcomes(record) or {}).get("contacted_at") == iso(at(20))


def test_a_sweep_dry_run_records_no_outcome(router, crm):
    record = assign(router, crm, "C1")
    crm.touch("C1", at(7))
    sweep(router, {"hubspot": crm}, at(20), dry_run=True)
    assert router.store.outcomes(record) is None


# -- the watcher --------------------------------------------------------------------------
def test_a_lead_converted_after_its_sla_settled_is_found_and_joined_to_its_routing_record(
    router, crm
):
    record = assign(router, crm, "C1")
    crm.touch("C1", at(7))
    sweep(router, {"hubspot": crm}, at(20))  # settled: contacted, no longer under an SLA
    crm.set("C1", converted=True)

    (found,) = watch(router, crm, at(days=3))

    assert (found.record_id, found.lead_id, found.owner) == (record, "C1", "alice")
    assert found.times == {"converted_at": iso(at(days=3))}
    assert router.store.outcomes(record) == {
        "contacted_at": iso(at(7)),
        "converted_at": iso(at(days=3)),
        "checked_at": iso(at(days=3)),
    }
    (facts,) = router.store.facts(AssignmentQuery())
    assert (facts.contacted_at, facts.converted_at) == (at(7), at(days=3))


def test_a_lead_routed_with_no_sla_is_watched_too(make_router, crm):
    router = make_router(sla_config_data(enabled=False))
    record = assign(router, crm, "C1")
    crm.set("C1", disqualified=True, status="UNQUALIFIED", status_contacted=True)
    (found,) = watch(router, crm, at(days=1))
    assert found.record_id == record and found.times == {"disqualified_at": iso(at(days=1))}


def test_the_first_time_seen_wins_across_passes(router, crm):
    record = assign(router, crm, "C1")
    crm.set("C1", status="WORKING", status_contacted=True)
    watch(router, crm, at(days=1))
    crm.touch("C1", at(days=1, minutes=30))  # a later call: not the first touch
    assert watch(router, crm, at(days=2)) == []
    outcomes = router.store.outcomes(record) or {}
    assert outcomes["contacted_at"] == iso(at(days=1))
    assert outcomes["checked_at"] == iso(at(days=2))


def test_a_lead_read_within_every_is_not_read_again(router, crm):
    assign(router, crm, "C1")
    watch(router, crm, at(days=1))
    watch(router, crm, at(days=1, minutes=14))
    assert crm.reads == [["C1"]]
    watch(router, crm, at(days=1, minutes=16))
    assert crm.reads == [["C1"], ["C1"]]


def test_a_converted_or_disqualified_lead_is_no_longer_read(router, crm):
    assign(router, crm, "C1")
    crm.set("C1", converted=True)
    watch(router, crm, at(days=1))
    watch(router, crm, at(days=2))
    assert crm.reads == [["C1"]]


def test_leads_decided_before_watch_for_are_not_read(router, crm):
    assign(router, crm, "C1")
    assert watch(router, crm, at(days=31)) == [] and crm.reads == []


def test_a_lead_routed_twice_gets_its_outcome_on_the_later_record(router, crm):
    first = assign(router, crm, "C1")
    second = assign(router, crm, "C1", when=at(days=1))
    crm.set("C1", converted=True)
    (found,) = watch(router, crm, at(days=2))
    assert found.record_id == second
    assert router.store.outcomes(first) is None


def test_a_contact_dated_before_the_later_record_belongs_to_the_owner_before(router, crm):
    first = assign(router, crm, "C1")
    second = assign(router, crm, "C1", when=at(days=1))
    crm.touch("C1", at(minutes=5 * 60))  # five hours after the first assignment
    (found,) = watch(router, crm, at(days=2))
    assert (found.record_id, found.times) == (first, {"contacted_at": iso(at(minutes=5 * 60))})
    assert (router.store.outcomes(second) or {}).get("contacted_at") is None


def test_the_watcher_spends_one_batch_read_per_batch(router, crm):
    crm.batch_size = 3
    for n in range(7):
        assign(router, crm, f"C{n}")
    watch(router, crm, at(days=1))
    assert [len(ids) for ids in crm.reads] == [3, 3, 1]


def test_a_failed_batch_is_read_again_next_pass_and_the_rest_goes_on(router, crm):
    crm.batch_size = 2
    for n in range(3):
        assign(router, crm, f"C{n}")
        crm.set(f"C{n}", converted=True)
    crm.fail_reads_after = 1  # the first batch is answered, the second fails
    found = watch(router, crm, at(days=1))
    assert len(found) == 2
    crm.fail_reads_after = None
    assert [f.lead_id for f in watch(router, crm, at(days=1, minutes=1))] == ["C2"]


def test_a_crm_without_a_reader_is_skipped_and_said_once(router, crm):
    assign(router, crm, "C1")
    assign(router, crm, "C2")
    skipped: list[tuple[str, int]] = []
    summary = watch_outcomes(router.store, {}, SETTINGS, ZONE, at(days=1),
                             on_skip=lambda crm_name, n: skipped.append((crm_name, n)))  # fmt: skip
    assert skipped == [("hubspot", 2)] and summary.skipped == {"hubspot": 2}
    assert router.store.outcomes(1) is None


def test_leads_from_no_crm_are_not_watched(router, crm):
    router.route(Lead(id="API1"), TUESDAY_10AM, source="api")
    skipped: list[str] = []
    summary = watch_outcomes(router.store, {}, SETTINGS, ZONE, at(days=1),
                             on_skip=lambda crm_name, n: skipped.append(crm_name))  # fmt: skip
    assert skipped == [] and summary.describe().startswith("0 lead(s) read")


def test_a_dry_run_records_nothing(router, crm):
    record = assign(router, crm, "C1")
    crm.set("C1", converted=True)
    (found,) = watch(router, crm, at(days=1), dry_run=True)
    assert found.describe(dry_run=True).endswith(f"would record converted at {iso(at(days=1))}")
    assert router.store.outcomes(record) is None


def test_a_salesforce_lead_sent_with_its_15_and_its_18_character_id_is_one_lead(make_router):
    router, crm = make_router(sla_config_data(enabled=False)), MemoryCrm(crm="salesforce")
    short, full = "00Q5g00000Lx1Ab", "00Q5g00000Lx1AbEAJ"
    first = router.route(Lead(id=short, crm="salesforce"), at(), source="salesforce").record
    later = router.route(Lead(id=full, crm="salesforce"), at(days=1), source="salesforce").record
    assert first is not None and later is not None
    crm.add(short, "", converted=True)
    found = watch_outcomes(router.store, {"salesforce": crm}, SETTINGS, ZONE, at(days=2))
    assert crm.reads == [[short]] and found.found["converted"] == 1
    assert router.store.outcomes(first.id) is None
    assert (router.store.outcomes(later.id) or {}).get("converted_at") == iso(at(days=2))


def test_a_contact_time_after_now_is_not_taken_as_a_first_touch(router, crm):
    record = assign(router, crm, "C1")
    crm.touch("C1", at(days=400))  # a CRM clock or a property gone wrong
    assert watch(router, crm, at(days=1)) == []
    assert router.store.outcomes(record) == {"checked_at": iso(at(days=1))}
