"""``task:`` in app.yaml: checked at start-up with paths, inherited and overridden per rule."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import config_data

from connector.cli import main
from workflows.errors import ConfigErrors
from workflows.task_spec import parse_template, render

TASK = {"subject": "Call {first_name} at {company} ({rule})", "due": "15m", "type": "call"}


def check(tmp_path: Path, data: dict) -> tuple[int, str]:
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["--config", str(path), "check"])
    return result.exit_code, result.output


def test_an_unknown_placeholder_is_refused_at_start_up_naming_its_path(tmp_path):
    flow = [{"name": "everyone", "assign": {"pool": "team"},
             "task": {"body": "Budget: {budgett}"}}]  # fmt: skip
    code, output = check(tmp_path, config_data(task=TASK, flow=flow))
    assert code == 1
    assert "flow[0].task.body: unknown placeholder {budgett}" in output
    assert "Traceback" not in output


def test_a_misspelled_field_name_is_refused_naming_the_global_path(tmp_path):
    code, output = check(tmp_path, config_data(task={"subject": "Hi {firstname}"}))
    assert code == 1 and "task.subject: unknown placeholder {firstname}" in output


@pytest.mark.parametrize(
    ("subject", "problem"),
    [
        ("{first_name.__class__}", "unknown placeholder"),
        ("{first_name!r}", "without ! or :"),
        ("{first_name:>10}", "without ! or :"),
        ("Call {first_name", "braces"),
    ],
)
def test_a_template_may_only_name_fields_plainly(make_config, subject, problem):
    with pytest.raises(ConfigErrors) as raised:
        make_config(task={"subject": subject})
    assert "task.subject" in str(raised.value) and problem in str(raised.value)


@pytest.mark.parametrize(
    ("task", "path"),
    [
        ({"priority": "urgent"}, "task.priority"),
        ({"type": "meeting"}, "task.type"),
        ({"due": "soon"}, "task.due"),
        ({"due": "0m"}, "task.due"),
        ({"subjet": "x"}, "task.subjet"),
    ],
)
def test_bad_task_keys_are_errors_naming_the_path(make_config, task, path):
    with pytest.raises(ConfigErrors) as raised:
        make_config(task=task)
    assert path in str(raised.value)


def test_a_rule_overrides_the_global_task_and_false_switches_it_off(make_config):
    flow = [
        {"name": "quiet", "when": {"country": "FR"}, "assign": {"pool": "team"}, "task": False},
        {"name": "hot", "when": {"country": "DE"}, "assign": {"pool": "team"},
         "task": {"priority": "high", "due": "5m"}},
        {"name": "everyone", "assign": {"pool": "team"}},
    ]  # fmt: skip
    config = make_config(task=TASK, flow=flow)
    assert config.task_for("quiet") is None
    hot = config.task_for("hot")
    assert hot is not None and (hot.priority, hot.due, hot.type) == (
        "high", timedelta(minutes=5), "call",
    )  # fmt: skip
    everyone = config.task_for("everyone")
    assert everyone is not None and everyone.priority == "normal"
    assert config.task_for("fallback") == config.task


def test_a_rule_alone_may_ask_for_a_task(make_config):
    flow = [{"name": "everyone", "assign": {"pool": "team"}, "task": {"due": "30m"}}]
    config = make_config(flow=flow)
    assert config.task_for("fallback") is None
    rule_task = config.task_for("everyone")
    assert rule_task is not None and rule_task.due == timedelta(minutes=30)


def test_a_missing_value_renders_empty_and_leaves_no_gap():
    template = parse_template("Call {first_name} {last_name} at {company}", "task.subject")
    values = {"first_name": "Ana", "company": "Hooli\nInc"}
    assert render(template, values, 255, one_line=True) == "Call Ana at Hooli Inc"


def test_brackets_a_missing_value_leaves_empty_go_too():
    # The default subject on a HubSpot deal, which has no name or company of a person.
    default = parse_template("Follow up with {first_name} {last_name} ({company})", "subject")
    assert render(default, {}, 255, one_line=True) == "Follow up with"
    assert render(default, {"company": "Acme"}, 255, one_line=True) == "Follow up with (Acme)"
    body = parse_template("Call ({company})", "task.body")
    assert render(body, {}, 255, one_line=False) == "Call ()"  # a body is kept as written


def test_a_long_value_is_cut_to_what_the_crm_keeps_and_raw_properties_can_be_named(make_config):
    config = make_config(task={"subject": "Call {company} {raw.Region__c}"})
    assert config.task is not None
    values = {"company": "A" * 400, "raw.Region__c": "EMEA"}
    subject = render(config.task.subject, values, 255, one_line=True)
    assert len(subject) == 255 and subject.startswith("Call AAA")
    short = render(config.task.subject, {"company": "Acme", "raw.Region__c": "EMEA"}, 255,
                   one_line=True)  # fmt: skip
    assert short == "Call Acme EMEA"
