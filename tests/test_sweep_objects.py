"""``leadrelay sweep --once`` over deals, tickets and Salesforce Contacts and Cases: each object
read from its own API with its own contacted signal, and said plainly when it has none."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import config_data, rep
from fakes.hubspot_api import fake_hubspot  # noqa: F401 (fixture)
from fakes.salesforce_api import REP_USERS, fake_salesforce  # noqa: F401 (fixture)
from sweep_helpers import OWNER_IDS
from test_sweep_cli import LATER, route, run, write_config

from connector.cli import main
from workflows.model import Lead


@pytest.fixture
def hubspot_config(tmp_path: Path) -> Path:
    reps = [rep(name, hubspot_owner_id=owner) for name, owner in OWNER_IDS.items()]
    return write_config(tmp_path, config_data(reps=reps))


@pytest.fixture
def salesforce_config(tmp_path: Path) -> Path:
    reps = [rep(name, salesforce_user_id=user) for name, user in REP_USERS.items()]
    return write_config(tmp_path, config_data(reps=reps))


def hubspot_records(fake, config_path: Path, path: str, kind: str, count: int, **props):
    """``count`` records of ``kind`` routed at 10:00 and present in the fake with that owner."""
    ids = [str(2000 + n) for n in range(count)]
    leads = [Lead(id=i, crm="hubspot", object_type=kind) for i in ids]
    for record_id, owner in zip(ids, route(config_path, leads, "hubspot"), strict=True):
        fake.add_record(path, record_id, hubspot_owner_id=owner, **props)
    return ids


def salesforce_records(fake, config_path: Path, kind: str, ids: list[str], **fields):
    leads = [Lead(id=i, crm="salesforce", object_type=kind) for i in ids]
    for record_id, owner in zip(ids, route(config_path, leads, "salesforce"), strict=True):
        fake.leads[record_id] = {"Id": record_id, "OwnerId": owner, "IsDeleted": False,
                                 "LastActivityDate": None, **fields}  # fmt: skip
    return ids


def test_an_untouched_hubspot_deal_rotates_through_the_deals_api(fake_hubspot, hubspot_config):
    ids = hubspot_records(fake_hubspot, hubspot_config, "deals", "deal", 3, dealname="D")
    before = {i: fake_hubspot.deals[i]["hubspot_owner_id"] for i in ids}
    output = run(hubspot_config, "--once", "--now", LATER)
    assert "3 due assignments: 3 rotated" in output
    (read,) = fake_hubspot.calls("POST", "/crm/v3/objects/deals/batch/read")
    assert sorted(i["id"] for i in read.body["inputs"]) == ids
    assert {"notes_last_contacted", "hs_is_closed"} <= set(read.body["properties"])
    assert "hs_lead_status" not in read.body["properties"]  # deals have none
    (write,) = fake_hubspot.calls("POST", "/crm/v3/objects/deals/batch/update")
    assert sorted(i["id"] for i in write.body["inputs"]) == ids
    assert all(fake_hubspot.deals[i]["hubspot_owner_id"] != before[i] for i in ids)
    assert fake_hubspot.calls("POST", "/crm/v3/objects/contacts") == []


@pytest.mark.parametrize(
    ("props", "outcome"),
    [
        ({"notes_last_contacted": "2026-11-24T15:06:00.000Z"}, "contacted"),
        ({"hs_is_closed": "true"}, "converted"),
    ],
)
def test_a_touched_or_closed_deal_is_settled(fake_hubspot, hubspot_config, props, outcome):
    hubspot_records(fake_hubspot, hubspot_config, "deals", "deal", 1, **props)
    output = run(hubspot_config, "--once", "--now", LATER)
    assert f"1 due assignments: 1 {outcome}" in output
    assert fake_hubspot.calls("POST", "/crm/v3/objects/deals/batch/update") == []


def test_a_hubspot_ticket_is_not_judged_and_the_sweep_says_why(fake_hubspot, hubspot_config):
    (ticket,) = hubspot_records(fake_hubspot, hubspot_config, "tickets", "ticket", 1)
    output = run(hubspot_config, "--once", "--now", LATER)
    assert "1 due assignments: 1 untracked" in output
    assert f"hubspot {ticket}" in output
    assert "HubSpot tickets have no contacted signal" in output
    assert fake_hubspot.requests == []  # nothing read, nothing written: no guess
    assert "0 due assignments" in run(hubspot_config, "--once", "--now", LATER)


def test_an_untouched_salesforce_contact_rotates_with_soql_from_contact(
    fake_salesforce, salesforce_config
):
    ids = [f"0035g00000C{n:04d}AAA" for n in range(2)]
    salesforce_records(fake_salesforce, salesforce_config, "contact", ids, LastName="Doe")
    before = {i: fake_salesforce.leads[i]["OwnerId"] for i in ids}
    output = run(salesforce_config, "--once", "--now", LATER)
    assert "2 due assignments: 2 rotated" in output
    (query,) = fake_salesforce.lead_queries
    assert " FROM Contact WHERE Id IN (" in query and "LastActivityDate" in query
    assert "IsConverted" not in query  # a Contact has no such field: Salesforce would refuse
    assert {(w.sobject, w.lead_id) for w in fake_salesforce.writes} == {("Contact", i) for i in ids}
    assert all(fake_salesforce.owners[i] != before[i] for i in ids)


def test_a_salesforce_contact_with_activity_since_is_contacted(fake_salesforce, salesforce_config):
    salesforce_records(fake_salesforce, salesforce_config, "contact", ["0035g00000C0001AAA"],
                       LastActivityDate="2026-11-24")  # fmt: skip
    assert "1 due assignments: 1 contacted" in run(salesforce_config, "--once", "--now", LATER)
    assert fake_salesforce.writes == []


@pytest.mark.parametrize(
    ("fields", "outcome"),
    [
        ({"Status": "New", "IsClosed": False}, "rotated"),
        ({"Status": "Working", "IsClosed": False}, "contacted"),
        ({"Status": "Closed", "IsClosed": True}, "converted"),
    ],
)
def test_a_case_is_judged_by_its_status(fake_salesforce, salesforce_config, fields, outcome):
    salesforce_records(fake_salesforce, salesforce_config, "case", ["5005g00000Cs1AbAAJ"],
                       **fields)  # fmt: skip
    output = run(salesforce_config, "--once", "--now", LATER)
    assert f"1 due assignments: 1 {outcome}" in output
    (query,) = fake_salesforce.lead_queries[:1]
    assert " FROM Case WHERE Id IN (" in query and "LastActivityDate" not in query


# -- leadrelay reassign --object ----------------------------------------------------------------
def test_reassign_moves_a_departing_reps_deals_only_when_asked(
    fake_hubspot, hubspot_config, monkeypatch
):
    for name in ("SALESFORCE_INSTANCE_URL", "SALESFORCE_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for n in range(3):
        fake_hubspot.add_record("deals", str(3000 + n), hubspot_owner_id="101", dealname="D",
                                hs_is_closed="true" if n == 2 else "false")  # fmt: skip
    fake_hubspot.add_contact("4000", hubspot_owner_id="101")

    deals = invoke(hubspot_config, "reassign", "--from", "alice", "--object", "deal", "--only-open")
    assert deals.exit_code == 0, deals.output
    assert "hubspot: 3 deal(s) of alice" in deals.stderr
    assert "2 reassigned, 1 skipped" in deals.stderr
    (search,) = fake_hubspot.calls("POST", "/crm/v3/objects/deals/search")
    assert "hs_is_closed" in search.body["properties"]
    (write,) = fake_hubspot.calls("POST", "/crm/v3/objects/deals/batch/update")
    assert sorted(i["id"] for i in write.body["inputs"]) == ["3000", "3001"]
    assert fake_hubspot.deals["3002"]["hubspot_owner_id"] == "101"  # closed: left alone
    assert fake_hubspot.contacts["4000"]["hubspot_owner_id"] == "101"  # not asked for
    assert fake_hubspot.calls("POST", "/crm/v3/objects/contacts/search") == []


def test_reassign_moves_a_salesforce_users_opportunities(fake_salesforce, salesforce_config):
    ids = [f"0065g00000O{n:04d}AAA" for n in range(2)]
    for opportunity_id in ids:
        fake_salesforce.leads[opportunity_id] = {
            "Id": opportunity_id, "OwnerId": REP_USERS["alice"], "IsClosed": False,
            "StageName": "Prospecting", "Amount": 5000,
        }  # fmt: skip
    result = invoke(salesforce_config, "reassign", "--from", "alice", "--object", "opportunity")
    assert result.exit_code == 0, result.output
    assert "2 reassigned" in result.stderr
    (query,) = fake_salesforce.owned_queries
    assert " FROM Opportunity WHERE OwnerId = " in query and "IsConverted" not in query
    assert {(w.sobject, w.lead_id) for w in fake_salesforce.writes} == {
        ("Opportunity", i) for i in ids
    }
    assert all(fake_salesforce.owners[i] != REP_USERS["alice"] for i in ids)


def invoke(config_path: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(config_path), *args], catch_exceptions=False)
