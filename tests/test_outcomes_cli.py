"""``leadrelay outcomes watch`` end to end: the real HubSpot reader against the faked API, the
``outcomes:`` section of app.yaml, and the watcher ``serve`` schedules."""

from __future__ import annotations

import os
import time
from datetime import UTC, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import TUESDAY_10AM, config_data, rep
from fakes.hubspot_api import fake_hubspot  # noqa: F401 (fixture)
from fakes.salesforce_api import REP_USERS, fake_salesforce  # noqa: F401 (fixture)
from sweep_helpers import OWNER_IDS

from connector.app import create_app
from connector.cli import main
from connector.serve import start_outcome_watcher
from workflows.config_loader import load_config
from workflows.errors import ConfigErrors
from workflows.model import Lead
from workflows.outcome_watch import outcome_lock
from workflows.router import Router
from workflows.sqlite_store import SqliteStore

BATCH_READ = "/crm/v3/objects/contacts/batch/read"
DAY_LATER = TUESDAY_10AM + timedelta(days=1)


def write_config(tmp_path: Path, **extra) -> Path:
    reps = [rep(name, hubspot_owner_id=owner) for name, owner in OWNER_IDS.items()]
    data = {**config_data(reps=reps), "store": f"sqlite:///{tmp_path / 'state.sqlite'}", **extra}
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def app_yaml(tmp_path: Path) -> Path:
    return write_config(tmp_path, outcomes={"watch_for": "30d", "every": "15m"})


def open_store(config_path: Path) -> SqliteStore:
    return SqliteStore(Path(load_config(config_path).store_url.removeprefix("sqlite:///")))


def route_contacts(fake, config_path: Path, count: int) -> list[str]:
    """Route ``count`` new contacts as HubSpot's workflow action would; HubSpot shows them."""
    store = open_store(config_path)
    try:
        router = Router(load_config(config_path), store)
        ids = [str(2000 + n) for n in range(count)]
        for contact_id in ids:
            lead = Lead(id=contact_id, crm="hubspot", object_type="contact")
            result = router.route(lead, TUESDAY_10AM, source="hubspot")
            fake.add_contact(contact_id, hubspot_owner_id=result.decision.owner_crm_id,
                             hs_lead_status="NEW", lifecyclestage="lead")  # fmt: skip
        return ids
    finally:
        store.close()


def outcomes_of(config_path: Path) -> dict[int, dict]:
    store = open_store(config_path)
    try:
        return {r.id: store.outcomes(r.id) or {} for r in store.log()}
    finally:
        store.close()


def leadrelay(config_path: Path, *args: str, status: int = 0) -> str:
    result = CliRunner().invoke(main, ["--config", str(config_path), "outcomes", "watch", *args])
    assert result.exit_code == status, result.output
    return result.output


def test_one_pass_reads_each_batch_of_100_in_one_call_and_records_what_it_finds(
    fake_hubspot, app_yaml
):
    ids = route_contacts(fake_hubspot, app_yaml, 150)
    fake_hubspot.contacts[ids[0]]["lifecyclestage"] = "customer"
    fake_hubspot.contacts[ids[1]]["hs_lead_status"] = "UNQUALIFIED"
    fake_hubspot.contacts[ids[2]]["notes_last_contacted"] = "2026-11-24T16:30:00.000Z"

    output = leadrelay(app_yaml, "--now", DAY_LATER.isoformat())

    reads = fake_hubspot.calls("POST", BATCH_READ)
    assert [len(r.body["inputs"]) for r in reads] == [100, 50]
    seen = DAY_LATER.astimezone(UTC).isoformat()
    assert f"hubspot {ids[0]} (#1, alice): recorded converted at {seen}" in output
    assert f"hubspot {ids[1]} (#2, bob): recorded disqualified at {seen}" in output
    assert f"hubspot {ids[2]} (#3, chen): recorded contacted at 2026-11-24T16:30:00+00:00" in output
    assert "150 lead(s) read (hubspot 150); outcomes: 1 contacted, 1 converted, 1 disqualified" in (
        output
    )
    recorded = outcomes_of(app_yaml)
    assert recorded[1]["converted_at"] == seen and recorded[4] == {"checked_at": seen}
    # At once again: every lead was read within `every`, so HubSpot is not called.
    assert "0 lead(s) read" in leadrelay(app_yaml, "--now", DAY_LATER.isoformat())
    assert len(fake_hubspot.calls("POST", BATCH_READ)) == 2


def test_a_dry_run_prints_what_it_would_record_and_records_nothing(fake_hubspot, app_yaml):
    (contact,) = route_contacts(fake_hubspot, app_yaml, 1)
    fake_hubspot.contacts[contact]["lifecyclestage"] = "opportunity"
    output = leadrelay(app_yaml, "--dry-run", "--now", DAY_LATER.isoformat())
    assert f"hubspot {contact} (#1, alice): would record converted at" in output
    assert "dry run, nothing changed" in output
    assert outcomes_of(app_yaml) == {1: {}}


def test_converted_stages_come_from_app_yaml(fake_hubspot, tmp_path):
    app_yaml = write_config(tmp_path, hubspot={"converted_stages": ["salesqualifiedlead"]})
    first, second = route_contacts(fake_hubspot, app_yaml, 2)
    fake_hubspot.contacts[first]["lifecyclestage"] = "salesqualifiedlead"
    fake_hubspot.contacts[second]["lifecyclestage"] = "customer"  # not named: not converted
    output = leadrelay(app_yaml, "--now", DAY_LATER.isoformat())
    assert "0 contacted, 1 converted" in output
    assert "note: no outcomes: section in app.yaml" in output


