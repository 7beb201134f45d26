"""`leadrelay salesforce users` and the Salesforce lines of `leadrelay check`."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner
from fakes import salesforce_api
from fakes.salesforce_api import (
    REP_USERS,
    salesforce_config_data,
)

from connector.cli import main

fake_salesforce = salesforce_api.fake_salesforce  # the fixture, requested by name below

USERS = [
    {"Id": REP_USERS["alice"], "Name": "Alice Ng", "Email": "alice@acme.example",
     "Username": "alice@acme.example"},
    {"Id": "0055g00000NeW01AAF", "Name": "Nia Ewing", "Email": "nia@acme.example",
     "Username": "nia@acme.example"},
    {"Id": "0055g00000ZeD01AAF", "Name": "Zed Ortiz", "Email": "zed@acme.example",
     "Username": "zed@acme.example"},
]  # fmt: skip


@pytest.fixture
def app_yaml(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(salesforce_config_data(store="sqlite:///state.sqlite")))
    return path


def leadrelay(config, *args: str):
    return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)


def test_users_lists_active_users_with_their_rep(app_yaml, fake_salesforce):
    fake_salesforce.users = USERS
    result = leadrelay(app_yaml, "salesforce", "users")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "email", "rep", "name"]
    assert lines[1].split() == [REP_USERS["alice"], "alice@acme.example", "alice", "Alice", "Ng"]
    assert lines[2].split() == ["0055g00000NeW01AAF", "nia@acme.example", "-", "Nia", "Ewing"]
    assert len(lines) == 4  # every page was read (the fake pages by 2)
    assert "3 active users" in result.stderr


def test_users_as_json_lines(app_yaml, fake_salesforce):
    fake_salesforce.users = USERS
    result = leadrelay(app_yaml, "salesforce", "users", "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0] == {"id": REP_USERS["alice"], "email": "alice@acme.example",
                       "name": "Alice Ng", "rep": "alice"}  # fmt: skip
    assert [r["rep"] for r in rows] == ["alice", "", ""]


def test_users_without_credentials_exits_1_naming_what_is_missing(
    app_yaml, fake_salesforce, monkeypatch
):

    monkeypatch.delenv("SALESFORCE_ACCESS_TOKEN")
    result = leadrelay(app_yaml, "salesforce", "users")
    assert result.exit_code == 1
    assert "SALESFORCE_ACCESS_TOKEN" in result.stderr
    assert fake_salesforce.requests == []


def test_users_when_salesforce_fails_exits_1(app_yaml, fake_salesforce):
    fake_salesforce.down = True
    result = leadrelay(app_yaml, "salesforce", "users")
    assert result.exit_code == 1 and "503" in result.stderr


def test_check_warns_about_missing_salesforce_secrets(app_yaml, fake_salesforce, monkeypatch):
    monkeypatch.delenv("SALESFORCE_ACCESS_TOKEN")
    result = leadrelay(app_yaml, "check")
    assert result.exit_code == 0
    assert "warning: no Salesforce credentials" in result.output
    assert "warning: LEADRELAY_FLOW_TOKEN is not set" in result.output
