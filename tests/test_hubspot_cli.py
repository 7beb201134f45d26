"""`leadrelay hubspot register|owners` and `leadrelay check`, against the fake HubSpot API."""

from __future__ import annotations

import json
import math
import struct
import time

import pytest
import yaml
from budget_helpers import budget_at, pause_at
from click.testing import CliRunner
from fakes.hubspot_api import DEVELOPER_KEY, fake_hubspot  # noqa: F401 (fixture)
from fakes.hubspot_requests import hubspot_config_data

from adapters.hubspot.limits import RateLimiter
from connector.cli import main

URL = "https://leads.example.com/hubspot/action"


@pytest.fixture
def write_config(tmp_path):
    def write(**overrides):
        path = tmp_path / "app.yaml"
        data = hubspot_config_data(store="sqlite:///state.sqlite", **overrides)
        path.write_text(yaml.safe_dump(data))
        return path

    return write


def leadrelay(config, *args):
    return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)


def test_register_dry_run_prints_the_definition_derived_from_app_yaml(write_config):
    result = leadrelay(
        write_config(), "hubspot", "register", "--app-id", "42", "--url", URL, "--dry-run"
    )
    assert result.exit_code == 0, result.output
    definition = json.loads(result.output)
    assert definition["actionUrl"] == URL
    assert definition["objectTypes"] == ["CONTACT", "COMPANY", "DEAL", "TICKET"]
    # employees: a contact's numemployees, a company's numberofemployees
    assert definition["objectRequestOptions"]["properties"] == [
        "dealname", "domain", "email", "hubspot_owner_id", "name", "numberofemployees",
        "numemployees", "subject",
    ]  # fmt: skip
    entry, overwrite = definition["inputFields"]
    options = entry["typeDefinition"]["options"]
    assert [o["value"] for o in options] == [
        "__flow__", "pool:big", "pool:team", "rule:enterprise", "rule:everyone",
    ]  # fmt: skip
    assert [o["label"] for o in options][1:3] == ["Pool: big", "Pool: team"]
    assert overwrite["typeDefinition"]["type"] == "bool"
    outputs = {f["typeDefinition"]["name"]: f["typeDefinition"] for f in definition["outputFields"]}
    assert list(outputs) == ["owner_id", "owner_email", "rule", "reason", "outcome", "task_id"]
    assert [o["value"] for o in outputs["outcome"]["options"]] == [
        "assigned", "kept", "unassigned", "queued", "failed",
    ]  # fmt: skip
    assert definition["labels"]["en"]["actionName"] == "Rotate to owner via leadrelay"
    assert definition["published"] is True


def test_register_creates_then_updates_the_same_definition(write_config, fake_hubspot, monkeypatch):
    monkeypatch.setenv("HUBSPOT_DEVELOPER_API_KEY", DEVELOPER_KEY)
    config = write_config()
    first = leadrelay(config, "hubspot", "register", "--app-id", "42", "--url", URL)
    assert first.exit_code == 0, first.output
    assert "created action 5001 for app 42" in first.output
    moved = "https://new.example.com/hubspot/action"
    second = leadrelay(config, "hubspot", "register", "--app-id", "42", "--url", moved)
    assert "updated action 5001" in second.output
    (definition,) = fake_hubspot.definitions["42"]
    assert definition["actionUrl"] == moved
    assert all(r.query["hapikey"] == [DEVELOPER_KEY] for r in fake_hubspot.requests)


def test_register_without_the_developer_key_names_the_variable(write_config, monkeypatch):
    monkeypatch.delenv("HUBSPOT_DEVELOPER_API_KEY", raising=False)
    result = leadrelay(write_config(), "hubspot", "register", "--app-id", "42", "--url", URL)
    assert result.exit_code == 1
    assert "HUBSPOT_DEVELOPER_API_KEY is not set" in result.output


def test_owners_lists_every_page_with_the_rep_each_belongs_to(write_config, fake_hubspot):
    fake_hubspot.page_size = 2
    result = leadrelay(write_config(), "hubspot", "owners")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["101", "alice@example.com", "Alice", "Ng", "alice"]
    assert lines[3].split()[0] == "103"
    assert "3 owners" in lines[-1]
    assert len(fake_hubspot.calls("GET", "/crm/v3/owners")) == 2


def test_owners_without_a_token_names_the_variable(write_config, monkeypatch):
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    result = leadrelay(write_config(), "hubspot", "owners")
    assert result.exit_code == 1
    assert "HUBSPOT_ACCESS_TOKEN is not set" in result.output


