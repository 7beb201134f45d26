"""Companies, deals and tickets through POST /hubspot/action: routed by their own properties and
written to their own object's API, in api and batch mode. Real signed requests, the real app,
the loopback HubSpot fake."""

from __future__ import annotations

from collections import Counter

import pytest
from fakes.hubspot_api import fake_hubspot  # noqa: F401 (fixture)
from fakes.hubspot_requests import (
    action_body,
    hubspot_app,  # noqa: F401 (fixture)
    hubspot_config_data,
    post_action,
)

from connector.hubspot_flusher import Flusher
from connector.shared import services_of
from workflows.errors import ConfigErrors

API = {"write_owner": "api"}
BATCH = {"write_owner": "batch"}
# Big deals and urgent tickets go to chen (owner 103); the rest round-robin over the team.
FLOW = [
    {"name": "big deals", "when": {"object": "deal", "raw.amount": {"gte": 50000}},
     "assign": {"pool": "big"}},
    {"name": "urgent tickets", "when": {"object": "ticket", "raw.hs_ticket_priority": "HIGH"},
     "assign": {"pool": "big"}},
    {"name": "everyone", "assign": {"pool": "team"}},
]  # fmt: skip


def execution(object_type: str, object_id: int, callback: str, **properties: str) -> dict:
    """An execution of the action on a record of ``object_type`` (HubSpot's DEAL, TICKET...)."""
    body = action_body(callbackId=callback)
    body["object"] = {
        "objectId": object_id,
        "objectType": object_type,
        "properties": {"hubspot_owner_id": "", **properties},
    }
    return body


def outputs(response):
    assert response.status_code == 200, response.json
    return response.json["outputFields"]


def test_a_big_deal_is_routed_by_its_amount_and_written_to_the_deals_api(
    hubspot_app, fake_hubspot, store
):
    fake_hubspot.add_record("deals", "9001", dealname="Hooli renewal", amount="75000")
    client = hubspot_app(hubspot=API, flow=FLOW)
    body = execution("DEAL", 9001, "ap-deal-1", dealname="Hooli renewal", amount="75000")
    # HubSpot sends every property the definition asks for that deals have (empty or not).
    fields = outputs(post_action(client, body))
    assert (fields["outcome"], fields["rule"], fields["owner_id"]) == (
        "assigned",
        "big deals",
        "103",
    )
    assert [(r.method, r.path) for r in fake_hubspot.requests] == [
        ("PATCH", "/crm/v3/objects/deals/9001"),
    ]
    assert fake_hubspot.deals["9001"]["hubspot_owner_id"] == "103"
    (record,) = list(store.log())
    assert (record.object_type, record.lead_id) == ("deal", "9001")
    # A redelivery answers the same and writes nothing again.
    assert outputs(post_action(client, body)) == fields
    assert len(fake_hubspot.requests) == 1


def test_a_small_deal_falls_through_to_the_team(hubspot_app, fake_hubspot):
    fake_hubspot.add_record("deals", "9002", amount="900")
    fields = outputs(post_action(hubspot_app(hubspot=API, flow=FLOW),
                                 execution("DEAL", 9002, "ap-deal-2", amount="900")))  # fmt: skip
    assert (fields["rule"], fields["owner_id"]) == ("everyone", "101")
    assert fake_hubspot.deals["9002"]["hubspot_owner_id"] == "101"


def test_an_urgent_ticket_is_routed_and_written_to_the_tickets_api(hubspot_app, fake_hubspot):
    fake_hubspot.add_record("tickets", "3001", subject="Login broken", hs_ticket_priority="HIGH")
    body = execution("TICKET", 3001, "ap-ticket-1", subject="Login broken",
                     hs_ticket_priority="HIGH")  # fmt: skip
    fields = outputs(post_action(hubspot_app(hubspot=API, flow=FLOW), body))
    assert (fields["rule"], fields["owner_id"]) == ("urgent tickets", "103")
    (write,) = fake_hubspot.calls("PATCH")
    assert write.path == "/crm/v3/objects/tickets/3001"
    assert write.body == {"properties": {"hubspot_owner_id": "103"}}
    assert fake_hubspot.tickets["3001"]["hubspot_owner_id"] == "103"


def test_a_deal_sent_without_a_rule_property_is_read_from_the_deals_api_once(
    hubspot_app, fake_hubspot
):
    fake_hubspot.add_record("deals", "9003", dealname="Globex", amount="120000")
    # The registered definition predates the amount rule: HubSpot did not send it.
    body = execution("DEAL", 9003, "ap-deal-3", dealname="Globex")
    fields = outputs(post_action(hubspot_app(hubspot=API, flow=FLOW), body))
    assert (fields["rule"], fields["owner_id"]) == ("big deals", "103")
    (read,) = fake_hubspot.calls("GET")
    assert read.path == "/crm/v3/objects/deals/9003"
    assert sorted(read.query["properties"]) == ["amount", "dealname", "hubspot_owner_id"]


