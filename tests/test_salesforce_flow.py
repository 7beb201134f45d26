"""POST /salesforce/route (a Flow's External Service action) and the OpenAPI file it imports."""

from __future__ import annotations

import pytest
import yaml
from fakes import salesforce_api
from fakes.salesforce_api import (
    OWNER_USER_ID,
    QUEUE_ID,
    REP_USERS,
    salesforce_config_data,
)
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from adapters.salesforce.lead import LEAD_FIELDS
from connector.app import create_app

fake_salesforce = salesforce_api.fake_salesforce  # the fixture, requested by name below

TOKEN = "flow-s3cret"
LEAD_ID = "00Q5g0000000001EAA"
ALICE, BOB = REP_USERS["alice"], REP_USERS["bob"]


@pytest.fixture
def make_client(make_config, store, fake_salesforce, monkeypatch):
    monkeypatch.setenv("LEADRELAY_FLOW_TOKEN", TOKEN)

    def make(**overrides):
        config = make_config(salesforce_config_data(**overrides))
        return create_app(config=config, store=store).test_client()

    return make


@pytest.fixture
def client(make_client):
    return make_client()


def call(client, body, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post("/salesforce/route", json=body, headers=headers)


def lead(**fields):
    return {"Id": LEAD_ID, "OwnerId": QUEUE_ID, "Company": "Acme", "Country": "US", **fields}


def test_routes_without_writing_and_answers_the_owner_for_the_flow(client, fake_salesforce):
    response = call(client, lead())
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["ownerId"] == ALICE and answer["rep"] == "alice"
    assert answer["outcome"] == "assigned" and answer["rule"] == "everyone"
    assert "pool team" in answer["reason"]
    assert answer["writeStatus"] == "not_needed" and answer["leadId"] == LEAD_ID
    assert fake_salesforce.requests == []  # the Flow sets OwnerId itself


def test_write_back_when_asked(client, fake_salesforce, store):
    answer = call(client, {**lead(), "writeBack": True}).get_json()
    assert answer["writeStatus"] == "written"
    assert fake_salesforce.owners == {LEAD_ID: ALICE}
    assert fake_salesforce.writes[0].headers["Sforce-Auto-Assign"] == "FALSE"
    (row,) = store.log()
    assert row.source == "salesforce-flow" and not row.idempotency_key


def test_the_same_request_id_gets_the_first_answer_and_rotates_once(client, store):
    first = call(client, {**lead(), "requestId": "run-1"}).get_json()
    again = call(client, {**lead(Country="DE"), "requestId": "run-1"}).get_json()
    assert again["ownerId"] == first["ownerId"] == ALICE and again["replayed"] is True
    assert len(list(store.log())) == 1
    assert [r.idempotency_key for r in store.log()] == ["salesforce-flow:run-1"]
    assert call(client, lead()).get_json()["ownerId"] == BOB  # the rotation moved once


def test_without_request_id_each_call_routes_anew(client, store):
    call(client, lead())
    call(client, lead())
    assert [r.new_owner for r in store.log()] == ["alice", "bob"]


def test_a_lead_owned_by_a_user_keeps_its_owner(client, fake_salesforce):
    answer = call(client, {**lead(OwnerId=OWNER_USER_ID), "writeBack": True}).get_json()
    assert (answer["outcome"], answer["ownerId"]) == ("kept", OWNER_USER_ID)
    assert answer["writeStatus"] == "not_needed" and fake_salesforce.requests == []


def test_other_fields_reach_rules_as_raw(make_client):
    client = make_client(
        pools={
            "team": {"members": ["alice", "bob", "chen"], "strategy": "round_robin"},
            "spanish": {"members": ["chen"], "strategy": "round_robin"},
        },
        flow=[
            {"name": "es", "when": {"raw.Language__c": "es"}, "assign": {"pool": "spanish"}},
            {"name": "everyone", "assign": {"pool": "team"}},
        ],
    )
    body = {**lead(), "otherFields": [{"name": "Language__c", "value": "es"}]}
    assert call(client, body).get_json()["rep"] == "chen"


def test_entry_routes_from_a_named_pool(make_client):
    client = make_client(
        pools={
            "team": {"members": ["alice", "bob", "chen"], "strategy": "round_robin"},
            "night": {"members": ["bob"], "strategy": "round_robin"},
        }
    )
    assert call(client, {**lead(), "entry": "night"}).get_json()["rep"] == "bob"
    response = call(client, {**lead(), "entry": "nowhere"})
    assert response.status_code == 400 and "night" in response.get_json()["error"]


def test_a_failed_write_is_502_and_the_retry_writes_the_same_owner(client, fake_salesforce):
    fake_salesforce.down = True
    body = {**lead(), "writeBack": True, "requestId": "run-7"}
    failed = call(client, body)
    assert failed.status_code == 502
    assert failed.get_json()["writeStatus"] == "failed" and "503" in failed.get_json()["error"]
    fake_salesforce.down = False
    again = call(client, body)
    assert again.status_code == 200 and again.get_json()["writeStatus"] == "written"
    assert fake_salesforce.owners == {LEAD_ID: ALICE}


def test_a_rep_without_a_salesforce_user_is_skipped_with_a_reason(make_client, fake_salesforce):
    data = salesforce_config_data()
    data["reps"][0].pop("salesforce_user_id")  # alice
    client = make_client(reps=data["reps"])
    answer = call(client, lead()).get_json()
    assert answer["rep"] != "alice" and answer["ownerId"]
    assert "alice" in answer["reason"] and "has no salesforce owner id" in answer["reason"]


# -- refusals -----------------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + "x", TOKEN.upper()])
def test_a_missing_or_wrong_bearer_token_is_401(client, store, token):
    response = call(client, lead(), token=token)
    assert response.status_code == 401 and "error" in response.get_json()
    assert list(store.log()) == []


def test_no_token_configured_refuses_every_call(client, store, monkeypatch):
    monkeypatch.delenv("LEADRELAY_FLOW_TOKEN")
    assert call(client, lead(), token="").status_code == 401
    assert list(store.log()) == []


def test_the_bearer_scheme_is_case_insensitive(client):
    headers = {"Authorization": f"bearer {TOKEN}"}
    assert client.post("/salesforce/route", json=lead(), headers=headers).status_code == 200


@pytest.mark.parametrize(
    "body, field",
    [
        ({"Company": "no id"}, "Id"),
        (lead(Id="00T000000000001"), "Id"),  # a Task: no object leadrelay routes
        (lead(NumberOfEmployees="lots"), "NumberOfEmployees"),
        ({**lead(), "writeBack": "yes"}, "writeBack"),
        ({**lead(), "requestId": {"x": 1}}, "requestId"),
        ({**lead(), "otherFields": "Language__c=es"}, "otherFields"),
        ({**lead(), "otherFields": [{"value": "es"}]}, "otherFields[0]"),
        (lead(Company={"nested": True}), "Company"),
    ],
)
def test_unusable_requests_are_400_naming_the_field(client, store, body, field):
    response = call(client, body)
    assert response.status_code == 400
    assert response.get_json()["field"] == field and response.get_json()["error"]
    assert list(store.log()) == []


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"null", b""])
def test_a_body_that_is_not_a_json_object_is_400(client, raw):
    response = client.post(
        "/salesforce/route",
        data=raw,
        content_type="application/json",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 400 and "error" in response.get_json()


# -- the OpenAPI description --------------------------------------------------------------------
@pytest.fixture
def spec(client):
    response = client.get("/salesforce/openapi.yaml")
    assert response.status_code == 200 and "yaml" in response.content_type
    return yaml.safe_load(response.data)


def test_openapi_file_is_a_valid_openapi_3_0_document(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.0")
    operations = [op for path in spec["paths"].values() for op in path.values()]
    assert all(op.get("operationId") for op in operations)
    assert set(spec["paths"]) == {"/salesforce/route"}
    body = spec["paths"]["/salesforce/route"]["post"]["requestBody"]["content"]
    assert list(body) == ["application/json"]


def test_openapi_request_names_every_translated_lead_field(spec):
    properties = spec["components"]["schemas"]["RouteRequest"]["properties"]
    assert set(LEAD_FIELDS) <= set(properties)
    assert {"requestId", "writeBack", "entry", "otherFields"} <= set(properties)


def test_answers_match_the_openapi_schemas(spec, client, fake_salesforce):
    schemas = spec["components"]["schemas"]
    OAS30Validator(schemas["RouteResult"]).validate(call(client, lead()).get_json())
    OAS30Validator(schemas["Error"]).validate(call(client, {"Company": "x"}).get_json())
    OAS30Validator(schemas["Error"]).validate(call(client, lead(), token="x").get_json())
