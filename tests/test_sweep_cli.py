"""``leadrelay sweep --once`` end to end: the real adapters against the faked CRM APIs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import TUESDAY_10AM, config_data, rep
from fakes.hubspot_api import fake_hubspot  # noqa: F401 (fixture)
from fakes.salesforce_api import REP_USERS, fake_salesforce  # noqa: F401 (fixture)
from sweep_helpers import OWNER_IDS

from connector.cli import main
from workflows.config_loader import load_config
from workflows.model import Lead
from workflows.router import Router
from workflows.sqlite_store import SqliteStore
from workflows.store_registry import open_store
from workflows.sweep_lock import sweep_lock

SLA = {"first_touch": "15m", "clock": "wall", "max_reassignments": 2, "escalate_to": {"rep": "bob"}}
LATER = (TUESDAY_10AM + timedelta(minutes=20)).isoformat()
BATCH_READ = "/crm/v3/objects/contacts/batch/read"
BATCH_UPDATE = "/crm/v3/objects/contacts/batch/update"


def write_config(tmp_path: Path, data: dict) -> Path:
    data = {**data, "store": f"sqlite:///{tmp_path / 'state.sqlite'}", "sla": SLA}
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def route(config_path: Path, leads: list[Lead], source: str) -> list[str]:
    """Assign leads as a CRM's inbound endpoint would (recorded with their SLA)."""
    config = load_config(config_path)
    store = SqliteStore(Path(config.store_url.removeprefix("sqlite:///")))
    try:
        router = Router(config, store)
        results = [router.route(lead, TUESDAY_10AM, source=source) for lead in leads]
        return [r.decision.owner_crm_id or "" for r in results]
    finally:
        store.close()


def run(config_path: Path, *args: str, status: int = 0) -> str:
    result = CliRunner().invoke(main, ["--config", str(config_path), "sweep", *args])
    assert result.exit_code == status, result.output
    return result.output


# -- HubSpot ----------------------------------------------------------------------------------
@pytest.fixture
def hubspot_config(tmp_path: Path) -> Path:
    reps = [rep(name, hubspot_owner_id=owner) for name, owner in OWNER_IDS.items()]
    return write_config(tmp_path, config_data(reps=reps))


def hubspot_leads(fake, config_path: Path, count: int, **props) -> list[str]:
    ids = [str(1000 + n) for n in range(count)]
    owners = route(config_path, [Lead(id=i, crm="hubspot", object_type="contact") for i in ids],
                   "hubspot")  # fmt: skip
    fake.owners += [
        {"id": "104", "email": "dana@example.com", "firstName": "D", "lastName": "D",
         "userId": 9004, "archived": False},
        {"id": "900", "email": "maria@example.com", "firstName": "M", "lastName": "M",
         "userId": 9900, "archived": False},
    ]  # fmt: skip
    for contact_id, owner in zip(ids, owners, strict=True):
        fake.add_contact(contact_id, hubspot_owner_id=owner, hs_lead_status="NEW", **props)
    return ids


def test_sweep_requires_once(hubspot_config):
    result = CliRunner().invoke(main, ["--config", str(hubspot_config), "sweep"])
    assert result.exit_code != 0 and "--once" in result.output


def test_hubspot_contacted_lead_is_settled_and_log_shows_time_to_first_touch(
    fake_hubspot, hubspot_config
):
    (contact,) = hubspot_leads(fake_hubspot, hubspot_config, 1)
    fake_hubspot.contacts[contact]["notes_last_contacted"] = "2026-11-24T15:06:00.000Z"
    output = run(hubspot_config, "--once", "--now", LATER)
    assert f"hubspot {contact}" in output and "contacted" in output and "6m" in output
    assert "1 due assignments: 1 contacted" in output
    assert fake_hubspot.calls("POST", BATCH_UPDATE) == []
    log = CliRunner().invoke(main, ["--config", str(hubspot_config), "log"])
    assert "ttft" in log.output and "6m" in log.output