def test_a_company_is_routed_on_its_own_employee_count(hubspot_app, fake_hubspot):
    fake_hubspot.add_record("companies", "77", name="Initech", numberofemployees="5000")
    body = execution("COMPANY", 77, "ap-company-1", name="Initech", domain="initech.com",
                     numberofemployees="5000")  # fmt: skip
    fields = outputs(post_action(hubspot_app(hubspot=API), body))  # enterprise: employees>=1000
    assert (fields["rule"], fields["owner_id"]) == ("enterprise", "103")
    assert fake_hubspot.companies["77"]["hubspot_owner_id"] == "103"


def test_an_account_owner_rule_on_a_deal_goes_to_its_else(hubspot_app, fake_hubspot, store):
    fake_hubspot.add_record("deals", "9004")
    flow = [{"name": "accounts", "assign": {"account_owner": True, "else": {"pool": "big"}}}]
    fields = outputs(post_action(hubspot_app(hubspot=API, flow=flow),
                                 execution("DEAL", 9004, "ap-deal-4", dealname="D")))  # fmt: skip
    assert fields["owner_id"] == "103"
    assert "contacts only" in fields["reason"]
    # No company read: the deal's write alone.
    assert [(r.method, r.path) for r in fake_hubspot.requests] == [
        ("PATCH", "/crm/v3/objects/deals/9004")
    ]


def test_an_unknown_object_type_answers_400_naming_the_field(hubspot_app, fake_hubspot, store):
    response = post_action(hubspot_app(hubspot=API), execution("LINE_ITEM", 5, "ap-x"))
    assert response.status_code == 400
    assert response.json["field"] == "object.objectType"
    assert "CONTACT, COMPANY, DEAL, TICKET" in response.json["error"]
    assert "LINE_ITEM" in response.json["error"]
    assert fake_hubspot.requests == [] and list(store.log()) == []


@pytest.mark.parametrize("object_type", [None, 7, ["DEAL"], {"type": "DEAL"}, "", "DEALS", "0-3"])
def test_an_object_type_of_the_wrong_shape_answers_400(
    hubspot_app, fake_hubspot, store, object_type
):
    body = execution("DEAL", 5, "ap-z")
    body["object"]["objectType"] = object_type
    response = post_action(hubspot_app(hubspot=API), body)
    assert (response.status_code, response.json["field"]) == (400, "object.objectType")
    assert "Traceback" not in response.text
    assert fake_hubspot.requests == [] and list(store.log()) == []


def test_an_object_type_in_lower_case_is_read_as_hubspot_spells_it(hubspot_app, fake_hubspot):
    fake_hubspot.add_record("deals", "9005")
    body = execution(" deal ", 9005, "ap-deal-5", dealname="D", amount="1")
    assert outputs(post_action(hubspot_app(hubspot=API), body))["outcome"] == "assigned"
    assert fake_hubspot.deals["9005"]["hubspot_owner_id"]


def test_an_object_type_app_yaml_does_not_offer_answers_400(hubspot_app, fake_hubspot, store):
    client = hubspot_app(hubspot={**API, "objects": ["contact", "deal"]})
    response = post_action(client, execution("TICKET", 5, "ap-y"))
    assert (response.status_code, response.json["field"]) == (400, "object.objectType")
    assert "not in hubspot.objects" in response.json["error"]
    assert fake_hubspot.requests == [] and list(store.log()) == []


@pytest.mark.parametrize(
    ("when", "path"),
    [
        ({"object": "dael"}, "flow[0].when.object"),
        ({"object": {"in": ["deal", "oportunity"]}}, "flow[0].when.object"),
        ({"any": [{"object_type": "lead"}, {"object": 7}]}, "flow[0].when.any[1].object"),
    ],
)
def test_an_unknown_object_kind_in_a_rule_is_refused_at_start_up(make_config, when, path):
    flow = [{"name": "x", "when": when, "assign": {"pool": "team"}}]
    with pytest.raises(ConfigErrors) as refused:
        make_config(hubspot_config_data(flow=flow))
    assert path in str(refused.value)
    assert "unknown object kind" in str(refused.value)


# -- batch mode: one batch/update per object type ----------------------------------------------