def test_without_credentials_the_crm_is_skipped_with_a_message(fake_hubspot, app_yaml, monkeypatch):
    route_contacts(fake_hubspot, app_yaml, 2)
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN")
    output = leadrelay(app_yaml, "--now", DAY_LATER.isoformat(), status=3)
    assert output.count("hubspot: skipped 2 lead(s): HUBSPOT_ACCESS_TOKEN is not set") == 1
    assert fake_hubspot.calls("POST", BATCH_READ) == []


def test_a_pass_does_not_run_while_another_holds_the_lock(fake_hubspot, app_yaml):
    route_contacts(fake_hubspot, app_yaml, 1)
    store = open_store(app_yaml)
    try:
        with outcome_lock(store) as held:
            assert held
            output = leadrelay(app_yaml, status=1)
    finally:
        store.close()
    assert "another outcome watch is running" in output
    assert fake_hubspot.calls("POST", BATCH_READ) == []


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"watch_for": "soon"}, "outcomes.watch_for: "),
        ({"every": "0m"}, "outcomes.every: "),
        ({"watch_for": "1h", "every": "2h"}, "outcomes.every: must not be longer than"),
        ({"watch": "30d"}, "outcomes.watch: "),
    ],
)
def test_a_bad_outcomes_section_is_an_error_naming_its_path(tmp_path, section, message):
    with pytest.raises(ConfigErrors) as raised:
        load_config(write_config(tmp_path, outcomes=section))
    assert message in str(raised.value)


def test_serve_schedules_the_watcher_every_outcomes_every_one_at_a_time(tmp_path):
    config = load_config(write_config(tmp_path, outcomes={"every": "10m"}))
    store = open_store(tmp_path / "app.yaml")
    scheduler = start_outcome_watcher(create_app(config, store))
    try:
        assert scheduler is not None
        (job,) = scheduler.get_jobs()
        assert job.trigger.interval == timedelta(minutes=10)
        assert job.max_instances == 1 and job.coalesce is True
    finally:
        assert scheduler is not None
        scheduler.shutdown(wait=True)
        store.close()


def test_serve_starts_no_watcher_without_an_outcomes_section(tmp_path):
    config = load_config(write_config(tmp_path))
    store = open_store(tmp_path / "app.yaml")
    try:
        assert start_outcome_watcher(create_app(config, store)) is None
        disabled = load_config(write_config(tmp_path, outcomes={"enabled": False}))
        assert disabled.outcomes is None
    finally:
        store.close()


def test_a_served_app_with_two_workers_watches_once_and_records_the_conversion(tmp_path):
    from fakes.hubspot_api import start_fake
    from served import serving

    fake = start_fake()
    try:
        app_yaml = write_config(tmp_path, outcomes={"watch_for": "30d", "every": "1h"})
        (contact,) = route_contacts(fake, app_yaml, 1)
        fake.contacts[contact]["lifecyclestage"] = "customer"
        env = {"PATH": os.environ["PATH"], "HUBSPOT_API_BASE": fake.url,
               "HUBSPOT_ACCESS_TOKEN": fake.token}  # fmt: skip
        with serving(app_yaml, env, workers=2):
            deadline = time.monotonic() + 20
            while not outcomes_of(app_yaml)[1].get("converted_at"):
                assert time.monotonic() < deadline, "the watcher recorded nothing"
                time.sleep(0.1)
            time.sleep(1.0)  # the other worker's first run has fired by now
        assert len(fake.calls("POST", BATCH_READ)) == 1  # one pass across both workers
    finally:
        fake.stop()


def test_salesforce_leads_are_read_200_a_query_and_their_outcomes_recorded(
    fake_salesforce, tmp_path
):
    reps = [rep(name, salesforce_user_id=user) for name, user in REP_USERS.items()]
    app_yaml = write_config(tmp_path, reps=reps, outcomes={})
    store = open_store(app_yaml)
    try:
        router = Router(load_config(app_yaml), store)
        ids = [f"00Q5g00000Lx{n:03d}AAA" for n in range(201)]
        for lead_id in ids:
            result = router.route(Lead(id=lead_id, crm="salesforce"), TUESDAY_10AM,
                                  source="salesforce")  # fmt: skip
            fake_salesforce.leads[lead_id] = {
                "Id": lead_id, "OwnerId": result.decision.owner_crm_id, "Company": "Acme",
                "LastName": "Doe", "Status": "Open - Not Contacted", "IsConverted": False,
                "IsDeleted": False, "LastActivityDate": None,
            }  # fmt: skip
    finally:
        store.close()
    fake_salesforce.leads[ids[0]].update(IsConverted=True, Status="Closed - Converted")
    fake_salesforce.leads[ids[1]]["Status"] = "Closed - Not Converted"
    fake_salesforce.leads[ids[2]]["LastActivityDate"] = "2026-11-24"

    output = leadrelay(app_yaml, "--now", DAY_LATER.isoformat())

    queries = fake_salesforce.lead_queries
    assert [q.count("'00Q") for q in queries] == [200, 1]
    assert "201 lead(s) read (salesforce 201); outcomes: 2 contacted, 1 converted, 1" in output
    seen = DAY_LATER.astimezone(UTC).isoformat()
    assert outcomes_of(app_yaml)[2] == {"disqualified_at": seen, "checked_at": seen}