def test_check_warns_about_owner_ids_hubspot_does_not_know(write_config, fake_hubspot, monkeypatch):
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", "s")
    data = hubspot_config_data()
    data["reps"][1]["hubspot_owner_id"] = "999"
    data["reps"][2]["hubspot_owner_id"] = "9003"  # chen's user id, not the owner id
    result = leadrelay(write_config(reps=data["reps"], hubspot={"write_owner": "api"}), "check")
    assert result.exit_code == 0, result.output
    assert "warning: rep bob: HubSpot has no owner with id 999" in result.output
    assert "rep chen: HubSpot has no owner with id 9003 (that is the user id of owner 103" in (
        result.output
    )
    assert "rep alice" not in result.output


def test_check_names_missing_credentials(write_config, monkeypatch):
    for name in ("HUBSPOT_CLIENT_SECRET", "HUBSPOT_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = leadrelay(write_config(hubspot={"write_owner": "api"}), "check")
    assert "warning: HUBSPOT_CLIENT_SECRET is not set" in result.output
    assert "warning: HUBSPOT_ACCESS_TOKEN is not set" in result.output


def test_check_says_the_sweep_cannot_judge_tickets_only_when_a_sweep_runs(write_config):
    sweeping = leadrelay(write_config(sla={"first_touch": "15m"}), "check")
    assert sweeping.exit_code == 0, sweeping.output
    assert "hubspot.objects offers the action on ticket records" in sweeping.output
    assert "HubSpot tickets have no contacted signal" in sweeping.output
    assert "deal records" not in sweeping.output and "company records" not in sweeping.output
    contacts_only = write_config(sla={"first_touch": "15m"}, hubspot={"objects": ["contact"]})
    assert "ticket" not in leadrelay(contacts_only, "check").output
    assert "ticket" not in leadrelay(write_config(), "check").output  # no sweep


def test_resume_with_nothing_paused_says_so(write_config):
    result = leadrelay(write_config(), "hubspot", "resume")
    assert result.exit_code == 0, result.output
    assert result.output == "HubSpot calls were not paused; nothing to lift\n"


def test_check_and_resume_name_a_budget_file_they_cannot_use(write_config, monkeypatch):
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", "s")
    config = write_config()
    odd = config.parent / "state.sqlite.hubspot-0123456789abcdef.budget"
    odd.mkdir()  # (a directory: unreadable even for root, which the tests may run as)
    checked = leadrelay(config, "check")
    assert checked.exit_code == 0, checked.output
    assert f"warning: cannot read the HubSpot budget file {odd}: Is a directory" in checked.output
    resumed = CliRunner().invoke(main, ["--config", str(config), "hubspot", "resume"])
    assert resumed.exit_code == 1
    assert f"cannot change the HubSpot budget file {odd}: Is a directory" in resumed.output
    assert "Traceback" not in resumed.output


def test_check_and_resume_read_a_corrupt_budget_file_as_a_fresh_bucket(write_config, monkeypatch):
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", "s")
    config = write_config()
    budget = config.parent / "state.sqlite.hubspot-0123456789abcdef.budget"
    now = time.monotonic()
    # A pause in force for an infinite Retry-After, and a balance no process could spend.
    budget.write_bytes(struct.pack("<4d?", -1e300, now, now + 30, math.inf, False))
    checked = leadrelay(config, "check")  # (catch_exceptions=False: a traceback fails here)
    assert checked.exit_code == 0, checked.output
    assert "paused" not in checked.output
    resumed = leadrelay(config, "hubspot", "resume")
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output == "HubSpot calls were not paused; nothing to lift\n"
    tokens, _, paused_until, asked, daily = struct.unpack("<4d?", budget.read_bytes())
    assert (tokens > 0, paused_until, asked, daily) == (True, 0.0, -1.0, False)


@pytest.mark.parametrize("store", ["garbage", "missing"])
def test_resume_lifts_a_pause_whatever_state_the_store_is_in(write_config, store):
    config = write_config()
    database = config.parent / "state.sqlite"
    if store == "garbage":
        database.write_bytes(b"this is not a database\n" * 100)
    budget = config.parent / "state.sqlite.hubspot-0123456789abcdef.budget"
    RateLimiter(per_second=1, burst=1, shared=budget_at(budget)).pause(30)

    resumed = leadrelay(config, "hubspot", "resume")

    assert resumed.exit_code == 0, resumed.output
    assert resumed.output.startswith("lifted: HubSpot calls paused until ")
    assert pause_at(budget) is None
    assert database.exists() == (store == "garbage")  # a missing store is not created