def test_hubspot_untouched_leads_rotate_in_batches_of_100_and_one_more(
    fake_hubspot, hubspot_config
):
    ids = hubspot_leads(fake_hubspot, hubspot_config, 101)
    before = {i: fake_hubspot.contacts[i]["hubspot_owner_id"] for i in ids}
    output = run(hubspot_config, "--once", "--now", LATER)
    assert "101 due assignments: 101 rotated" in output
    reads = fake_hubspot.calls("POST", BATCH_READ)
    assert [len(r.body["inputs"]) for r in reads] == [100, 1]
    assert "hs_lead_status" in reads[0].body["properties"]
    writes = fake_hubspot.calls("POST", BATCH_UPDATE)
    assert [len(w.body["inputs"]) for w in writes] == [100, 1]
    assert all(fake_hubspot.contacts[i]["hubspot_owner_id"] != before[i] for i in ids)
    # Swept again at once: every lead has a new deadline, nothing is due, nothing is called.
    again = run(hubspot_config, "--once", "--now", LATER)
    assert "0 due assignments" in again
    assert len(fake_hubspot.calls("POST", BATCH_READ)) == 2


def test_hubspot_dry_run_reads_but_writes_nothing(fake_hubspot, hubspot_config):
    hubspot_leads(fake_hubspot, hubspot_config, 2)
    output = run(hubspot_config, "--once", "--dry-run", "--now", LATER)
    assert output.count("would be rotated") == 2
    assert "dry run, nothing changed" in output
    assert fake_hubspot.calls("POST", BATCH_UPDATE) == []
    assert "2 rotated" in run(hubspot_config, "--once", "--now", LATER)


def test_hubspot_manual_override_and_deleted_contacts(fake_hubspot, hubspot_config):
    moved, gone = hubspot_leads(fake_hubspot, hubspot_config, 2)
    fake_hubspot.contacts[moved]["hubspot_owner_id"] = "103" if moved != "103" else "101"
    expected = fake_hubspot.contacts[moved]["hubspot_owner_id"]
    del fake_hubspot.contacts[gone]
    output = run(hubspot_config, "--once", "--now", LATER)
    assert "manual_override" in output and "deleted" in output
    assert fake_hubspot.contacts[moved]["hubspot_owner_id"] == expected
    assert fake_hubspot.calls("POST", BATCH_UPDATE) == []


def test_hubspot_failing_mid_sweep_next_sweep_finishes_nothing_twice(fake_hubspot, hubspot_config):
    ids = hubspot_leads(fake_hubspot, hubspot_config, 101)
    fake_hubspot.fail_next(500, times=4, path=BATCH_READ)  # the first chunk, every retry
    first = run(hubspot_config, "--once", "--now", LATER, status=3)
    assert "100 failed" in first and "1 rotated" in first
    second = run(hubspot_config, "--once", "--now", LATER)
    assert "100 due assignments: 100 rotated" in second
    written = [i["id"] for w in fake_hubspot.calls("POST", BATCH_UPDATE) for i in w.body["inputs"]]
    written += [c.path.rsplit("/", 1)[1] for c in fake_hubspot.calls("PATCH", "/crm/v3/objects")]
    assert sorted(written) == sorted(ids)


# -- Salesforce -------------------------------------------------------------------------------
LEAD_IDS = [f"00Q5g00000L{n:04d}AAA" for n in range(201)]


@pytest.fixture
def salesforce_config(tmp_path: Path) -> Path:
    reps = [rep(name, salesforce_user_id=user) for name, user in REP_USERS.items()]
    return write_config(tmp_path, config_data(reps=reps))


def salesforce_leads(fake, config_path: Path, count: int, **fields) -> list[str]:
    ids = LEAD_IDS[:count]
    owners = route(config_path, [Lead(id=i, crm="salesforce") for i in ids], "salesforce")
    for lead_id, owner in zip(ids, owners, strict=True):
        fake.leads[lead_id] = {
            "Id": lead_id, "OwnerId": owner, "Status": "Open - Not Contacted",
            "IsConverted": False, "IsDeleted": False, "LastActivityDate": None,
            "Company": "Acme", "LastName": "Doe", **fields,
        }  # fmt: skip
    return ids


