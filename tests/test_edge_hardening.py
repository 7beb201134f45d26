"""What an unauthenticated or careless caller can send to the three endpoints: every malformed
header, query parameter or body is a 4xx naming what was wrong, never a 500 or a traceback,
and nothing is routed or written."""

from __future__ import annotations

import json
import logging

import pytest
import yaml
from click.testing import CliRunner
from conftest import FIXTURES, config_data
from fakes import salesforce_api
from fakes.hubspot_api import fake_hubspot  # noqa: F401 (fixture)
from fakes.hubspot_requests import (
    action_body,
    hubspot_app,  # noqa: F401 (fixture)
    post_action,
    with_properties,
)
from fakes.salesforce_api import QUEUE_ID, salesforce_config_data

from adapters.salesforce.lead import lead_from_fields
from connector.app import create_app
from connector.cli import main
from workflows.errors import LeadError
from workflows.model import Lead

fake_salesforce = salesforce_api.fake_salesforce  # the fixture, requested by name below

FLOW_TOKEN = "flow-s3cret"
OUTBOUND_TOKEN = "outbound-s3cret"
LEAD_ID = "00Q5g0000000001EAA"
DEEP = 10_000  # the depth that used to raise RecursionError


@pytest.fixture(autouse=True)
def no_traceback_logged(caplog):
    """Whatever a test sends, nothing may be logged with a stack trace."""
    caplog.set_level(logging.INFO)
    yield
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# -- HubSpot: signature headers ----------------------------------------------------------------
MALFORMED_SIGNATURES = {
    "v3 signature with non-ASCII": ({"X-HubSpot-Signature-v3": "é" * 44}, "Signature-v3"),
    "v3 signature too short": ({"X-HubSpot-Signature-v3": "abc="}, "Signature-v3"),
    # "²".isdigit() is True but int("²") raises: the crash HubSpot's headers could trigger.
    "timestamp of superscript digits": ({"X-HubSpot-Request-Timestamp": "²" * 13}, "Timestamp"),
    "timestamp of Arabic-Indic digits": (
        {"X-HubSpot-Request-Timestamp": "١٧٠٠٠٠٠٠٠٠٠٠٠"},
        "Request-Timestamp",
    ),
    "timestamp of 5,000 digits": ({"X-HubSpot-Request-Timestamp": "9" * 5000}, "Timestamp"),
    "timestamp with a sign": ({"X-HubSpot-Request-Timestamp": "-1"}, "Request-Timestamp"),
}


@pytest.mark.parametrize(
    ("headers", "named"), MALFORMED_SIGNATURES.values(), ids=MALFORMED_SIGNATURES.keys()
)
def test_a_malformed_v3_signature_header_is_a_401_naming_it(hubspot_app, store, headers, named):
    response = post_action(hubspot_app(), action_body(), version="v3", headers=headers)
    assert response.status_code == 401, response.data
    assert named in response.json["error"]
    assert list(store.log()) == []


@pytest.mark.parametrize(
    "signature",
    ["é" * 64, "g" * 64, "a" * 63, "ａ" * 64],
    ids=["latin-1", "not hex", "short", "fullwidth"],
)
def test_a_malformed_v2_signature_is_a_401_naming_it(hubspot_app, store, signature):
    response = post_action(
        hubspot_app(), action_body(), version="v2", headers={"X-HubSpot-Signature": signature}
    )
    assert response.status_code == 401, response.data
    assert "malformed X-HubSpot-Signature" in response.json["error"]
    assert list(store.log()) == []


# -- HubSpot: the signed body -------------------------------------------------------------------
def test_deeply_nested_json_on_the_hubspot_action_is_a_400(hubspot_app, store):
    response = post_action(hubspot_app(), nested(DEEP))
    assert response.status_code == 400, response.data
    assert response.json == {"error": "body: nested deeper than 32 levels", "field": "body"}
    assert list(store.log()) == []


def test_json_nested_past_the_limit_names_where(hubspot_app):
    body = action_body()
    body["object"]["properties"]["firstname"] = json.loads(nested(40))
    response = post_action(hubspot_app(), body)
    assert response.status_code == 400
    assert response.json["field"].startswith("object.properties.firstname[0][0]")


def test_a_body_that_is_not_utf8_cannot_carry_a_valid_hubspot_signature(hubspot_app, store):
    # HubSpot signs UTF-8 text; other bytes are read as U+FFFD, so no signature matches.
    response = post_action(hubspot_app(), b'{"callbackId": "\xff"}')
    assert response.status_code == 401
    assert "does not match" in response.json["error"]


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity"])
def test_an_infinite_employee_count_is_refused_naming_the_property(hubspot_app, store, number):
    text = json.dumps(with_properties(action_body(), numemployees="N")).replace('"N"', number)
    response = post_action(hubspot_app(), text.encode())
    assert response.status_code == 400, response.data
    assert response.json["field"] == "object.properties.numemployees"
    assert list(store.log()) == []


