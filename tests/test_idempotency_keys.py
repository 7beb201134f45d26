"""An idempotency key belongs to the record it was made for.

CRMs retry, so every channel decides under a key (HubSpot's callbackId, a Flow's requestId, an
Outbound Message notification's Id). The same key sent with another record is not a retry of
the first: that record is routed, logged and written under the key scoped to it, and a retry
of either record still replays its own decision.
"""

from __future__ import annotations

import pytest
from conftest import FIXTURES
from fakes import salesforce_api
from fakes.hubspot_api import fake_hubspot  # noqa: F401 (fixture)
from fakes.hubspot_requests import (
    action_body,
    hubspot_app,  # noqa: F401 (fixture)
    post_action,
)
from fakes.salesforce_api import QUEUE_ID, REP_USERS, salesforce_config_data

from adapters.salesforce.outbound_message import ACK
from connector.app import create_app

fake_salesforce = salesforce_api.fake_salesforce  # the fixture, requested by name below

ALICE, BOB = REP_USERS["alice"], REP_USERS["bob"]
LEAD_1, LEAD_2 = "00Q5g0000000001EAA", "00Q5g0000000002EAA"
FLOW_TOKEN = "flow-s3cret"


def contact(object_id: int, callback_id: str = "ap-1") -> dict:
    body = action_body(callbackId=callback_id)
    body["object"]["objectId"] = object_id
    return body


def api_client(hubspot_app, fake_hubspot):
    for contact_id in ("904", "905"):
        fake_hubspot.add_contact(contact_id)
    return hubspot_app(hubspot={"write_owner": "api"})


def owner_writes(fake) -> dict[str, str]:
    return {
        r.path.rsplit("/", 1)[-1]: r.body["properties"]["hubspot_owner_id"]
        for r in fake.calls("PATCH", "/crm/v3")
    }


# -- HubSpot: callbackId ----------------------------------------------------------------------


def test_a_callback_id_sent_again_with_another_contact_routes_that_contact(
    hubspot_app, fake_hubspot, store
):
    client = api_client(hubspot_app, fake_hubspot)
    first = post_action(client, contact(904)).json["outputFields"]
    other = post_action(client, contact(905)).json["outputFields"]

    assert (first["owner_id"], other["owner_id"]) == ("101", "102")
    assert owner_writes(fake_hubspot) == {"904": "101", "905": "102"}
    rows = list(store.log())
    assert [(r.lead_id, r.new_owner) for r in rows] == [("904", "alice"), ("905", "bob")]
    assert rows[0].idempotency_key == "hubspot:ap-1"
    assert rows[1].idempotency_key == "hubspot:ap-1|hubspot:905"


def test_each_contact_under_a_shared_callback_id_replays_its_own_decision(
    hubspot_app, fake_hubspot, store
):
    client = api_client(hubspot_app, fake_hubspot)
    first = post_action(client, contact(904)).json["outputFields"]
    other = post_action(client, contact(905)).json["outputFields"]
    assert post_action(client, contact(905)).json["outputFields"] == other
    assert post_action(client, contact(904)).json["outputFields"] == first
    assert len(list(store.log())) == 2
    assert len(fake_hubspot.calls("PATCH", "/crm/v3")) == 2  # nothing written twice


# -- Salesforce Flow: requestId ---------------------------------------------------------------


@pytest.fixture
def flow_client(make_config, store, fake_salesforce, monkeypatch):
    monkeypatch.setenv("LEADRELAY_FLOW_TOKEN", FLOW_TOKEN)
    app = create_app(config=make_config(salesforce_config_data()), store=store)
    return app.test_client()


def route(client, lead_id: str, request_id: str = "constant") -> dict:
    body = {"Id": lead_id, "OwnerId": QUEUE_ID, "Company": "Acme", "Country": "US"}
    body.update(requestId=request_id, writeBack=True)
    response = client.post(
        "/salesforce/route", json=body, headers={"Authorization": f"Bearer {FLOW_TOKEN}"}
    )
    assert response.status_code == 200, response.json
    return response.json


