"""Salesforce fields into Leads, Salesforce ids, outbound message parsing, `leadrelay check`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import FIXTURES, config_data, rep
from fakes.salesforce_api import ORG_ID, QUEUE_ID, salesforce_config_data

from adapters.salesforce.check import check_warnings
from adapters.salesforce.ids import id_in, is_user_id
from adapters.salesforce.lead import keep_reason, lead_from_fields
from adapters.salesforce.outbound_message import parse_outbound_message
from workflows.errors import LeadError

SAMPLES = FIXTURES / "salesforce"
LEAD_ID = "00Q5g0000000001EAA"


def test_lead_fields_are_translated_and_the_rest_kept_raw():
    lead = lead_from_fields(
        {
            "Id": LEAD_ID, "OwnerId": QUEUE_ID, "Company": "Acme", "Country": "US",
            "State": "NY", "PostalCode": "10001", "Industry": "Technology",
            "NumberOfEmployees": "250", "AnnualRevenue": "2.5E7", "LeadSource": "Web",
            "Status": "Open", "Email": "Pat@Acme.example", "FirstName": "Pat",
            "LastName": "Lee", "Rating": "Hot", "CreatedDate": "2026-11-24T15:00:00.000Z",
            "Language__c": "es",
        }
    )  # fmt: skip
    assert (lead.id, lead.crm, lead.object_type, lead.owner) == (
        LEAD_ID, "salesforce", "lead", QUEUE_ID,
    )  # fmt: skip
    assert (lead.employees, lead.annual_revenue) == (250, 25_000_000)
    assert (lead.country, lead.state, lead.postal_code, lead.industry) == (
        "US", "NY", "10001", "Technology",
    )  # fmt: skip
    assert (lead.source, lead.status, lead.company, lead.domain) == (
        "Web", "Open", "Acme", "acme.example",
    )  # fmt: skip
    assert lead.created_at == datetime(2026, 11, 24, 15, tzinfo=UTC)
    assert lead.raw == {"Rating": "Hot", "Language__c": "es"}
    assert lead.value("raw.Language__c") == "es"


def test_empty_and_missing_fields_are_none():
    lead = lead_from_fields({"Id": LEAD_ID, "Country": None, "NumberOfEmployees": ""})
    assert lead.country is None and lead.employees is None and lead.owner is None


@pytest.mark.parametrize(
    "fields, field",
    [
        ({}, "Id"),
        ({"Id": "00Q123"}, "Id"),
        ({"Id": "0035g00000Zz9YyAAJ"}, "Id"),  # a Contact
        ({"Id": "../../sobjects/User/x"}, "Id"),
        ({"Id": LEAD_ID, "NumberOfEmployees": "lots"}, "NumberOfEmployees"),
        ({"Id": LEAD_ID, "CreatedDate": "yesterday"}, "CreatedDate"),
    ],
)
def test_unusable_fields_name_the_salesforce_field(fields, field):
    with pytest.raises(LeadError) as raised:
        lead_from_fields(fields)
    assert raised.value.field == field


def test_ids_match_in_15_and_18_character_forms_case_sensitively():
    assert id_in(ORG_ID, [ORG_ID[:15]])
    assert id_in(ORG_ID[:15], [ORG_ID])
    assert id_in(ORG_ID, ["00D000000000001AAA", ORG_ID])
    assert not id_in(ORG_ID, [ORG_ID.swapcase()])
    assert not id_in(ORG_ID, [])
    assert not id_in("", [""])
    assert not id_in("00D", ["00D"])


def test_only_user_owned_leads_are_kept():
    queue_owned = lead_from_fields({"Id": LEAD_ID, "OwnerId": QUEUE_ID})
    user_owned = lead_from_fields({"Id": LEAD_ID, "OwnerId": "0055g00000Ab1CdAAJ"})
    assert keep_reason(queue_owned, reassign_user_owned=False) is None
    assert keep_reason(user_owned, reassign_user_owned=True) is None
    assert "owned by user 0055g00000Ab1CdAAJ" in str(keep_reason(user_owned, False))
    assert is_user_id("0055g00000Ab1Cd") and not is_user_id(QUEUE_ID)


# -- the outbound message parser ---------------------------------------------------------------
def test_parse_one_lead_message():
    message = parse_outbound_message((SAMPLES / "one_lead.xml").read_bytes())
    assert (message.organization_id, message.action_id) == (ORG_ID, "04k5g000000KmQpAAK")
    (notification,) = message.notifications
    assert notification.id == "04l5g0000000001AAA"
    assert notification.lead.id == LEAD_ID and notification.lead.company == "Company 1"
    assert notification.lead.raw == {"Rating": "Warm"}


def test_parse_nil_fields_as_empty():
    message = parse_outbound_message((SAMPLES / "nil_fields.xml").read_bytes())
    (notification,) = message.notifications
    lead = notification.lead
    assert (lead.country, lead.email, lead.employees, lead.annual_revenue) == (None,) * 4
    assert lead.raw == {"Language__c": None}


def test_parse_hundred_notifications_in_order():
    message = parse_outbound_message((SAMPLES / "hundred_leads.xml").read_bytes())
    assert len(message.notifications) == 100
    assert [n.lead.company for n in message.notifications[:2]] == ["Company 1", "Company 2"]


# -- leadrelay check ---------------------------------------------------------------------------
def config(make_config, **overrides):
    return make_config(salesforce_config_data(**overrides))


def test_no_warnings_when_salesforce_is_not_used(make_config):
    assert check_warnings(make_config(config_data()), env={}) == []


def test_missing_credentials_and_secrets_are_named(make_config):
    warnings = check_warnings(config(make_config), env={"SALESFORCE_INSTANCE_URL": "https://x"})
    text = "\n".join(warnings)
    assert "no Salesforce credentials" in text and "missing: SALESFORCE_ACCESS_TOKEN" in text
    assert "LEADRELAY_OUTBOUND_TOKEN" in text and "LEADRELAY_FLOW_TOKEN" in text


def test_a_complete_setup_has_no_warnings(make_config):
    env = {
        "SALESFORCE_CONSUMER_KEY": "k", "SALESFORCE_CONSUMER_SECRET": "s",
        "SALESFORCE_DOMAIN": "acme.my", "LEADRELAY_OUTBOUND_TOKEN": "t",
        "LEADRELAY_FLOW_TOKEN": "f",
    }  # fmt: skip
    assert check_warnings(config(make_config), env=env) == []


def test_legacy_login_empty_org_ids_and_unmapped_reps_are_warned(make_config):
    env = {"SALESFORCE_USERNAME": "u", "SALESFORCE_PASSWORD": "p",
           "SALESFORCE_SECURITY_TOKEN": "t"}  # fmt: skip
    data = salesforce_config_data(salesforce={})
    data["reps"].append(rep("dana"))
    text = "\n".join(check_warnings(make_config(data), env=env))
    assert "retiring" in text
    assert "salesforce.org_ids is empty" in text
    assert "rep dana has no salesforce_user_id" in text
