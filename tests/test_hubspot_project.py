"""`leadrelay hubspot project DIR`: the app's HubSpot project (platform 2025.2), checked against
the shapes of HubSpot's own templates, and what `leadrelay check` says per write mode."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from fakes.hubspot_requests import hubspot_config_data

from adapters.hubspot.check import missing_credentials, token_notes
from adapters.hubspot.definition import action_definition
from adapters.hubspot.project import project_files, required_scopes
from connector.cli import main
from workflows.config import Config

URL = "https://leads.example.com/hubspot/action"
SHAPES = json.loads(
    (Path(__file__).parent / "fixtures" / "hubspot_project" / "template_shapes.json").read_text()
)
APP = "src/app/app-hsmeta.json"
ACTION = "src/app/workflow-actions/rotate-to-owner-hsmeta.json"

# Keys HubSpot documents for these files that its minimal templates leave out: the action's
# outputs and the properties HubSpot sends (developers.hubspot.com/docs/apps/developer-platform/
# add-features/custom-workflow-actions; the same field shapes as the definitions API, whose
# options carry displayOrder and whose labels name outputs and the app).
DOCUMENTED_BEYOND_TEMPLATES = {
    "config.outputFields",
    "config.objectRequestOptions",
    "config.labels.en.outputFieldLabels",
    "config.labels.en.appDisplayName",
    "config.inputFields.typeDefinition.options.displayOrder",
}
# Template keys leadrelay leaves out on purpose: no UI extension fetches anything
# (permittedUrls), support contacts are the admin's to add, input descriptions are optional.
OPTIONAL_IN_TEMPLATES = {
    "config.permittedUrls",
    "config.support",
    "config.labels.en.inputFieldDescriptions",
}
# Maps keyed by the action's own field names: only their values have a shape.
FIELD_NAME_MAPS = {"inputFieldLabels", "inputFieldDescriptions", "outputFieldLabels"}
JSON_TYPES = {"string": str, "boolean": bool, "number": (int, float)}


def shape_problems(value: Any, template: Any, path: str = "") -> list[str]:
    """Where ``value`` leaves the template's shape: unknown keys, missing keys, wrong types."""
    where = path or "(top)"
    if isinstance(template, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        problems = []
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if key in FIELD_NAME_MAPS:
                if not all(isinstance(text, str) for text in item.values()):
                    problems.append(f"{child}: every label must be text")
            elif key in template:
                problems += shape_problems(item, template[key], child)
            elif child not in DOCUMENTED_BEYOND_TEMPLATES:
                problems.append(f"{child}: not a key of HubSpot's template")
        for key in template:
            child = f"{path}.{key}" if path else key
            if key not in value and child not in OPTIONAL_IN_TEMPLATES:
                problems.append(f"{child}: missing (HubSpot's template has it)")
        return problems
    if isinstance(template, list):
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [p for item in value if template for p in shape_problems(item, template[0], path)]
    if not isinstance(value, JSON_TYPES[template]) or (
        template == "number" and isinstance(value, bool)
    ):
        return [f"{where}: expected {template}, got {value!r}"]
    return []


def in_mode(config: Config, mode: str) -> Config:
    """``config`` with another write mode. model_copy skips validation, so this also names
    modes this branch's schema does not list yet (``batch`` comes with the flusher)."""
    return dataclasses.replace(
        config, hubspot=config.hubspot.model_copy(update={"write_owner": mode})
    )


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


def read(directory: Path, relative: str) -> Any:
    return json.loads((directory / relative).read_text())


def test_project_writes_the_files_hubspots_cli_uploads(write_config, tmp_path):
    out = tmp_path / "hs-project"
    result = leadrelay(write_config(), "hubspot", "project", str(out), "--url", URL)
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "hsproject.json", APP, ACTION,
    ]  # fmt: skip
    assert read(out, "hsproject.json") == {
        "name": "leadrelay", "srcDir": "src", "platformVersion": "2025.2",
    }  # fmt: skip
    app = read(out, APP)
    assert app["type"] == "app"
    assert app["config"]["distribution"] == "private"
    assert app["config"]["auth"]["type"] == "static"
    action = read(out, ACTION)
    assert action["type"] == "workflow-action"
    assert action["config"]["actionUrl"] == URL
    assert action["config"]["isPublished"] is True
    assert action["config"]["supportedClients"] == [{"client": "WORKFLOWS"}]
    assert action["config"]["objectTypes"] == ["CONTACT", "COMPANY", "DEAL", "TICKET"]
    assert "hs project upload" in result.output
    assert "HUBSPOT_CLIENT_SECRET" in result.output and "HUBSPOT_ACCESS_TOKEN" in result.output