@pytest.mark.parametrize("contact_id", ["١٢٣", "1" * 21, "12 34"])
def test_a_contact_id_that_is_not_ascii_digits_is_refused(hubspot_app, store, contact_id):
    body = action_body()
    body["object"]["objectId"] = contact_id
    response = post_action(hubspot_app(), body)
    assert response.status_code == 400
    assert response.json["field"] == "object.objectId"
    assert list(store.log()) == []


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("object.objectId", 2**63),
        ("object.objectId", "18446744073709551616"),
        ("object.objectId", "99999999999999999999"),
        ("origin.portalId", 2**64 - 1),
    ],
)
def test_an_id_past_hubspots_signed_64_bits_is_a_400_naming_the_field(
    hubspot_app, store, where, value
):
    body = action_body()
    outer, inner = where.split(".")
    body.setdefault(outer, {})[inner] = value
    response = post_action(hubspot_app(), body)
    assert (response.status_code, response.json["field"]) == (400, where)
    assert "largest id" in response.json["error"]
    assert list(store.log()) == []


def test_the_largest_signed_64_bit_id_is_still_a_contact_id(hubspot_app, store):
    body = action_body()
    body["object"]["objectId"] = 2**63 - 1
    response = post_action(hubspot_app(), body)
    assert response.status_code == 200


def test_an_overlong_callback_id_is_refused(hubspot_app, store):
    response = post_action(hubspot_app(), action_body(callbackId="x" * 256))
    assert response.status_code == 400
    assert response.json["field"] == "callbackId"


def test_a_hostile_value_is_quoted_short_in_the_answer(hubspot_app):
    response = post_action(hubspot_app(), action_body(object=["x" * 100_000]))
    assert response.status_code == 400
    assert len(response.json["error"]) < 200


# -- Salesforce Flow: /salesforce/route ---------------------------------------------------------
@pytest.fixture
def flow(make_config, store, fake_salesforce, monkeypatch):
    monkeypatch.setenv("LEADRELAY_FLOW_TOKEN", FLOW_TOKEN)
    data = salesforce_config_data(
        pools={
            "team": {"members": ["alice", "bob"], "strategy": "round_robin"},
            "big": {"members": ["chen"]},
        },
        flow=[
            {"name": "enterprise", "when": {"employees": {"gte": 1000}}, "assign": {"pool": "big"}},
            {"name": "everyone", "assign": {"pool": "team"}},
        ],
    )
    return create_app(config=make_config(data), store=store).test_client()


def route(client, body: bytes, content_type: str = "application/json", token: str = FLOW_TOKEN):
    headers = {"Authorization": f"Bearer {token}"}
    return client.post("/salesforce/route", data=body, content_type=content_type, headers=headers)


def lead_json(**extra: str) -> str:
    fields = {"Id": LEAD_ID, "OwnerId": QUEUE_ID, "Company": "Acme"}
    return json.dumps(fields)[:-1] + "".join(f', "{k}": {v}' for k, v in extra.items()) + "}"


def test_deeply_nested_json_on_the_flow_route_is_a_400(flow, store, fake_salesforce):
    response = route(flow, nested(DEEP))
    assert response.status_code == 400, response.data
    assert response.json["error"] == "body: nested deeper than 32 levels"
    assert list(store.log()) == [] and fake_salesforce.requests == []


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"NumberOfEmployees": "1e400"}, "NumberOfEmployees"),
        ({"NumberOfEmployees": "-Infinity"}, "NumberOfEmployees"),
        ({"AnnualRevenue": "NaN"}, "AnnualRevenue"),
        ({"Seats__c": "1e999"}, "Seats__c"),
        ({"otherFields": '[{"name": "Seats__c", "value": 1e400}]'}, "otherFields[0].value"),
    ],
)
def test_an_infinite_number_on_the_flow_route_is_a_400_naming_the_field(flow, store, extra, field):
    response = route(flow, lead_json(**extra).encode())
    assert response.status_code == 400, response.data
    assert response.json["field"] == field
    assert "finite number" in response.json["error"]
    assert list(store.log()) == []


def test_a_huge_employee_count_that_is_finite_still_routes(flow):
    response = route(flow, lead_json(NumberOfEmployees="1e300").encode())
    assert response.status_code == 200
    assert response.json["rule"] == "enterprise"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_flow_call_that_is_not_json_is_a_415(flow, store, content_type):
    response = route(flow, lead_json().encode(), content_type=content_type)
    assert response.status_code == 415
    assert response.json == {"error": "expected Content-Type: application/json"}
    assert list(store.log()) == []


