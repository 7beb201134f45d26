"""The SLA sweep and queues, end to end (``leadrelay sweep --once`` against the faked
Salesforce API): a lead parked in a queue is unowned, so its pick-up SLA runs; picked up by a
rep it settles; left in the queue past its pick-up time it escalates, never rotating inside
the queue."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import TUESDAY_10AM, config_data, rep
from fakes.hubspot_api import fake_hubspot  # noqa: F401 (fixture)
from fakes.salesforce_api import REP_USERS, fake_salesforce  # noqa: F401 (fixture)
from sweep_helpers import OWNER_IDS

from connector.cli import main
from workflows.config_loader import load_config
from workflows.model import Lead
from workflows.router import Router
from workflows.sqlite_store import SqliteStore

NURTURE_ID = "00G5g000004NuRtEAK"
QUEUED, PICKED_UP, OWNED = "00Q5g00000Q0001AAA", "00Q5g00000Q0002AAA", "00Q5g00000Q0003AAA"
FLOW = [
    {"name": "purchased", "when": {"source": "Purchased List"}, "assign": {"queue": "nurture"}},
    {"name": "everyone", "assign": {"pool": "team"}},
]


def write_config(tmp_path: Path, *, escalate_to: dict[str, Any] | None) -> Path:
    sla: dict[str, Any] = {"first_touch": "2h", "clock": "wall", "max_reassignments": 2}
    if escalate_to is not None:
        sla["escalate_to"] = escalate_to
    data = config_data(
        reps=[rep(name, salesforce_user_id=user) for name, user in REP_USERS.items()],
        queues={"nurture": {"salesforce": NURTURE_ID, "first_touch": "30m"}},
        flow=FLOW,
        sla=sla,
        salesforce={"org_ids": ["00D5g000004SbAxEAK"]},
        store=f"sqlite:///{tmp_path / 'state.sqlite'}",
    )
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def route(config_path: Path, fake, leads: dict[str, str]) -> None:
    """Route each lead (id -> LeadSource) as the outbound endpoint does; the fake org then
    holds it with the owner written."""
    config = load_config(config_path)
    store = SqliteStore(Path(config.store_url.removeprefix("sqlite:///")))
    try:
        router = Router(config, store)
        for lead_id, source in leads.items():
            lead = Lead(id=lead_id, crm="salesforce", source=source)
            owner = router.route(lead, TUESDAY_10AM, source="salesforce").decision.owner_crm_id
            fake.leads[lead_id] = {
                "Id": lead_id, "OwnerId": owner, "Status": "Open - Not Contacted",
                "IsConverted": False, "IsDeleted": False, "LastActivityDate": None,
                "Company": "Acme", "LastName": "Doe", "LeadSource": source,
            }  # fmt: skip
    finally:
        store.close()


def sweep(config_path: Path, minutes: int) -> str:
    now = (TUESDAY_10AM + timedelta(minutes=minutes)).isoformat()
    result = CliRunner().invoke(
        main, ["--config", str(config_path), "sweep", "--once", "--now", now]
    )
    assert result.exit_code == 0, result.output
    return result.output


def log(config_path: Path) -> list[dict[str, Any]]:
    config = load_config(config_path)
    store = SqliteStore(Path(config.store_url.removeprefix("sqlite:///")))
    try:
        return [record.to_dict() | {"sla": record.extra.get("sla")} for record in store.log()]
    finally:
        store.close()


@pytest.fixture
def config_path(tmp_path: Path, fake_salesforce) -> Path:
    fake_salesforce.queues.add(NURTURE_ID)
    return write_config(tmp_path, escalate_to={"rep": "chen"})


def test_a_lead_left_in_its_queue_past_the_pick_up_time_escalates_and_one_picked_up_settles(
    fake_salesforce, config_path
):
    route(
        config_path,
        fake_salesforce,
        {QUEUED: "Purchased List", PICKED_UP: "Purchased List", OWNED: "Web"},
    )
    assert [fake_salesforce.leads[i]["OwnerId"] for i in (QUEUED, PICKED_UP, OWNED)] == [
        NURTURE_ID, NURTURE_ID, REP_USERS["alice"],
    ]  # fmt: skip
    fake_salesforce.owners[PICKED_UP] = REP_USERS["bob"]  # bob took it from the queue

    before = sweep(config_path, 29)  # the queue's own 30 minutes, not the rule's 2 hours
    assert "0 due assignments" in before
    output = sweep(config_path, 31)

    assert "2 due assignments: 1 escalated, 1 picked_up" in output
    assert f"salesforce {PICKED_UP}" in output and "picked up from queue nurture by bob" in output
    # Escalated to chen (the SLA's escalate_to), never rotated to a pool member.
    assert fake_salesforce.owners == {PICKED_UP: REP_USERS["bob"], QUEUED: REP_USERS["chen"]}
    assert all(w.headers.get("Sforce-Auto-Assign") == "FALSE" for w in fake_salesforce.writes)
    rows = log(config_path)
    escalation = rows[-1]
    assert (escalation["lead_id"], escalation["new_owner"], escalation["source"]) == (
        QUEUED, "chen", "sweep",
    )  # fmt: skip
    assert escalation["decision"]["reason"].startswith(
        "not picked up from queue nurture within 30 min on the wall clock: escalated; "
    )
    queued_sla = rows[0]["sla"]
    assert (queued_sla["queue"], queued_sla["status"], queued_sla["outcome"]) == (
        "nurture", "settled", "escalated",
    )  # fmt: skip
    assert rows[1]["sla"]["outcome"] == "picked_up"
    # The rep-owned lead keeps its own 2-hour SLA, still open.
    assert rows[2]["sla"]["status"] == "open"
    assert "0 due assignments" in sweep(config_path, 32)  # nothing left due, nothing twice


def test_a_queue_without_escalate_to_is_settled_and_the_lead_stays_in_the_queue(
    tmp_path, fake_salesforce
):
    fake_salesforce.queues.add(NURTURE_ID)
    config_path = write_config(tmp_path, escalate_to=None)
    route(config_path, fake_salesforce, {QUEUED: "Purchased List"})
    output = sweep(config_path, 31)
    assert "1 due assignments: 1 no_rotation" in output
    assert "not picked up from queue nurture within 30 min on the wall clock; no escalate_to" in (
        output
    )
    assert fake_salesforce.writes == []  # nothing rotated, nothing written


def test_an_sla_may_escalate_into_a_queue_which_is_then_never_due(tmp_path, fake_salesforce):
    managers = "00G5g000004MgRsEAK"
    fake_salesforce.queues.add(managers)
    path = write_config(tmp_path, escalate_to={"queue": "managers"})
    data = yaml.safe_load(path.read_text())
    data["queues"]["managers"] = {"salesforce": managers}
    data["sla"]["max_reassignments"] = 0
    path.write_text(yaml.safe_dump(data))
    route(path, fake_salesforce, {OWNED: "Web"})  # alice's, with the rule's 2 hours

    output = sweep(path, 121)
    assert "1 due assignments: 1 escalated" in output and "-> queue managers" in output
    assert fake_salesforce.owners == {OWNED: managers}
    escalation = log(path)[-1]
    assert (escalation["decision"]["outcome"], escalation["decision"]["queue"]) == (
        "queued", "managers",
    )  # fmt: skip
    assert escalation["sla"]["status"] == "escalated"  # an escalation is never due again
    assert "0 due assignments" in sweep(path, 24 * 60)


def test_hubspot_a_contact_taken_from_the_holding_owner_settles_one_left_there_escalates(
    tmp_path, fake_hubspot
):
    data = config_data(
        reps=[rep(name, hubspot_owner_id=owner) for name, owner in OWNER_IDS.items()],
        queues={"nurture": {"hubspot_owner_id": "150", "first_touch": "30m"}},
        flow=[{"name": "all", "assign": {"queue": "nurture"}}],
        sla={"first_touch": "2h", "clock": "wall", "escalate_to": {"rep": "chen"}},
        store=f"sqlite:///{tmp_path / 'state.sqlite'}",
    )
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    store = SqliteStore(Path(config.store_url.removeprefix("sqlite:///")))
    try:
        router = Router(config, store)
        for contact in ("501", "502"):
            lead = Lead(id=contact, crm="hubspot", object_type="contact")
            owner = router.route(lead, TUESDAY_10AM, source="hubspot").decision.owner_crm_id
            fake_hubspot.add_contact(contact, hubspot_owner_id=owner, hs_lead_status="NEW")
    finally:
        store.close()
    fake_hubspot.contacts["502"]["hubspot_owner_id"] = "101"  # alice took it from the inbox

    output = sweep(path, 31)
    assert "2 due assignments: 1 escalated, 1 picked_up" in output
    assert "picked up from queue nurture by alice" in output
    assert fake_hubspot.contacts["501"]["hubspot_owner_id"] == "103"  # chen, the escalation
    assert fake_hubspot.contacts["502"]["hubspot_owner_id"] == "101"


def test_a_queue_salesforce_refuses_is_named_in_the_sweeps_report(tmp_path, fake_salesforce):
    # The managers queue is not one the org lets own Leads: Salesforce refuses it for good.
    path = write_config(tmp_path, escalate_to={"queue": "managers"})
    data = yaml.safe_load(path.read_text())
    data["queues"]["managers"] = {"salesforce": "00G5g000004MgRsEAK"}
    data["sla"]["max_reassignments"] = 0
    path.write_text(yaml.safe_dump(data))
    route(path, fake_salesforce, {OWNED: "Web"})

    now = (TUESDAY_10AM + timedelta(minutes=121)).isoformat()
    result = CliRunner().invoke(main, ["--config", str(path), "sweep", "--once", "--now", now])
    assert result.exit_code == 3, result.output
    assert "salesforce refused queue managers as the new owner, so it stays with" in result.output
    assert "None" not in result.output