@pytest.mark.parametrize(
    ("relative", "template"),
    [
        ("hsproject.json", "hsproject.json"),
        (APP, "app-hsmeta.json"),
        (ACTION, "workflow-action-hsmeta.json"),
    ],
)
def test_each_file_has_the_shape_of_hubspots_template(write_config, tmp_path, relative, template):
    out = tmp_path / "hs-project"
    assert leadrelay(write_config(), "hubspot", "project", str(out), "--url", URL).exit_code == 0
    assert shape_problems(read(out, relative), SHAPES[template]) == []


def test_the_shape_check_catches_a_key_hubspot_does_not_know(write_config, tmp_path):
    out = tmp_path / "hs-project"
    leadrelay(write_config(), "hubspot", "project", str(out), "--url", URL)
    action = read(out, ACTION)
    action["config"]["published"] = True  # the definitions API's name, not the project's
    del action["config"]["supportedClients"]
    assert shape_problems(action, SHAPES["workflow-action-hsmeta.json"]) == [
        "config.published: not a key of HubSpot's template",
        "config.supportedClients: missing (HubSpot's template has it)",
    ]


def test_the_action_has_the_same_fields_as_the_registered_definition(make_config):
    config = make_config(hubspot_config_data())
    action = project_files(config, URL)[ACTION]["config"]
    definition = action_definition(config, URL)
    for key in ("inputFields", "outputFields", "labels", "objectTypes", "objectRequestOptions"):
        assert action[key] == definition[key], key
    outputs = [field["typeDefinition"]["name"] for field in action["outputFields"]]
    assert outputs == ["owner_id", "owner_email", "rule", "reason", "outcome", "task_id"]


def test_properties_the_rules_read_are_sent_with_each_execution(write_config, tmp_path):
    flow = [
        {"name": "de", "when": {"country": "DE", "raw.lead_grade": "A"}, "assign": {"pool": "big"}},
        {"name": "accounts", "assign": {"account_owner": True, "else": {"pool": "team"}}},
    ]
    out = tmp_path / "hs-project"
    config = write_config(flow=flow, hubspot={"objects": ["contact"]})
    leadrelay(config, "hubspot", "project", str(out), "--url", URL)
    properties = read(out, ACTION)["config"]["objectRequestOptions"]["properties"]
    assert properties == [
        "associatedcompanyid", "country", "email", "hubspot_owner_id", "lead_grade",
    ]  # fmt: skip


def test_deal_and_ticket_rules_send_each_objects_properties(write_config, tmp_path):
    flow = [
        {"name": "big deals", "when": {"object": "deal", "raw.amount": {"gte": 50000}},
         "assign": {"pool": "big"}},
        {"name": "urgent", "when": {"raw.hs_ticket_priority": "HIGH"}, "assign": {"pool": "big"}},
        {"name": "by size", "when": {"employees": {"gte": 100}}, "assign": {"pool": "team"}},
    ]  # fmt: skip
    out = tmp_path / "hs-project"
    config = write_config(flow=flow, hubspot={"objects": ["company", "deal", "ticket"]})
    leadrelay(config, "hubspot", "project", str(out), "--url", URL)
    action = read(out, ACTION)["config"]
    assert action["objectTypes"] == ["COMPANY", "DEAL", "TICKET"]
    assert action["objectRequestOptions"]["properties"] == [
        "amount", "dealname", "domain", "hs_ticket_priority", "hubspot_owner_id", "name",
        "numberofemployees", "subject",
    ]  # fmt: skip
    scopes = read(out, APP)["config"]["auth"]["requiredScopes"]
    assert {"crm.objects.deals.write", "crm.objects.companies.write", "tickets"} <= set(scopes)


