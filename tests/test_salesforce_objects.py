"""Contacts, Accounts, Opportunities and Cases through the Outbound Message and Flow endpoints:
routed by their own fields, written back to their own sObject. The real app, real
simple-salesforce, and the fake Salesforce REST API."""

from __future__ import annotations

import json
import os

import pytest
from conftest import FIXTURES
from fakes import salesforce_api
from fakes.salesforce_api import QUEUE_ID, REP_USERS, salesforce_config_data

from adapters.salesforce.api import write_owners
from adapters.salesforce.auth import connect
from adapters.salesforce.outbound_message import ACK
from connector.app import create_app
from workflows.model import Decision, Lead

fake_salesforce = salesforce_api.fake_salesforce  # the fixture, requested by name below

TOKEN = "flow-s3cret"
ALICE, BOB, CHEN = REP_USERS["alice"], REP_USERS["bob"], REP_USERS["chen"]
CASE_ID = "5005g00000Cs1AbAAJ"
OPPORTUNITY_ID = "0065g00000Op1AbAAJ"
POOLS = {
    "team": {"members": ["alice", "bob", "chen"], "strategy": "round_robin"},
    "support": {"members": ["chen"]},
    "big": {"members": ["bob"]},
}
FLOW = [
    {"name": "phone cases", "when": {"object": "case", "source": "Phone",
                                     "raw.Priority": "High"}, "assign": {"pool": "support"}},
    {"name": "big opportunities", "when": {"object": "opportunity", "raw.Amount": {"gte": 100000}},
     "assign": {"pool": "big"}},
    {"name": "everyone", "assign": {"pool": "team"}},
]  # fmt: skip


@pytest.fixture
def client(make_config, store, fake_salesforce, monkeypatch):
    monkeypatch.setenv("LEADRELAY_FLOW_TOKEN", TOKEN)
    config = make_config(salesforce_config_data(pools=POOLS, flow=FLOW))
    return create_app(config=config, store=store).test_client()


def outbound(client, body: bytes):
    return client.post("/salesforce/outbound", data=body, content_type="text/xml; charset=utf-8")


def flow(client, body: dict):
    return client.post("/salesforce/route", json=body, headers={"Authorization": f"Bearer {TOKEN}"})


def case_message() -> bytes:
    return (FIXTURES / "salesforce" / "case.xml").read_bytes()


def test_a_case_outbound_message_is_routed_by_its_origin_and_written_to_the_case(
    client, fake_salesforce, store
):
    response = outbound(client, case_message())
    assert (response.status_code, response.get_data(as_text=True)) == (200, ACK)
    (write,) = fake_salesforce.writes
    assert (write.sobject, write.lead_id, write.owner_id) == ("Case", CASE_ID, CHEN)
    (request,) = fake_salesforce.requests
    assert request.url.endswith(f"/sobjects/Case/{CASE_ID}")
    (row,) = store.log()
    assert (row.object_type, row.rule, row.previous_owner) == ("case", "phone cases", QUEUE_ID)
    # Salesforce redelivers until acked: the same notification routes and writes nothing again.
    assert outbound(client, case_message()).status_code == 200
    assert len(fake_salesforce.writes) == 1 and len(list(store.log())) == 1


def test_a_case_a_user_already_owns_keeps_its_owner(client, fake_salesforce, store):
    body = case_message().replace(QUEUE_ID.encode(), b"0055g00000Ab1CdAAJ")
    assert outbound(client, body).status_code == 200
    assert fake_salesforce.writes == []
    (row,) = store.log()
    assert row.decision.outcome == "kept"


def test_a_user_owned_contact_is_routed_since_no_queue_can_own_one(client, fake_salesforce):
    body = (FIXTURES / "salesforce" / "contact.xml").read_bytes()
    assert outbound(client, body).status_code == 200
    (write,) = fake_salesforce.writes
    assert (write.sobject, write.lead_id) == ("Contact", "0035g00000Zz9YyAAJ")


