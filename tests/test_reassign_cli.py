"""`leadrelay reassign` end to end against the faked HubSpot and Salesforce APIs."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml
from click.testing import CliRunner
from conftest import config_data, rep
from fakes import hubspot_api, salesforce_api
from fakes.salesforce_api import REP_USERS

from adapters.hubspot.limits import RetryPolicy
from adapters.salesforce.search import query_fields
from connector import reassign_cli
from connector.cli import main
from workflows.store_registry import open_store

fake_hubspot = hubspot_api.fake_hubspot
fake_salesforce = salesforce_api.fake_salesforce

OWNER = {"alice": "101", "bob": "102", "chen": "103"}
SEARCH = "/crm/v3/objects/contacts/search"
BATCH_UPDATE = "/crm/v3/objects/contacts/batch/update"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(reassign_cli, "POLICY", RetryPolicy(attempts=1, budget=10.0))


@pytest.fixture
def app_yaml(tmp_path):
    reps = [
        rep(name, hubspot_owner_id=OWNER[name], salesforce_user_id=REP_USERS[name],
            active=name != "alice")
        for name in ("alice", "bob", "chen")
    ]  # fmt: skip
    data = config_data(reps=reps, store="sqlite:///state.sqlite")
    data["pools"]["closers"] = {"members": ["chen"]}
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def leadrelay(app_yaml, *args):
    return CliRunner().invoke(main, ["--config", str(app_yaml), *args], catch_exceptions=False)


def log(app_yaml):
    store = open_store(f"sqlite:///{app_yaml.parent / 'state.sqlite'}")
    try:
        return list(store.log())
    finally:
        store.close()


def hubspot_book(fake, count: int, owner: str = "101") -> None:
    for i in range(count):
        fake.add_contact(str(1000 + i), hubspot_owner_id=owner, email=f"c{i}@acme{i}.com",
                         hubspot_owner_assigneddate="1764000000000")  # fmt: skip


def written_ids(fake) -> list[str]:
    return [item["id"] for call in fake.calls("POST", BATCH_UPDATE) for item in call.body["inputs"]]


@pytest.fixture
def no_salesforce(monkeypatch):
    for name in ("SALESFORCE_INSTANCE_URL", "SALESFORCE_ACCESS_TOKEN", "SALESFORCE_USERNAME",
                 "SALESFORCE_CONSUMER_KEY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_moves_a_hubspot_book_bigger_than_a_search_page(app_yaml, fake_hubspot, no_salesforce):
    hubspot_book(fake_hubspot, 250)
    fake_hubspot.add_contact("5", hubspot_owner_id="102")
    result = leadrelay(app_yaml, "reassign", "--from", "alice")
    assert result.exit_code == 0, result.output
    owners = Counter(c["hubspot_owner_id"] for c in fake_hubspot.contacts.values())
    assert owners == {"102": 126, "103": 125}
    searches = fake_hubspot.calls("POST", SEARCH)
    assert len(searches) == 2  # 200, then the last 50: no empty page to end on
    assert all(s.body["limit"] <= 200 and "after" not in s.body for s in searches)
    assert sorted(written_ids(fake_hubspot)) == sorted(str(1000 + i) for i in range(250))
    assert [len(c.body["inputs"]) for c in fake_hubspot.calls("POST", BATCH_UPDATE)] == [
        100, 100, 50,
    ]  # fmt: skip
    assert {r.source for r in log(app_yaml)} == {"reassign"}
    assert "salesforce: skipped: no Salesforce credentials" in result.stderr
    assert "250 reassigned" in result.stderr
    assert "hubspot 1000: reassigned alice -> bob by everyone" in result.stdout


def test_hubspot_writes_failing_mid_run_are_finished_by_running_again(
    app_yaml, fake_hubspot, no_salesforce
):
    hubspot_book(fake_hubspot, 250)
    fake_hubspot.fail_next(503, times=2, path=BATCH_UPDATE, after=1)
    first = leadrelay(app_yaml, "reassign", "--from", "alice")
    assert first.exit_code == 1
    assert "100 reassigned" in first.stderr and "150 failed" in first.stderr
    assert "run the same command again" in first.stderr
    decided = {r.lead_id: r.new_owner for r in log(app_yaml)}
    assert len(decided) == 250
    moved_first = set(written_ids(fake_hubspot)[:100])

    again = leadrelay(app_yaml, "reassign", "--from", "alice")
    assert again.exit_code == 0, again.output
    assert "150 reassigned" in again.stderr
    finished = written_ids(fake_hubspot)[100 + 150 :]  # after the two failed calls' inputs
    assert len(finished) == 150 and not moved_first & set(finished)
    assert {r.lead_id: r.new_owner for r in log(app_yaml)} == decided  # decided once each
    name = {v: k for k, v in OWNER.items()}
    assert {cid: name[c["hubspot_owner_id"]] for cid, c in fake_hubspot.contacts.items()} == decided


def test_hubspot_search_failing_mid_run_stops_then_resumes(app_yaml, fake_hubspot, no_salesforce):
    hubspot_book(fake_hubspot, 250)
    fake_hubspot.fail_next(503, times=1, path=SEARCH, after=1)
    first = leadrelay(app_yaml, "reassign", "--from", "alice")
    assert first.exit_code == 1 and "hubspot: stopped" in first.stderr
    assert "200 reassigned" in first.stderr
    again = leadrelay(app_yaml, "reassign", "--from", "alice")
    assert again.exit_code == 0 and "50 reassigned" in again.stderr
    assert len(written_ids(fake_hubspot)) == 250 == len(set(written_ids(fake_hubspot)))
    assert len(log(app_yaml)) == 250


def test_dry_run_changes_nothing_and_shows_a_realistic_rotation(
    app_yaml, fake_hubspot, no_salesforce
):
    hubspot_book(fake_hubspot, 4)
    result = leadrelay(app_yaml, "reassign", "--from", "alice", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split(" -> ")[1].split()[0] for line in lines] == ["bob", "chen", "bob", "chen"]
    assert all("would move alice" in line for line in lines)
    assert "dry run: 4 would reassign" in result.stderr
    assert fake_hubspot.calls("POST", BATCH_UPDATE) == []
    assert log(app_yaml) == []
    assert {c["hubspot_owner_id"] for c in fake_hubspot.contacts.values()} == {"101"}


def test_only_open_and_to_a_pool(app_yaml, fake_hubspot, no_salesforce):
    hubspot_book(fake_hubspot, 3)
    fake_hubspot.contacts["1001"]["lifecyclestage"] = "customer"
    fake_hubspot.contacts["1002"]["hs_lead_status"] = "UNQUALIFIED"
    result = leadrelay(app_yaml, "reassign", "--from", "alice", "--to", "closers", "--only-open")
    assert result.exit_code == 0, result.output
    assert "1 reassigned, 2 skipped" in result.stderr
    owners = {cid: c["hubspot_owner_id"] for cid, c in fake_hubspot.contacts.items()}
    assert owners == {"1000": "103", "1001": "101", "1002": "101"}
    assert "lifecycle stage customer" in result.stdout


def test_moves_a_salesforce_book_page_by_page(app_yaml, fake_salesforce, monkeypatch):
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    fake_salesforce.page_size = 3
    alice = REP_USERS["alice"]
    for i in range(8):
        lead_id = f"00Q5g00000000{i:02d}EAA"
        fake_salesforce.leads[lead_id] = {
            "Id": lead_id, "OwnerId": alice, "Company": f"Co {i}", "Status": "Open",
            "IsConverted": i == 7,
        }  # fmt: skip
    fake_salesforce.leads["00Q5g0000000099EAA"] = {"Id": "00Q5g0000000099EAA",
                                                   "OwnerId": REP_USERS["bob"]}  # fmt: skip
    fake_salesforce.owned_query_pages = 1  # the second page fails
    first = leadrelay(app_yaml, "reassign", "--from", "alice")
    assert first.exit_code == 1 and "salesforce: stopped" in first.stderr
    assert "hubspot: skipped: HUBSPOT_ACCESS_TOKEN is not set" in first.stderr
    assert len(fake_salesforce.writes) == 3
    fake_salesforce.owned_query_pages = None
    again = leadrelay(app_yaml, "reassign", "--from", "alice")
    assert again.exit_code == 0, again.output
    assert "4 reassigned" in again.stderr
    moved = sorted(w.lead_id for w in fake_salesforce.writes)
    assert moved == sorted(f"00Q5g00000000{i:02d}EAA" for i in range(7))  # each once
    assert "00Q5g0000000007EAA" not in fake_salesforce.owners  # converted: left alone
    assert all(w.headers.get("Sforce-Auto-Assign") == "FALSE" for w in fake_salesforce.writes)
    assert "IsConverted = false" in fake_salesforce.owned_queries[0]


def test_refuses_an_unknown_rep_or_entry_and_both_to_and_flow(app_yaml, no_salesforce):
    assert leadrelay(app_yaml, "reassign", "--from", "zoe").exit_code == 2
    bad = leadrelay(app_yaml, "reassign", "--from", "alice", "--to", "nowhere")
    assert bad.exit_code == 2 and "pool:closers" in bad.output
    both = leadrelay(app_yaml, "reassign", "--from", "alice", "--to", "closers", "--flow")
    assert both.exit_code == 2


def test_no_credentials_anywhere_says_so_and_does_nothing(app_yaml, no_salesforce, monkeypatch):
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    result = leadrelay(app_yaml, "reassign", "--from", "alice")
    assert result.exit_code == 0
    assert "hubspot: skipped" in result.stderr and "salesforce: skipped" in result.stderr
    assert "nothing to do" in result.stderr


def test_salesforce_query_names_only_salesforce_fields():
    fields = query_fields(["Rating", "Language__c", "jobtitle", "bad name", "Id"])
    assert fields[-2:] == ["Rating", "Language__c"] and "jobtitle" not in fields
    assert fields.count("Id") == 1 and "IsConverted" in fields