def test_a_flow_body_that_is_not_utf8_is_a_400(flow):
    response = route(flow, b'{"Id": "\xff"}')
    assert response.status_code == 400
    assert response.json["field"] == "body" and "not UTF-8" in response.json["error"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer é" + FLOW_TOKEN,
        "Bearer " + FLOW_TOKEN[:-1] + "é",
        "Bearer",
        "Basic Zm9vOmJhcg==",
        "Bearer \x00",
    ],
)
def test_a_malformed_bearer_token_is_a_401(flow, store, authorization):
    response = flow.post(
        "/salesforce/route", data=lead_json(), content_type="application/json",
        headers={"Authorization": authorization},
    )  # fmt: skip
    assert response.status_code == 401
    assert list(store.log()) == []


# -- Salesforce Outbound Messages: /salesforce/outbound -----------------------------------------
@pytest.fixture
def outbound(make_config, store, fake_salesforce, monkeypatch):
    monkeypatch.setenv("LEADRELAY_OUTBOUND_TOKEN", OUTBOUND_TOKEN)
    return create_app(config=make_config(salesforce_config_data()), store=store).test_client()


@pytest.mark.parametrize(
    "query", ["?token=%C3%A9", "?token=%FF%FE", "?token=" + OUTBOUND_TOKEN + "%00", "?token=é"]
)
def test_a_malformed_outbound_token_is_a_403_soap_fault(outbound, store, fake_salesforce, query):
    response = outbound.post(f"/salesforce/outbound{query}", data=b"<x/>", content_type="text/xml")
    assert response.status_code == 403
    assert b"<faultcode>soapenv:Client</faultcode>" in response.data
    assert list(store.log()) == [] and fake_salesforce.requests == []


# -- numbers everywhere a lead is read -----------------------------------------------------------
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_lead_refuses_a_non_finite_number_in_a_field_or_in_raw(value):
    with pytest.raises(LeadError) as refused:
        Lead.from_dict({"id": "L1", "employees": value})
    assert refused.value.field == "employees"
    with pytest.raises(LeadError) as refused:
        Lead.from_dict({"id": "L1", "raw": {"seats": value}})
    assert refused.value.field == "raw.seats"


def test_a_salesforce_custom_field_that_is_infinite_is_named_as_salesforce_names_it():
    with pytest.raises(LeadError) as refused:
        lead_from_fields({"Id": LEAD_ID, "Seats__c": float("inf")})
    assert refused.value.field == "Seats__c"


def test_cli_route_refuses_1e400_with_a_message_and_exit_1(tmp_path):
    app_yaml = tmp_path / "app.yaml"
    app_yaml.write_text(yaml.safe_dump(config_data(store="sqlite:///state.sqlite")))
    result = CliRunner().invoke(
        main, ["--config", str(app_yaml), "route", '{"employees": 1e400}'], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert "employees: expected a finite number" in result.output


def test_cli_route_refuses_json_nested_5000_deep_without_a_traceback(tmp_path):
    app_yaml = tmp_path / "app.yaml"
    app_yaml.write_text(yaml.safe_dump(config_data(store="sqlite:///state.sqlite")))
    nested = "[" * 5000 + "]" * 5000
    result = CliRunner().invoke(
        main, ["--config", str(app_yaml), "route", nested], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert "LEAD_JSON: nested deeper than 32 levels" in result.output


# -- what the OpenAPI document promises the Flow ------------------------------------------------
def test_a_null_write_back_means_false(flow, fake_salesforce):
    response = route(flow, lead_json(writeBack="null").encode())
    assert response.status_code == 200 and response.json["writeStatus"] == "not_needed"
    assert fake_salesforce.writes == []


def test_other_fields_are_only_raw_values_so_any_text_is_accepted(flow, store):
    other = '[{"name": "NumberOfEmployees", "value": "lots"}, {"name": "Seats__c", "value": "9"}]'
    response = route(flow, lead_json(otherFields=other).encode())
    assert response.status_code == 200, response.data
    assert response.json["rule"] == "everyone"  # "lots" employees is not a size


def test_an_infinite_employee_count_in_an_outbound_message_is_refused(outbound, store):
    message = (FIXTURES / "salesforce" / "one_lead.xml").read_bytes()
    message = message.replace(b">250<", b">1e400<")
    response = outbound.post(
        f"/salesforce/outbound?token={OUTBOUND_TOKEN}", data=message, content_type="text/xml"
    )
    assert response.status_code == 400
    assert b"NumberOfEmployees: expected a finite number" in response.data
    assert list(store.log()) == []