def test_a_constant_request_id_still_routes_and_writes_every_lead(
    flow_client, fake_salesforce, store
):
    first, other = route(flow_client, LEAD_1), route(flow_client, LEAD_2)

    assert (first["leadId"], first["ownerId"], first["replayed"]) == (LEAD_1, ALICE, False)
    assert (other["leadId"], other["ownerId"], other["replayed"]) == (LEAD_2, BOB, False)
    assert other["writeStatus"] == "written"
    assert fake_salesforce.owners == {LEAD_1: ALICE, LEAD_2: BOB}
    assert [r.lead_id for r in store.log()] == [LEAD_1, LEAD_2]


def test_a_retry_under_a_shared_request_id_replays_only_its_own_lead(
    flow_client, fake_salesforce, store
):
    route(flow_client, LEAD_1)
    route(flow_client, LEAD_2)
    again = route(flow_client, LEAD_2)
    assert (again["leadId"], again["ownerId"], again["replayed"]) == (LEAD_2, BOB, True)
    assert again["writeStatus"] == "written"
    assert len(fake_salesforce.writes) == 2 and len(list(store.log())) == 2


# -- Salesforce Outbound Message: notification Id ---------------------------------------------


def message_with_one_id_for_two_leads() -> bytes:
    text = (FIXTURES / "salesforce" / "one_lead.xml").read_text()
    start, end = text.index("   <Notification>"), text.index("  </notifications>")
    notification = text[start:end]
    second = notification.replace(LEAD_1, LEAD_2).replace("buyer1@", "buyer2@")
    return (text[:end] + second + text[end:]).encode()


def test_two_notifications_sharing_an_id_are_both_routed_before_the_ack(
    make_config, store, fake_salesforce
):
    client = create_app(config=make_config(salesforce_config_data()), store=store).test_client()
    body = message_with_one_id_for_two_leads()
    for _ in range(2):  # and the redelivery writes nothing twice
        response = client.post("/salesforce/outbound", data=body, content_type="text/xml")
        assert response.status_code == 200 and response.get_data(as_text=True) == ACK

    assert fake_salesforce.owners == {LEAD_1: ALICE, LEAD_2: BOB}
    assert len(fake_salesforce.written_leads) == 2
    assert [(r.lead_id, r.new_owner) for r in store.log()] == [(LEAD_1, "alice"), (LEAD_2, "bob")]


def test_a_request_id_shaped_like_a_scoped_key_never_answers_for_another_lead(
    flow_client, fake_salesforce, store
):
    LEAD_3 = "00Q5g0000000003EAA"
    route(flow_client, LEAD_1, "R")
    route(flow_client, LEAD_3, f"R|salesforce:{LEAD_2}")  # crafted to look scoped
    answer = route(flow_client, LEAD_2, "R")

    assert (answer["leadId"], answer["replayed"], answer["writeStatus"]) == (
        LEAD_2,
        False,
        "written",
    )
    assert fake_salesforce.owners[LEAD_2] == answer["ownerId"]
    assert sorted(r.lead_id for r in store.log()) == [LEAD_1, LEAD_2, LEAD_3]


def message_with_two_ids_for_one_lead(ids: tuple[str, ...]) -> bytes:
    text = (FIXTURES / "salesforce" / "one_lead.xml").read_text()
    start, end = text.index("   <Notification>"), text.index("  </notifications>")
    notification = text[start:end]
    body = "".join(notification.replace("04l5g0000000001AAA", each) for each in ids)
    return (text[:start] + body + text[end:]).encode()


def test_a_lead_under_two_notification_ids_is_not_routed_again_when_one_is_retried_alone(
    make_config, store, fake_salesforce
):
    client = create_app(config=make_config(salesforce_config_data()), store=store).test_client()
    both = message_with_two_ids_for_one_lead(("04l5g0000000001AAA", "04l5g0000000002AAA"))
    fake_salesforce.down = True
    assert (
        client.post("/salesforce/outbound", data=both, content_type="text/xml").status_code == 500
    )
    fake_salesforce.down = False

    # Salesforce may batch its retries differently: the second notification comes alone.
    alone = message_with_two_ids_for_one_lead(("04l5g0000000002AAA",))
    response = client.post("/salesforce/outbound", data=alone, content_type="text/xml")

    assert response.get_data(as_text=True) == ACK
    assert fake_salesforce.owners == {LEAD_1: ALICE}  # the first decision, not a new turn
    assert len(list(store.log())) == 1
