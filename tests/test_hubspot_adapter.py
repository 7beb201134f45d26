"""HubSpot contacts and action requests in the common model: pure translation from fixtures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import rep
from fakes.hubspot_requests import action_body

from adapters.hubspot.contact import ContactNeeds, contact_properties, lead_from_contact
from adapters.hubspot.payload import parse_action_request
from workflows.errors import LeadError


@pytest.fixture
def config(make_config):
    return make_config()  # offers pool:team and rule:everyone as routing entries


def test_properties_come_from_every_rule_condition_and_target(make_config):
    config = make_config(
        reps=[rep("alice"), rep("bob")],
        pools={"team": {"members": ["alice", "bob"]}},
        flow=[
            {
                "name": "outer",
                "when": {"any": [{"country": "US"}, {"not": {"raw.hs_persona": "x"}}]},
                "flow": [
                    {"name": "inner", "when": {"all": [{"language": "es"}]},
                     "assign": {"account_owner": True, "else": {"previous_owner": True}}},
                ],
            },
            {"name": "rest", "when": {"employees": {"gte": 5}, "postal_code": "02134"},
             "assign": {"pool": "team"}},
        ],
    )  # fmt: skip
    assert contact_properties(config) == [
        "associatedcompanyid", "country", "email", "hs_language", "hs_persona",
        "hubspot_owner_id", "numemployees", "zip",
    ]  # fmt: skip


def test_the_owner_and_email_are_always_read(make_config):
    assert contact_properties(make_config()) == ["email", "hubspot_owner_id"]


def test_only_properties_absent_from_the_request_count_as_missing(make_config):
    config = make_config(
        flow=[{"name": "us", "when": {"country": "US"}, "assign": {"pool": "team"}}]
    )
    needs = ContactNeeds.of(config)
    assert needs.missing({"email": "", "hubspot_owner_id": "", "country": ""}) == []
    assert needs.missing({"email": "a@b.c"}) == ["country", "hubspot_owner_id"]


def test_contact_properties_become_a_lead():
    lead = lead_from_contact(
        "904",
        {
            "email": "Ana@Hooli.com", "country": "US", "numemployees": "25-50",
            "hs_language": "es", "hubspot_owner_id": "101", "annualrevenue": "1,200,000",
            "createdate": "1700000000000", "hs_persona": "persona_1", "zip": "",
        },
        account_owner="102",
    )  # fmt: skip
    assert (lead.id, lead.crm, lead.object_type) == ("904", "hubspot", "contact")
    assert (lead.employees, lead.annual_revenue, lead.language) == (25, 1200000, "es")
    assert (lead.owner, lead.account_owner, lead.domain) == ("101", "102", "hooli.com")
    assert lead.created_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert lead.postal_code is None
    assert lead.value("raw.hs_persona") == "persona_1"


def test_open_ended_employee_range_reads_its_lower_bound():
    assert lead_from_contact("1", {"numemployees": "1000+"}).employees == 1000


def test_action_request_is_parsed(config):
    action = parse_action_request(action_body(inputFields={"routing_entry": "team"}), config)
    assert (action.callback_id, action.portal_id, action.contact_id) == (
        "ap-102670506-56776413549-7-0", "102670506", "904",
    )  # fmt: skip
    assert (action.entry, action.overwrite) == ("team", False)
    assert action.idempotency_key == "hubspot:ap-102670506-56776413549-7-0"
    assert action.properties["numemployees"] == "25-50"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"callbackId": ""}, "callbackId"),
        ({"object": None}, "object"),
        ({"object": {"objectId": "abc"}}, "object.objectId"),
        ({"object": {"objectId": 1, "objectType": "LINE_ITEM"}}, "object.objectType"),
        ({"object": {"objectId": 1, "properties": ["x"]}}, "object.properties"),
        ({"object": {"objectId": 1, "properties": {"a": {"b": 1}}}}, "object.properties.a"),
        ({"origin": {"portalId": True}}, "origin.portalId"),
        ({"inputFields": {"overwrite_owner": "maybe"}}, "inputFields.overwrite_owner"),
        ({"inputFields": "x"}, "inputFields"),
    ],
)
def test_bad_requests_name_the_field(change, field, config):
    with pytest.raises(LeadError) as bad:
        parse_action_request(action_body(**change), config)
    assert bad.value.field == field


def test_a_body_that_is_not_an_object_is_refused(config):
    with pytest.raises(LeadError) as bad:
        parse_action_request([1, 2], config)
    assert bad.value.field == "body"