BASE = ["crm.objects.contacts.read", "crm.objects.owners.read", "oauth"]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("output", BASE),
        ("api", sorted([*BASE, "crm.objects.contacts.write"])),
        ("batch", sorted([*BASE, "crm.objects.contacts.write", "automation"])),
    ],
)
def test_the_app_asks_for_exactly_the_scopes_its_write_mode_needs(make_config, mode, expected):
    config = in_mode(make_config(hubspot_config_data(hubspot={"objects": ["contact"]})), mode)
    assert required_scopes(config) == expected
    assert project_files(config, URL)[APP]["config"]["auth"]["requiredScopes"] == expected


def test_account_owner_rules_add_the_company_read_except_in_output_mode(make_config):
    flow = [{"name": "accounts", "assign": {"account_owner": True, "else": {"pool": "team"}}}]
    config = make_config(hubspot_config_data(flow=flow, hubspot={"objects": ["contact"]}))
    assert "crm.objects.companies.read" in required_scopes(in_mode(config, "api"))
    assert "crm.objects.companies.read" in required_scopes(in_mode(config, "batch"))
    assert "crm.objects.companies.read" not in required_scopes(in_mode(config, "output"))


@pytest.mark.parametrize("mode", ["api", "batch"])
def test_follow_up_tasks_on_deals_ask_for_the_tasks_apis_scope(make_config, mode):
    # HubSpot's tasks API (crm/v3/objects/tasks) lists crm.objects.contacts.write as its
    # scope, whatever record the task is associated with.
    config = in_mode(make_config(hubspot={"objects": ["deal"]}, task={"type": "call"}), mode)
    assert "crm.objects.contacts.write" in required_scopes(config)
    without = in_mode(make_config(hubspot={"objects": ["deal"]}), mode)
    assert "crm.objects.contacts.write" not in required_scopes(without)
    output = in_mode(make_config(hubspot={"objects": ["deal"]}, task={}), "output")
    assert "crm.objects.contacts.write" not in required_scopes(output)  # the workflow's task


def test_an_sla_sweep_needs_the_owner_write_even_in_output_mode(make_config):
    config = make_config(hubspot_config_data(sla={"first_touch": "15m"}))
    assert "crm.objects.contacts.write" in required_scopes(in_mode(config, "output"))


def test_api_mode_through_app_yaml_asks_for_the_write_scope(write_config, tmp_path):
    out = tmp_path / "hs-project"
    config = write_config(hubspot={"write_owner": "api", "objects": ["contact"]})
    result = leadrelay(config, "hubspot", "project", str(out), "--url", URL)
    assert result.exit_code == 0, result.output
    scopes = read(out, APP)["config"]["auth"]["requiredScopes"]
    assert scopes == sorted([*BASE, "crm.objects.contacts.write"])
    assert "scopes for write_owner: api" in result.output


def test_a_non_empty_folder_is_refused_and_left_alone(write_config, tmp_path):
    out = tmp_path / "hs-project"
    out.mkdir()
    (out / "hsproject.json").write_text('{"name": "mine"}')
    result = leadrelay(write_config(), "hubspot", "project", str(out), "--url", URL)
    assert result.exit_code == 1
    assert "is not empty; use --force" in result.output
    assert (out / "hsproject.json").read_text() == '{"name": "mine"}'
    assert not (out / "src").exists()


def test_force_overwrites_the_projects_files(write_config, tmp_path):
    out = tmp_path / "hs-project"
    out.mkdir()
    (out / "hsproject.json").write_text('{"name": "mine"}')
    (out / "README.md").write_text("the admin's notes")
    result = leadrelay(write_config(), "hubspot", "project", str(out), "--url", URL, "--force")
    assert result.exit_code == 0, result.output
    assert read(out, "hsproject.json")["name"] == "leadrelay"
    assert (out / "README.md").read_text() == "the admin's notes"


def test_a_file_where_the_folder_should_be_is_a_clear_error(write_config, tmp_path):
    target = tmp_path / "taken"
    target.write_text("x")
    result = leadrelay(write_config(), "hubspot", "project", str(target), "--url", URL)
    assert result.exit_code == 2
    assert "is a file" in result.output
    assert "Traceback" not in result.output


