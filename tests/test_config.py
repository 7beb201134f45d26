"""app.yaml validation: every error names its path, and the shipped sample is valid."""

from __future__ import annotations

import pytest
from conftest import REPO, config_data, rep

from workflows.config_loader import load_config
from workflows.errors import ConfigErrors


def errors_of(make_config, **overrides) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        make_config(**overrides)
    return [str(e) for e in caught.value.errors]


def test_shipped_app_yaml_is_valid_and_realistic():
    config = load_config(REPO / "app.yaml")
    assert 8 <= len(config.reps) <= 12
    assert len({rep.timezone for rep in config.reps.values()}) >= 3
    assert any(rule.flow is not None for rule in config.flow.rules)
    assert config.fallback.kind == "rep"


def test_unknown_pool_in_a_nested_flow_names_the_full_path(make_config):
    flow = [
        {"name": "big", "when": {"employees": {"gte": 1000}},
         "flow": [{"name": "na", "assign": {"pool": "enterprize"}}]},
    ]  # fmt: skip
    assert errors_of(make_config, flow=[{"name": "x", "assign": {"pool": "team"}}, *flow]) == [
        "flow[1].flow[0].assign.pool: unknown pool 'enterprize'"
    ]


def test_unknown_rep_in_pool_members(make_config):
    pools = {"team": {"members": ["alice", "chn"], "strategy": "round_robin"}}
    assert errors_of(make_config, pools=pools) == ["pools.team.members[1]: unknown rep 'chn'"]


def test_unknown_strategy_lists_the_known_ones(make_config):
    pools = {"team": {"members": ["alice"], "strategy": "roundrobin"}}
    (error,) = errors_of(make_config, pools=pools)
    assert error.startswith(
        "pools.team.strategy: unknown strategy 'roundrobin' (one of round_robin"
    )


def test_misspelt_key_is_an_error_not_ignored(make_config):
    (error,) = errors_of(make_config, flow=[{"name": "x", "asign": {"pool": "team"}}])
    assert error == "flow[0].asign: unknown key"


def test_rep_errors_name_the_rep_entry(make_config):
    reps = [rep("alice", timezone="Mars/Olympus"), rep("bob", hours="weekdays"), rep("chen")]
    errors = errors_of(make_config, reps=reps)
    assert errors[0].startswith("reps[0].timezone: unknown time zone 'Mars/Olympus'")
    assert errors[1].startswith("reps[1].hours: ")


def test_bad_condition_names_the_operator_path(make_config):
    flow = [{"name": "x", "when": {"employees": {"gte": "many"}}, "assign": {"pool": "team"}}]
    (error,) = errors_of(make_config, flow=flow)
    assert error.startswith("flow[0].when.employees.gte: ")


def test_target_must_name_exactly_one_kind(make_config):
    (error,) = errors_of(make_config, fallback={"rep": "bob", "pool": "team"})
    assert error.startswith("fallback: name exactly one of pool, rep")


def test_else_chain_errors_carry_the_else_path(make_config):
    flow = [{"name": "x", "assign": {"pool": "team", "else": {"rep": "zed"}}}]
    assert errors_of(make_config, flow=flow) == ["flow[0].assign.else.rep: unknown rep 'zed'"]


def test_requirement_no_member_can_meet_is_reported(make_config):
    flow = [{"name": "x", "assign": {"pool": "team", "require": {"languages": ["ja"]}}}]
    assert errors_of(make_config, flow=flow) == [
        "flow[0].assign.require: no rep in pool 'team' meets this requirement"
    ]


def test_missing_fallback_and_reps_are_reported_together(make_config):
    data = config_data()
    del data["fallback"]
    data["reps"] = []
    with pytest.raises(ConfigErrors) as caught:
        make_config(data)
    assert sorted(str(e) for e in caught.value.errors) == [
        "fallback: required",
        "reps: List should have at least 1 item after validation, not 0 (got [])",
    ]


def test_duplicate_rep_ids_and_rule_names(make_config):
    errors = errors_of(
        make_config,
        reps=[rep("alice"), rep("alice"), rep("bob"), rep("chen")],
        flow=[{"name": "x", "assign": {"rep": "bob"}}, {"name": "x", "assign": {"rep": "bob"}}],
    )
    assert errors == [
        "reps[1].id: duplicate rep id 'alice'",
        "flow[1].name: duplicate rule name 'x' in this flow",
    ]


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text("reps:\n  - id: alice\n    hours: [oops\n")
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    assert "line 4" in str(caught.value) or "line 3" in str(caught.value)
    assert "invalid YAML" in str(caught.value)


def test_numeric_owner_ids_are_read_as_text(make_config):
    config = make_config(reps=[rep("alice", hubspot_owner_id=101), rep("bob"), rep("chen")])
    assert config.reps["alice"].hubspot_owner_id == "101"


def test_relative_store_path_is_relative_to_app_yaml(tmp_path, make_config):
    config = make_config(store="sqlite:///state/leadrelay.sqlite")
    assert config.store_url == f"sqlite:///{tmp_path / 'state' / 'leadrelay.sqlite'}"


def test_unsupported_store_url_is_a_config_error(make_config):
    (error,) = errors_of(make_config, store="mysql://db/leads")
    assert error.startswith("store: unsupported store URL 'mysql://db/leads'")


def test_sla_settings_inherit_and_rules_override(make_config):
    config = make_config(
        sla={"first_touch": "15m", "max_reassignments": 2, "escalate_to": {"rep": "bob"}},
        flow=[
            {"name": "big", "when": {"employees": {"gte": 1000}},
             "sla": {"first_touch": "1h", "clock": "wall"},
             "flow": [{"name": "na", "assign": {"pool": "team"}}]},
            {"name": "quiet", "sla": {"enabled": False}, "assign": {"pool": "team"}},
        ],
    )  # fmt: skip
    nested = config.sla_for("big/na")
    assert nested is not None
    assert (nested.first_touch.total_seconds(), nested.clock) == (3600, "wall")
    assert (nested.max_reassignments, nested.escalate_to.name) == (2, "bob")
    assert config.sla_for("fallback").first_touch.total_seconds() == 900
    assert config.sla_for("quiet") is None


def test_bad_sla_duration_names_the_path(make_config):
    (error,) = errors_of(make_config, sla={"first_touch": "soon"})
    assert error.startswith("sla.first_touch: expected a duration like 15m")


def test_notify_needs_a_url_or_the_variable_holding_it(make_config):
    (error,) = errors_of(make_config, notify=[{"format": "slack"}])
    assert error == "notify[0]: give exactly one of url or url_env"


def test_two_reps_with_one_crm_id_is_an_error(make_config):
    reps = [rep("alice", hubspot_owner_id="101"), rep("bob", hubspot_owner_id=101), rep("chen")]
    (error,) = errors_of(make_config, reps=reps)
    assert error == "reps[1].hubspot_owner_id: '101' is also rep 'alice''s id"


def test_durations_must_be_positive(make_config):
    (error,) = errors_of(make_config, sla={"first_touch": -5})
    assert error.startswith("sla.first_touch: must be longer than zero")


def test_every_problem_of_a_rule_is_reported_together(make_config):
    reps = [rep("alice", hours="weekdays"), rep("bob"), rep("chen")]
    flow = [{"name": "x", "when": {"bogus": 1}, "assign": {"pool": "nope"}}]
    errors = errors_of(make_config, reps=reps, flow=flow)
    assert [e.split(":")[0] for e in errors] == [
        "reps[0].hours",
        "flow[0].when.bogus",
        "flow[0].assign.pool",
    ]
