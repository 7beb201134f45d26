"""`leadrelay check` warns about what is valid but will surprise the admin."""

from __future__ import annotations

import yaml
from click.testing import CliRunner
from conftest import config_data, rep

from connector.cli import main
from workflows.config_warnings import config_warnings


def test_a_pool_whose_members_are_all_inactive_is_named(make_config):
    config = make_config(
        reps=[rep("alice", active=False), rep("bob", active=False), rep("chen")],
        pools={
            "gone": {"members": ["alice", "bob"]},
            "team": {"members": ["alice", "chen"]},
        },
        flow=[{"name": "x", "assign": {"pool": "gone"}}],
    )
    assert config_warnings(config) == [
        "pool gone: every member is inactive (alice, bob), so leads sent to it go to the"
        " rule's else: or the fallback"
    ]


def test_no_warning_when_every_pool_has_someone_active(make_config):
    assert config_warnings(make_config()) == []


def test_check_prints_the_warning_and_still_succeeds(tmp_path, monkeypatch):
    for name in ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    data = config_data(reps=[rep("alice", active=False), rep("bob", active=False), rep("chen")])
    data["pools"]["pair"] = {"members": ["alice", "bob"]}
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["--config", str(path), "check"])
    assert result.exit_code == 0
    assert "warning: pool pair: every member is inactive (alice, bob)" in result.output
    assert "pool team" not in result.output.split("warning:", 1)[1]


QUEUES = {"nurture": {"salesforce": "00G5g000004NuRtEAK", "first_touch": "4h"}}


def test_a_queues_pick_up_time_without_any_sla_is_named(make_config):
    config = make_config(queues=QUEUES, flow=[{"name": "x", "assign": {"queue": "nurture"}}])
    assert config_warnings(config) == [
        "queues.nurture.first_touch: no sla: is set, so nothing checks that leads are picked up"
        " from the queue; add sla: (docs/sla.md#queues)"
    ]
    with_sla = make_config(
        queues=QUEUES, flow=[{"name": "x", "assign": {"queue": "nurture"}, "sla": {}}]
    )
    assert config_warnings(with_sla) == []


def test_a_task_on_a_rule_that_only_queues_or_keeps_is_named(make_config):
    flow = [
        {"name": "team", "flow": [
            {"name": "cold", "assign": {"queue": "nurture"}, "task": {"type": "call"}},
            {"name": "owned", "assign": {"keep": True}, "task": {"type": "call"}},
            {"name": "off", "assign": {"queue": "nurture"}, "task": False},
            {"name": "warm", "assign": {"queue": "nurture", "else": {"pool": "team"}},
             "task": {"type": "call"}},
        ]},
    ]  # fmt: skip
    config = make_config(queues=QUEUES, sla={}, flow=flow)
    assert config_warnings(config) == [
        "flow[0].flow[0].task: rule 'cold' only parks leads in a queue, and no follow-up task"
        " is made for a queue or a kept owner",
        "flow[0].flow[1].task: rule 'owned' only keeps the owner, and no follow-up task is made"
        " for a queue or a kept owner",
    ]
