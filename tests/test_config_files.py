"""app.yaml as an admin writes it: whatever is wrong in the file is an error naming where, in
`check` and `serve` alike, with exit status 1 and never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import main
from workflows.config_loader import load_config
from workflows.errors import ConfigErrors

GOOD = """\
timezone: America/New_York
reps:
  - id: alice
    hours: always
  - id: bob
    hours: always
pools:
  team:
    members: [alice, bob]
flow:
  - name: everyone
    assign: {pool: team}
fallback: {rep: bob}
"""


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "app.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def errors(path: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    return [str(error) for error in caught.value.errors]


def leadrelay(path: Path, command: str) -> Result:
    # catch_exceptions=False: anything but a clean exit would raise here, traceback and all.
    return CliRunner().invoke(main, ["--config", str(path), command], catch_exceptions=False)


@pytest.mark.parametrize("command", ["check", "serve"])
def test_a_date_yaml_cannot_read_is_an_error_at_its_path(tmp_path, command):
    path = write(
        tmp_path, GOOD.replace("  - id: bob\n", "  - id: bob\n    out_of_office: [2026-13-01]\n")
    )
    result = leadrelay(path, command)
    assert result.exit_code == 1
    assert "reps[1].out_of_office[0]: '2026-13-01' is not a real calendar date" in result.output
    assert "Traceback" not in result.output


def test_a_good_date_is_still_a_date(tmp_path):
    path = write(
        tmp_path, GOOD.replace("  - id: bob\n", "  - id: bob\n    out_of_office: [2026-12-24]\n")
    )
    assert str(load_config(path).reps["bob"].out_of_office[0].start) == "2026-12-24"


@pytest.mark.parametrize("command", ["check", "serve"])
def test_a_file_that_is_not_utf8_names_the_file_and_line(tmp_path, command):
    path = write(tmp_path, GOOD.replace("id: bob", "id: bob\n    name: Zoë").encode("latin-1"))
    result = leadrelay(path, command)
    assert result.exit_code == 1
    assert f"{path}: line 6: not UTF-8 text (byte 0xeb)" in result.output
    assert "Traceback" not in result.output


def test_two_fallback_keys_are_an_error_naming_both_lines(tmp_path):
    # (`serve` reads the file as `check` does; it is left out because, were this accepted, it
    # would start serving.)
    path = write(tmp_path, GOOD + "fallback: {rep: alice}\n")
    result = leadrelay(path, "check")
    assert result.exit_code == 1
    assert "fallback: duplicate key on lines 13 and 14" in result.output
    assert "Traceback" not in result.output


def test_two_conditions_in_one_rule_are_an_error_at_the_rule(tmp_path):
    text = GOOD.replace(
        "  - name: everyone\n",
        "  - name: everyone\n    when: {country: US}\n    when: {employees: '>= 1000'}\n",
    )
    assert errors(write(tmp_path, text)) == [
        "flow[0].when: duplicate key on lines 12 and 13 (YAML would silently keep only the last)"
    ]


def test_every_duplicate_is_reported_at_once(tmp_path):
    text = GOOD.replace(
        "    hours: always\n  - id: bob", "    hours: always\n    hours: never\n  - id: bob"
    )
    text = text.replace("[alice, bob]\n", "[alice, bob]\n    members: [bob]\n") + "timezone: UTC\n"
    assert [e.split(" (")[0] for e in errors(write(tmp_path, text))] == [
        "reps[0].hours: duplicate key on lines 4 and 5",
        "pools.team.members: duplicate key on lines 10 and 11",
        "timezone: duplicate key on lines 1 and 16",
    ]


def test_the_same_key_in_two_mappings_is_no_duplicate(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert list(config.reps) == ["alice", "bob"]


def test_a_merge_key_may_be_overridden(tmp_path):
    text = GOOD.replace(
        "reps:\n  - id: alice\n    hours: always\n",
        "reps:\n  - &base\n    id: alice\n    hours: always\n  - <<: *base\n    id: chen\n",
    )
    assert list(load_config(write(tmp_path, text)).reps) == ["alice", "chen", "bob"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("    weight: !!int many\n", "reps[1].weight: line 6: 'many' is not a valid int"),
        ("    weight: !!float x\n", "reps[1].weight: line 6: 'x' is not a valid float"),
        ("    name: !!timestamp soon\n", "reps[1].name: line 6:"),
        ("    name: !!python/name:os.system\n", "reps[1].name: line 6: could not determine"),
    ],
)
def test_a_value_yaml_cannot_build_is_an_error_at_its_path(tmp_path, line, expected):
    path = write(tmp_path, GOOD.replace("  - id: bob\n", "  - id: bob\n" + line))
    (error,) = errors(path)
    assert error.startswith(expected)


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [*x]\n",  # an alias inside its own anchor
        "reps: " + "[" * 5000 + "]" * 5000 + "\n",
        "\ufeff" + GOOD.replace("fallback", "fallbak"),
        "",
        "- just\n- a list\n",
    ],
)
def test_odd_files_end_in_a_config_error(tmp_path, text):
    assert errors(write(tmp_path, text))


def test_a_bad_duration_says_what_it_got_once(tmp_path):
    path = write(tmp_path, GOOD + "sla:\n  first_touch: 15 minutes\ntask:\n  due: soon\n")
    found = errors(path)
    assert found == [
        "sla.first_touch: expected a duration like 15m, 2h, 1h30m or 1d, got '15 minutes'",
        "task.due: expected a duration like 15m, 2h, 1h30m or 1d, got 'soon'",
    ]


def test_an_object_type_listed_twice_is_an_error_at_its_path(tmp_path):
    path = write(tmp_path, GOOD + "hubspot:\n  objects: [deal, ticket, deal]\n")
    assert errors(path) == [
        "hubspot.objects: deal listed more than once (got ['deal', 'ticket', 'deal'])"
    ]
