"""A follow-up task follows its record: when the SLA sweep rotates a lead, or ``leadrelay
reassign`` moves a departing rep's book, the lead's open task is given to the new owner (never
left with the old one, never doubled). Outbound Message in over HTTP, then the CLI, against
the fake Salesforce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import FIXTURES, config_data, rep
from fakes import salesforce_api
from fakes.hubspot_api import fake_hubspot  # noqa: F401 (fixture)
from fakes.hubspot_requests import PUBLIC_URL, SECRET, action_body, post_action
from fakes.salesforce_api import REP_USERS

from connector.app import create_app
from connector.cli import main
from workflows.config_loader import load_config

fake_salesforce = salesforce_api.fake_salesforce  # the fixture, requested by name below

LEAD_1 = "00Q5g0000000001EAA"
ORG_ID = salesforce_api.ORG_ID
TASK = {"subject": "Call {first_name} ({rule})", "due": "1h", "clock": "wall", "type": "call"}


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    reps = [rep(name, salesforce_user_id=user) for name, user in REP_USERS.items()]
    data = config_data(
        reps=reps,
        salesforce={"org_ids": [ORG_ID]},
        store=f"sqlite:///{tmp_path / 'state.sqlite'}",
        sla={"first_touch": "15m", "clock": "wall", "max_reassignments": 2},
        task=TASK,
    )
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def deliver_outbound(config_path: Path, fake) -> str:
    """The lead arrives by Outbound Message; returns its owner. The sweep reads it back."""
    app = create_app(config=load_config(config_path))
    body = (FIXTURES / "salesforce" / "one_lead.xml").read_bytes()
    response = app.test_client().post(
        "/salesforce/outbound", data=body, content_type="text/xml; charset=utf-8"
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    owner = fake.owners[LEAD_1]
    fake.leads[LEAD_1] = {
        "Id": LEAD_1, "OwnerId": owner, "Status": "Open - Not Contacted", "IsConverted": False,
        "IsDeleted": False, "LastActivityDate": None, "Company": "Acme", "LastName": "Doe",
    }  # fmt: skip
    return owner


def sweep(config_path: Path, minutes: int, status: int = 0) -> str:
    later = (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()
    result = CliRunner().invoke(
        main, ["--config", str(config_path), "sweep", "--once", "--now", later]
    )
    assert result.exit_code == status, result.output
    return result.output


def test_the_sweep_gives_the_leads_task_to_its_new_owner(config_path, fake_salesforce):
    first = deliver_outbound(config_path, fake_salesforce)
    (task_id,) = fake_salesforce.tasks
    assert fake_salesforce.tasks[task_id]["OwnerId"] == first
    sweep(config_path, minutes=20)
    second = fake_salesforce.owners[LEAD_1]
    assert second != first
    assert list(fake_salesforce.tasks) == [task_id]  # the same task, not a second one
    assert fake_salesforce.tasks[task_id]["OwnerId"] == second
    sweep(config_path, minutes=21)  # nothing due again yet: nothing moves twice
    assert fake_salesforce.tasks[task_id]["OwnerId"] == second
    assert fake_salesforce.task_calls == 2  # one create, one move


def test_a_task_move_that_failed_is_finished_by_the_next_sweep(config_path, fake_salesforce):
    first = deliver_outbound(config_path, fake_salesforce)
    (task_id,) = fake_salesforce.tasks
    fake_salesforce.tasks_down = 1
    output = sweep(config_path, minutes=20, status=3)
    assert "follow-up task not" in output
    second = fake_salesforce.owners[LEAD_1]
    assert second != first and fake_salesforce.tasks[task_id]["OwnerId"] == first
    fake_salesforce.leads[LEAD_1]["OwnerId"] = second
    writes = len(fake_salesforce.writes)
    sweep(config_path, minutes=21)
    assert fake_salesforce.tasks[task_id]["OwnerId"] == second
    assert fake_salesforce.owners[LEAD_1] == second  # the owner did not move again
    assert len(fake_salesforce.writes) == writes
    assert len(fake_salesforce.tasks) == 1


def test_reassign_moves_the_departing_reps_tasks_with_their_leads(
    config_path, fake_salesforce, monkeypatch
):
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    first = deliver_outbound(config_path, fake_salesforce)
    assert first == REP_USERS["alice"]
    (task_id,) = fake_salesforce.tasks
    result = CliRunner().invoke(
        main, ["--config", str(config_path), "reassign", "--from", "alice"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output + result.stderr
    new_owner = fake_salesforce.owners[LEAD_1]
    assert new_owner != first
    assert list(fake_salesforce.tasks) == [task_id]
    assert fake_salesforce.tasks[task_id]["OwnerId"] == new_owner


def routed_hubspot_contact(
    tmp_path: Path, fake_hubspot, monkeypatch, **config
) -> tuple[Path, dict]:
    """Contact 904 routed through the action (api mode, ``task:``) with ``config``'s app.yaml
    over three reps; the config's path and the answer's output fields."""
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("LEADRELAY_PUBLIC_URL", PUBLIC_URL)
    reps = [rep(name, hubspot_owner_id=owner) for name, owner in
            (("alice", "101"), ("bob", "102"), ("chen", "103"))]  # fmt: skip
    data = config_data(reps=reps, hubspot={"write_owner": "api"}, task=TASK,
                       store=f"sqlite:///{tmp_path / 'hs.sqlite'}", **config)  # fmt: skip
    path = tmp_path / "hubspot.yaml"
    path.write_text(yaml.safe_dump(data))
    fake_hubspot.add_contact("904", hs_lead_status="NEW")
    client = create_app(config=load_config(path)).test_client()
    return path, post_action(client, action_body()).json["outputFields"]


def test_the_sweep_moves_a_hubspot_contacts_task_to_its_new_owner(
    tmp_path, fake_hubspot, monkeypatch
):
    path, fields = routed_hubspot_contact(
        tmp_path, fake_hubspot, monkeypatch,
        sla={"first_touch": "15m", "clock": "wall", "max_reassignments": 2},
    )  # fmt: skip
    (task_id,) = fake_hubspot.tasks
    assert fields["task_id"] == task_id
    sweep(path, minutes=20)
    new_owner = fake_hubspot.contacts["904"]["hubspot_owner_id"]
    assert new_owner != fields["owner_id"]
    assert list(fake_hubspot.tasks) == [task_id]
    assert fake_hubspot.tasks[task_id]["properties"]["hubspot_owner_id"] == new_owner


def test_a_hubspot_contact_escalated_into_a_queue_takes_its_task_to_the_holding_owner(
    tmp_path, fake_hubspot, monkeypatch
):
    from fakes.hubspot_api import owner_record

    fake_hubspot.owners.append(owner_record("150", "inbox@example.com", "Lead", "Inbox", 9150))
    path, fields = routed_hubspot_contact(
        tmp_path, fake_hubspot, monkeypatch,
        queues={"nurture": {"hubspot_owner_id": "150"}},
        sla={"first_touch": "15m", "clock": "wall", "max_reassignments": 0,
             "escalate_to": {"queue": "nurture"}},
    )  # fmt: skip
    (task_id,) = fake_hubspot.tasks
    assert fields["task_id"] == task_id
    sweep(path, minutes=20)
    assert fake_hubspot.contacts["904"]["hubspot_owner_id"] == "150"
    # Never left with the rep whom the record left; and the queue gets no second task.
    assert list(fake_hubspot.tasks) == [task_id]
    assert fake_hubspot.tasks[task_id]["properties"]["hubspot_owner_id"] == "150"