def test_batch_mode_writes_each_object_type_in_its_own_batch_call(hubspot_app, fake_hubspot):
    client = hubspot_app(hubspot=BATCH, flow=FLOW)
    sent = [("DEAL", "deals", n, {"amount": "60000", "dealname": "D"}) for n in range(3)]
    sent += [("TICKET", "tickets", n, {"hs_ticket_priority": "LOW", "subject": "S"})
             for n in range(2)]  # fmt: skip
    sent += [("CONTACT", "contacts", n, {"email": f"c{n}@x.com"}) for n in range(2)]
    for object_type, path, number, props in sent:
        fake_hubspot.add_record(path, str(8000 + number), **props)
        body = execution(object_type, 8000 + number, f"ap-{path}-{number}", **props)
        assert post_action(client, body).json["outputFields"]["hs_execution_state"] == "BLOCK"
    services = services_of(client.application)
    token = services.hubspot_token()
    flusher = Flusher(lambda: services.store, lambda: services.hubspot_api(token), every=1.0)
    flusher.flush()

    assert fake_hubspot.calls("GET") == []  # each execution carried what its rules read
    updates = Counter(r.path for r in fake_hubspot.calls("POST") if "batch/update" in r.path)
    assert updates == {
        "/crm/v3/objects/deals/batch/update": 1,
        "/crm/v3/objects/tickets/batch/update": 1,
        "/crm/v3/objects/contacts/batch/update": 1,
    }
    assert {d["hubspot_owner_id"] for d in fake_hubspot.deals.values()} == {"103"}
    assert all(t["hubspot_owner_id"] for t in fake_hubspot.tickets.values())
    done = {item["callbackId"] for item in fake_hubspot.batch_completed}
    assert done == {f"ap-{path}-{n}" for _, path, n, _ in sent}
    assert len(fake_hubspot.calls("POST", "/automation/v4/actions/callbacks/complete")) == 1
    flusher.flush()  # nothing left: no call
    assert sum(1 for r in fake_hubspot.calls("POST") if "batch/update" in r.path) == 3


def test_a_contact_and_a_deal_with_the_same_id_are_two_records(hubspot_app, fake_hubspot, store):
    # HubSpot numbers each object type on its own: contact 9001 and deal 9001 share nothing,
    # neither their history (a task moved from one to the other) nor an idempotency key.
    fake_hubspot.add_contact("9001")
    fake_hubspot.add_record("deals", "9001", amount="900")
    task = {"subject": "Call about {rule}", "due": "1h", "clock": "wall"}
    client = hubspot_app(hubspot=API, flow=FLOW, task=task)
    contact = execution("CONTACT", 9001, "ap-same-1")
    first = outputs(post_action(client, contact))
    deal = outputs(post_action(client, execution("DEAL", 9001, "ap-same-2", amount="900")))
    assert first["owner_id"] != deal["owner_id"]  # two turns of the team's round robin
    # Each got its own task, and the contact's stayed with the contact's owner.
    owners = {t["properties"]["hubspot_owner_id"] for t in fake_hubspot.tasks.values()}
    assert len(fake_hubspot.tasks) == 2 and owners == {first["owner_id"], deal["owner_id"]}
    assert (
        fake_hubspot.tasks[first["task_id"]]["properties"]["hubspot_owner_id"]
        == (first["owner_id"])
    )
    # The contact's callbackId sent again with the deal is not a retry of the contact.
    reused = outputs(post_action(client, execution("DEAL", 9001, "ap-same-1", amount="900")))
    assert reused["task_id"] != first["task_id"]
    records = list(store.log())
    assert [(r.object_type, r.lead_id) for r in records] == [
        ("contact", "9001"), ("deal", "9001"), ("deal", "9001"),
    ]  # fmt: skip


# -- Records of different kinds sharing a numeric id ------------------------------------------


def test_a_callback_id_reused_for_a_deal_with_a_contacts_id_routes_the_deal(
    hubspot_app, fake_hubspot, store
):
    fake_hubspot.add_contact("42")
    fake_hubspot.add_record("deals", "42", dealname="D", amount="75000")
    client = hubspot_app(hubspot=API, flow=FLOW)
    contact = outputs(post_action(client, execution("CONTACT", 42, "ap-shared")))
    deal = outputs(post_action(client, execution("DEAL", 42, "ap-shared", amount="75000")))

    assert (contact["rule"], deal["rule"]) == ("everyone", "big deals")
    assert fake_hubspot.deals["42"]["hubspot_owner_id"] == "103"
    assert [(r.object_type, r.lead_id) for r in store.log()] == [("contact", "42"), ("deal", "42")]
    # A retry of either still replays its own decision and writes nothing again.
    assert outputs(post_action(client, execution("DEAL", 42, "ap-shared", amount="75000"))) == deal
    assert outputs(post_action(client, execution("CONTACT", 42, "ap-shared"))) == contact
    assert len(fake_hubspot.calls("PATCH", "/crm/v3")) == 2


def test_a_deal_hubspot_no_longer_has_answers_failed_not_a_server_error(
    hubspot_app, fake_hubspot, store, caplog
):
    # The deals API (crm/v3/objects) answers 404: its client raises its own ApiException.
    client = hubspot_app(hubspot=API, flow=FLOW)
    response = post_action(client, execution("DEAL", 404404, "ap-gone", dealname="D"))

    fields = outputs(response)
    assert fields["outcome"] == "failed"
    assert "404 while reading deal 404404" in fields["reason"]
    assert not [r for r in caplog.records if r.exc_info], "a stack trace was logged"
    assert not fake_hubspot.calls("PATCH", "/crm/v3")