def test_an_outbound_message_of_an_object_leadrelay_does_not_route_is_refused(
    client, fake_salesforce, store
):
    response = outbound(client, case_message().replace(b"sf:Case", b"sf:Task"))
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "Notification[0].sObject" in text and "not Task" in text
    assert "Lead, Contact, Account, Opportunity, Case" in text
    assert fake_salesforce.requests == [] and list(store.log()) == []


def test_a_flow_opportunity_is_known_by_its_id_and_routed_on_its_amount(
    client, fake_salesforce, store
):
    body = {"Id": OPPORTUNITY_ID, "Name": "Hooli renewal", "StageName": "Prospecting",
            "Amount": 250000, "requestId": "opp-1", "writeBack": True}  # fmt: skip
    answer = flow(client, body).get_json()
    assert answer["objectType"] == "opportunity"
    assert (answer["rule"], answer["ownerId"], answer["writeStatus"]) == (
        "big opportunities", BOB, "written",
    )  # fmt: skip
    (write,) = fake_salesforce.writes
    assert (write.sobject, write.lead_id, write.owner_id) == ("Opportunity", OPPORTUNITY_ID, BOB)
    (row,) = store.log()
    assert (row.object_type, row.lead_id) == ("opportunity", OPPORTUNITY_ID)
    again = flow(client, body).get_json()  # a retried Flow: the first answer, no second write
    assert again["replayed"] is True and len(fake_salesforce.writes) == 1


def test_a_small_opportunity_goes_to_the_team(client, fake_salesforce):
    answer = flow(client, {"Id": OPPORTUNITY_ID, "Amount": 900}).get_json()
    assert (answer["rule"], answer["ownerId"]) == ("everyone", ALICE)
    assert fake_salesforce.requests == []  # writeBack false: the Flow sets OwnerId itself


def test_a_flow_id_with_an_unknown_prefix_is_400_naming_the_id(client, fake_salesforce, store):
    response = flow(client, {"Id": "00T5g00000Tk1AbAAJ", "Subject": "Call"})  # a Task
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["field"] == "Id"
    assert "500 Case" in answer["error"] and "00T5g00000Tk1AbAAJ" in answer["error"]
    assert fake_salesforce.requests == [] and list(store.log()) == []


@pytest.mark.parametrize(
    "record_id",
    [5005, "500", "5005g00000Cs1Ab!!J", "500/../0015g00000", " ", True, "00G5g000003Qe1A"],
)
def test_a_flow_id_that_is_no_routed_record_is_400(client, fake_salesforce, store, record_id):
    response = flow(client, {"Id": record_id, "writeBack": True})
    assert (response.status_code, response.get_json()["field"]) == (400, "Id")
    assert fake_salesforce.requests == [] and list(store.log()) == []


def test_a_mixed_batch_is_one_collections_call_with_each_records_own_type(fake_salesforce):
    records = [
        ("lead", "00Q5g0000000001EAA"),
        ("case", CASE_ID),
        ("opportunity", OPPORTUNITY_ID),
        ("account", "0015g00000Ac1AbAAJ"),
        ("contact", "0035g00000Zz9YyAAJ"),
    ]
    batch = [
        (Lead(id=rid, crm="salesforce", object_type=kind),
         Decision(rid, "alice", "assigned", "everyone", "test", owner_crm_id=ALICE))
        for kind, rid in records
    ]  # fmt: skip
    sf = connect(os.environ, "59.0")
    assert write_owners(sf, batch) == {rid: None for _, rid in records}
    (request,) = fake_salesforce.requests
    assert request.url.endswith("/composite/sobjects")
    sent = json.loads(request.body)["records"]
    assert [(r["attributes"]["type"], r["Id"]) for r in sent] == [
        ("Lead", "00Q5g0000000001EAA"),
        ("Case", CASE_ID),
        ("Opportunity", OPPORTUNITY_ID),
        ("Account", "0015g00000Ac1AbAAJ"),
        ("Contact", "0035g00000Zz9YyAAJ"),
    ]
    assert {w.sobject for w in fake_salesforce.writes} == {
        "Lead", "Case", "Opportunity", "Account", "Contact",
    }  # fmt: skip