def test_salesforce_untouched_leads_rotate_with_soql_in_and_collections(
    fake_salesforce, salesforce_config
):
    ids = salesforce_leads(fake_salesforce, salesforce_config, 201)
    before = {i: fake_salesforce.leads[i]["OwnerId"] for i in ids}
    output = run(salesforce_config, "--once", "--now", LATER)
    assert "201 due assignments: 201 rotated" in output
    queries = fake_salesforce.lead_queries
    assert len(queries) == 2 and queries[0].count("'00Q") == 200 and queries[1].count("'00Q") == 1
    assert all("/queryAll" in str(r.url) for r in fake_salesforce.requests if "query" in r.url)
    assert {w.lead_id for w in fake_salesforce.writes} == set(ids)
    assert all(fake_salesforce.owners[i] != before[i] for i in ids)
    assert all(w.headers.get("Sforce-Auto-Assign") == "FALSE" for w in fake_salesforce.writes)


@pytest.mark.parametrize(
    ("fields", "outcome"),
    [
        ({"Status": "Working - Contacted"}, "contacted"),
        ({"LastActivityDate": "2026-11-24"}, "contacted"),
        ({"IsConverted": True, "Status": "Closed - Converted"}, "converted"),
        ({"IsDeleted": True}, "deleted"),
        ({"Status": "Closed - Not Converted"}, "disqualified"),
    ],
)
def test_salesforce_settle_outcomes(fake_salesforce, salesforce_config, fields, outcome):
    salesforce_leads(fake_salesforce, salesforce_config, 1, **fields)
    output = run(salesforce_config, "--once", "--now", LATER)
    assert f"1 due assignments: 1 {outcome}" in output
    assert fake_salesforce.writes == []


def test_salesforce_outage_leaves_leads_due_for_the_next_sweep(fake_salesforce, salesforce_config):
    salesforce_leads(fake_salesforce, salesforce_config, 3)
    fake_salesforce.down = True
    assert "3 failed" in run(salesforce_config, "--once", "--now", LATER, status=3)
    fake_salesforce.down = False
    assert "3 rotated" in run(salesforce_config, "--once", "--now", LATER)
    assert len(fake_salesforce.writes) == 3


def test_salesforce_one_unreadable_lead_does_not_stop_the_others(
    fake_salesforce, salesforce_config
):
    bad, good = salesforce_leads(fake_salesforce, salesforce_config, 2)
    fake_salesforce.leads[bad]["NumberOfEmployees"] = "lots"
    output = run(salesforce_config, "--once", "--now", LATER, status=3)
    assert "1 failed, 1 rotated" in output and "NumberOfEmployees" in output
    assert fake_salesforce.written_leads == [good]


# -- exit status, for cron --------------------------------------------------------------------
def test_a_sweep_where_every_lead_failed_exits_3(fake_salesforce, salesforce_config):
    salesforce_leads(fake_salesforce, salesforce_config, 2)
    fake_salesforce.down = True
    output = run(salesforce_config, "--once", "--now", LATER, status=3)
    assert "2 due assignments: 2 failed" in output
    assert "error: 2 lead(s) need a look: failed or skipped ones stay due" in output
    dry = run(salesforce_config, "--once", "--dry-run", "--now", LATER, status=3)
    assert "2 failed" in dry


def test_a_sweep_of_leads_whose_crm_has_no_credentials_exits_3(
    fake_hubspot, hubspot_config, monkeypatch
):
    hubspot_leads(fake_hubspot, hubspot_config, 1)
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN")
    output = run(hubspot_config, "--once", "--now", LATER, status=3)
    assert "1 skipped" in output and "stay due" in output


def test_a_sweep_that_cannot_run_exits_1(fake_hubspot, hubspot_config):
    hubspot_leads(fake_hubspot, hubspot_config, 1)
    store = open_store(load_config(hubspot_config).store_url)
    with sweep_lock(store) as held:
        assert held
        output = run(hubspot_config, "--once", "--now", LATER, status=1)
    store.close()
    assert "another sweep is running" in output
    assert fake_hubspot.calls("POST", BATCH_UPDATE) == []


def test_a_clean_sweep_exits_0_and_help_documents_every_status(fake_hubspot, hubspot_config):
    hubspot_leads(fake_hubspot, hubspot_config, 1)
    assert "1 rotated" in run(hubspot_config, "--once", "--now", LATER, status=0)
    help_text = run(hubspot_config, "--help")
    assert "Exit status:" in help_text
    for status in ("0  every due", "1  the sweep could not", "2  a mistake", "3  the sweep ran"):
        assert status in help_text
