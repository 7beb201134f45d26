"""What an admin copies from the docs works: every app.yaml example in README.md and docs/*.md
loads through the config loader, and a lead typed in by hand names its kind as rules do."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO, config_data, rep

from connector.cli import main
from workflows.config_loader import load_config
from workflows.config_schema import AppSpec

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Blocks in the docs that are another program's YAML, not app.yaml.
NOT_APP_YAML = {"scrape_configs"}  # Prometheus (docs/operations.md)
# An example shows a part of app.yaml; the rest (the team and pools its rules name) comes from
# here, so the example is checked as it would sit in a whole file.
TEAM = [
    rep(name, hubspot_owner_id=str(100 + number), salesforce_user_id=f"005{number:012d}AAA")
    for number, name in enumerate(["alice", "bob", "chen", "maria"], start=1)
]
POOLS = ["team", "closers", "support", "enterprise", "partner-desk", "partners", "managers"]


def yaml_examples() -> list[Any]:
    examples = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in YAML_BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 2
            examples.append(pytest.param(match.group(1), id=f"{path.name}:{line}"))
    return examples


def whole_file(example: dict[str, Any]) -> dict[str, Any]:
    data = config_data(
        reps=TEAM, pools={name: {"members": ["alice", "bob", "chen"]} for name in POOLS}
    )
    for key, value in example.items():
        if key == "reps":  # an example's reps are laid over the team, by id
            given = {item["id"]: item for item in value}
            data["reps"] = [{**member, **given.pop(member["id"], {})} for member in TEAM]
            data["reps"] += list(given.values())
        elif key == "pools":
            data["pools"] = {**data["pools"], **value}
        else:
            data[key] = value
    return data


def test_the_docs_hold_app_yaml_examples():
    # Guards the extraction itself: a changed fence style must not empty the test below.
    assert len(yaml_examples()) >= 15


@pytest.mark.parametrize("block", yaml_examples())
def test_every_app_yaml_example_in_the_docs_loads(block, tmp_path):
    example = yaml.safe_load(block)
    assert isinstance(example, dict), "an example is a mapping of app.yaml's top-level keys"
    if NOT_APP_YAML & example.keys():
        return
    unknown = example.keys() - AppSpec.model_fields.keys()
    assert not unknown, f"not app.yaml keys: {sorted(unknown)}"
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(whole_file(example)), encoding="utf-8")
    load_config(path)  # raises ConfigErrors naming the path of anything wrong


def test_the_shipped_app_yaml_loads():
    load_config(REPO / "app.yaml")


# --- A lead typed in by hand: `object` as the rules say it ---------------------------------------

DEALS = """\
timezone: America/New_York
reps:
  - {id: alice, hours: always}
  - {id: bob, hours: always}
pools:
  closers: {members: [alice]}
  team: {members: [bob]}
queues:
  nurture: {salesforce: 00G5g000004NuRtEAK}
flow:
  - name: big deals
    when: {object: deal, raw.amount: {gte: 50000}}
    assign: {pool: closers}
fallback: {pool: team}
"""


@pytest.fixture
def deals_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "app.yaml"
    path.write_text(DEALS, encoding="utf-8")
    return path


def leadrelay(config: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)


@pytest.mark.parametrize("key", ["object", "object_type"])
def test_route_reads_the_records_kind_under_the_name_rules_use(deals_yaml, key):
    lead = f'{{"id": "D1", "{key}": "deal", "raw": {{"amount": "75000"}}}}'
    result = leadrelay(deals_yaml, "route", lead)
    assert result.exit_code == 0, result.output
    assert "D1: alice (assigned) by rule big deals" in result.output


def test_simulate_reads_an_object_column(deals_yaml, tmp_path):
    csv_path = tmp_path / "deals.csv"
    csv_path.write_text("Record ID,Object,Amount\n1,deal,75000\n2,ticket,75000\n")
    result = leadrelay(deals_yaml, "simulate", str(csv_path), "--json")
    assert result.exit_code == 0, result.output
    rules = [line for line in result.output.splitlines() if line.startswith("{")]
    assert '"rule": "big deals"' in rules[0]
    assert '"rule": "fallback"' in rules[1]
    assert "Object" not in result.output.split("{")[0]  # no "no rule reads the column" warning


def test_route_names_the_queue_a_lead_is_parked_in(deals_yaml):
    text = deals_yaml.read_text().replace("fallback: {pool: team}", "fallback: {queue: nurture}")
    deals_yaml.write_text(text)
    result = leadrelay(deals_yaml, "route", '{"id": "L1", "crm": "salesforce"}')
    assert "L1: queue nurture 00G5g000004NuRtEAK (queued) by rule fallback" in result.output


def test_route_refuses_an_object_kind_no_rule_could_match(deals_yaml):
    result = leadrelay(deals_yaml, "route", '{"id": "D1", "object": "dael"}')
    assert result.exit_code == 1
    assert "object_type: unknown object kind 'dael'; expected one of contact," in result.output


def test_simulate_names_the_row_and_column_of_an_unknown_object_kind(deals_yaml, tmp_path):
    csv_path = tmp_path / "deals.csv"
    csv_path.write_text("Record ID,Object\n1,Deal\n2,dael\n")
    result = leadrelay(deals_yaml, "simulate", str(csv_path))
    assert result.exit_code == 1
    assert "deals.csv line 3: Object: unknown object kind 'dael'" in result.output