def test_a_url_that_is_not_http_is_refused(write_config, tmp_path):
    out = tmp_path / "hs-project"
    result = leadrelay(write_config(), "hubspot", "project", str(out), "--url", "leads.example")
    assert result.exit_code == 2
    assert "--url" in result.output
    assert not out.exists()


def test_the_name_becomes_the_apps_name_and_a_safe_uid(write_config, tmp_path):
    out = tmp_path / "hs-project"
    args = ("hubspot", "project", str(out), "--url", URL, "--name", "Acme Lead Router!")
    assert leadrelay(write_config(), *args).exit_code == 0
    app = read(out, APP)
    assert app["config"]["name"] == "Acme Lead Router!"
    assert app["uid"] == "acme_lead_router_app"
    assert read(out, ACTION)["uid"] == "acme_lead_router_rotate_to_owner"


@pytest.mark.parametrize("name", ["   ", "two\nlines", "tab\there"])
def test_a_name_hubspot_could_not_show_is_refused(write_config, tmp_path, name):
    out = tmp_path / "hs-project"
    args = ("hubspot", "project", str(out), "--url", URL, "--name", name)
    result = leadrelay(write_config(), *args)
    assert result.exit_code == 2
    assert "--name" in result.output
    assert not out.exists()


def test_the_next_steps_quote_a_folder_with_spaces(write_config, tmp_path):
    out = tmp_path / "my project"
    result = leadrelay(write_config(), "hubspot", "project", str(out), "--url", URL)
    assert f"cd '{out}' && hs project upload" in result.output


@pytest.mark.parametrize(
    ("objects", "records"),
    [
        (["contact"], "contacts"),
        (["contact", "company", "deal", "ticket"], "contacts, companies, deals and tickets"),
        (["deal", "ticket"], "deals and tickets"),
    ],
)
def test_the_output_names_the_records_the_action_is_offered_on(
    write_config, tmp_path, objects, records
):
    config = write_config(hubspot={"write_owner": "output", "objects": objects})
    result = leadrelay(config, "hubspot", "project", str(tmp_path / "hs"), "--url", URL)
    assert result.exit_code == 0, result.output
    assert f"HubSpot will send these properties of the {records}: " in result.output
    assert f"the account whose {records} you route" in result.output
    assert f"to a workflow of\n     {records} (hubspot.objects)" in result.output
    assert "contact properties" not in result.output
    assert "after changing rules, write_owner,\n  hubspot.objects or task:" in result.output


def test_check_names_the_token_batch_mode_needs(make_config, monkeypatch):
    config = in_mode(make_config(hubspot_config_data()), "batch")
    env = {"HUBSPOT_CLIENT_SECRET": "s"}
    (problem,) = missing_credentials(config, env)
    assert problem.startswith("HUBSPOT_ACCESS_TOKEN is not set: with hubspot.write_owner: batch")
    assert "complete the blocked executions" in problem and "automation" in problem
    assert token_notes(config, env) == []
    (note,) = token_notes(config, {**env, "HUBSPOT_ACCESS_TOKEN": "t"})
    assert "the app that defines the action" in note and "automation" in note


@pytest.mark.parametrize(("mode", "missing"), [("api", 1), ("output", 0)])
def test_check_asks_for_the_token_only_where_the_endpoint_needs_it(make_config, mode, missing):
    config = in_mode(make_config(hubspot_config_data()), mode)
    problems = missing_credentials(config, {"HUBSPOT_CLIENT_SECRET": "s"})
    assert len(problems) == missing
    assert token_notes(config, {"HUBSPOT_CLIENT_SECRET": "s", "HUBSPOT_ACCESS_TOKEN": "t"}) == []


def test_leadrelay_check_says_what_api_mode_is_missing(write_config, monkeypatch):
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", "s")
    result = leadrelay(write_config(hubspot={"write_owner": "api"}), "check")
    assert result.exit_code == 0, result.output
    assert "warning: HUBSPOT_ACCESS_TOKEN is not set: with hubspot.write_owner: api" in (
        result.output
    )
