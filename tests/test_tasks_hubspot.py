"""Follow-up tasks through HubSpot's workflow action (api mode): created once per decision,
associated with the contact, owned by the new owner, due on the owner's working hours."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import rep
from fakes.hubspot_api import fake_hubspot  # noqa: F401 (fixture)
from fakes.hubspot_requests import (
    action_body,
    hubspot_app,  # noqa: F401 (fixture)
    post_action,
    with_properties,
)
from ops_helpers import BEARER
from ops_helpers import TOKEN as OPS_TOKEN

from adapters.hubspot.client import HubSpotApi
from adapters.hubspot.tasks import HubSpotTasks
from connector.hubspot_flusher import Flusher, batch_follow_up
from connector.shared import services_of
from workflows.follow_up import NewTask

API = {"write_owner": "api"}
TASK = {
    "subject": "Call {first_name} at {company} ({rule})",
    "body": "Source: {source}. {reason}",
    "due": "15m",
    "priority": "high",
    "type": "call",
}


def body_with_name(callback: str = "ap-1", **properties: str):
    body = with_properties(action_body(), **{"firstname": "Ana", "company": "Hooli", **properties})
    body["callbackId"] = callback
    return body


def test_a_routed_contact_gets_one_follow_up_task_for_its_new_owner(hubspot_app, fake_hubspot):
    fake_hubspot.add_contact("904")
    response = post_action(hubspot_app(hubspot=API, task=TASK), body_with_name())
    assert response.status_code == 200, response.json
    fields = response.json["outputFields"]
    (task,) = fake_hubspot.tasks.values()
    assert fields["task_id"] == task["id"]
    props = task["properties"]
    assert props["hubspot_owner_id"] == fields["owner_id"] == "101"
    assert props["hs_task_subject"] == "Call Ana at Hooli (everyone)"
    assert props["hs_task_body"].startswith("Source: ORGANIC_SEARCH. everyone: pool team")
    assert (props["hs_task_priority"], props["hs_task_type"]) == ("HIGH", "CALL")
    assert props["hs_task_status"] == "NOT_STARTED"
    assert task["assoc"] == [{"to": "904", "typeId": 204}]


def test_a_retried_callback_creates_no_second_task(hubspot_app, fake_hubspot):
    fake_hubspot.add_contact("904")
    client = hubspot_app(hubspot=API, task=TASK)
    first = post_action(client, body_with_name()).json["outputFields"]
    again = post_action(client, body_with_name()).json["outputFields"]
    assert len(fake_hubspot.tasks) == 1
    assert again == first
    assert len(fake_hubspot.calls("POST", "/crm/v3/objects/tasks")) == 1


def test_a_failed_task_creation_is_retried_once_on_redelivery(hubspot_app, fake_hubspot):
    fake_hubspot.add_contact("904")
    client = hubspot_app(hubspot=API, task=TASK)
    fake_hubspot.fail_next(503, times=10, path="/crm/v3/objects/tasks")
    failed = post_action(client, body_with_name())
    assert failed.status_code == 503  # HubSpot retries the execution
    assert "follow-up task" in failed.json["error"]
    assert fake_hubspot.contacts["904"]["hubspot_owner_id"] == "101"  # the owner stays written
    fake_hubspot.failures.clear()
    owner_writes = len(fake_hubspot.calls("PATCH", "/crm/v3/objects/contacts"))
    retried = post_action(client, body_with_name())
    again = post_action(client, body_with_name())
    assert retried.status_code == again.status_code == 200
    assert len(fake_hubspot.tasks) == 1
    assert retried.json["outputFields"]["task_id"] == next(iter(fake_hubspot.tasks))
    # The retries wrote no owner again: only the task was left to do.
    assert len(fake_hubspot.calls("PATCH", "/crm/v3/objects/contacts")) == owner_writes


def test_task_due_time_counts_the_owners_working_hours(hubspot_app, fake_hubspot):
    # alice works Thursdays 09:00-17:00 only (three days from today, in her zone), so the last
    # resort gives her the lead now and the task falls due 2 working hours into her shift.
    fake_hubspot.add_contact("904")
    zone = ZoneInfo("America/New_York")
    shift = datetime.now(zone).date() + timedelta(days=3)
    day = shift.strftime("%a")
    reps = [rep("alice", hubspot_owner_id="101", hours=f"{day} 09:00-17:00")]
    client = hubspot_app(
        hubspot=API, task={**TASK, "due": "2h"}, reps=reps,
        pools={"team": {"members": ["alice"]}, "big": {"members": ["alice"]}},
        fallback={"rep": "alice"},
    )  # fmt: skip
    assert post_action(client, body_with_name()).json["outputFields"]["owner_id"] == "101"
    (task,) = fake_hubspot.tasks.values()
    due = datetime.fromtimestamp(int(task["properties"]["hs_timestamp"]) / 1000, UTC)
    assert due == datetime.combine(shift, time(11, 0), zone).astimezone(UTC)


def test_a_rule_can_switch_the_task_off(hubspot_app, fake_hubspot):
    fake_hubspot.add_contact("904")
    flow = [{"name": "everyone", "assign": {"pool": "team"}, "task": False}]
    response = post_action(hubspot_app(hubspot=API, task=TASK, flow=flow), body_with_name())
    assert response.json["outputFields"]["task_id"] == ""
    assert fake_hubspot.tasks == {}
    assert fake_hubspot.calls("POST", "/crm/v3/objects/tasks") == []


def test_lead_values_are_data_not_template_source(hubspot_app, fake_hubspot):
    fake_hubspot.add_contact("904")
    body = body_with_name(company="{rep_email} {reason.__class__}")
    post_action(hubspot_app(hubspot=API, task=TASK), body)
    (task,) = fake_hubspot.tasks.values()
    assert task["properties"]["hs_task_subject"] == (
        "Call Ana at {rep_email} {reason.__class__} (everyone)"
    )


# -- batch mode: owners in one batch/update, tasks in one batch/create per 100 -----------------

BATCH = {"write_owner": "batch"}


def batch_flusher(client) -> Flusher:
    services = services_of(client.application)
    token = services.hubspot_token()
    return Flusher(lambda: services.store, lambda: services.hubspot_api(token), every=1.0,
                   follow_up=batch_follow_up(services))  # fmt: skip


def executions(client, count: int, start: int = 0) -> None:
    for number in range(start, start + count):
        body = body_with_name(f"ap-batch-{number}")
        body["object"]["objectId"] = 7000 + number
        assert post_action(client, body).status_code == 200


def test_batch_mode_creates_tasks_in_one_call_per_100_and_completes_with_their_ids(
    hubspot_app, fake_hubspot, store
):
    for number in range(150):
        fake_hubspot.add_contact(str(7000 + number), hubspot_owner_id="")
    client = hubspot_app(hubspot=BATCH, task=TASK)
    executions(client, 150)
    executions(client, 150)  # HubSpot delivered every execution twice
    batch_flusher(client).flush()
    creates = fake_hubspot.calls("POST", "/crm/v3/objects/tasks/batch/create")
    assert [len(call.body["inputs"]) for call in creates] == [100, 50]
    assert len(fake_hubspot.tasks) == 150
    for task in fake_hubspot.tasks.values():
        (link,) = task["assoc"]
        contact = fake_hubspot.contacts[link["to"]]
        assert task["properties"]["hubspot_owner_id"] == contact["hubspot_owner_id"]
    done = {item["callbackId"]: item["outputFields"] for item in fake_hubspot.batch_completed}
    assert len(done) == 150
    assert {fields["task_id"] for fields in done.values()} == set(fake_hubspot.tasks)
    batch_flusher(client).flush()  # nothing left: no second task, no second completion
    assert len(fake_hubspot.tasks) == 150 and len(fake_hubspot.batch_completed) == 150


def test_batch_mode_keeps_an_execution_until_its_task_exists(hubspot_app, fake_hubspot):
    for number in range(3):
        fake_hubspot.add_contact(str(7000 + number), hubspot_owner_id="")
    client = hubspot_app(hubspot=BATCH, task=TASK)
    executions(client, 3)
    fake_hubspot.fail_next(503, times=10, path="/crm/v3/objects/tasks")
    batch_flusher(client).flush()
    assert fake_hubspot.batch_completed == [] and fake_hubspot.tasks == {}
    fake_hubspot.failures.clear()
    services = services_of(client.application)
    later = datetime.now(UTC) + timedelta(minutes=5)  # past the back-off
    api = services.hubspot_api(services.hubspot_token())
    Flusher(lambda: services.store, lambda: api, every=1.0, clock=lambda: later,
            follow_up=batch_follow_up(services)).flush()  # fmt: skip
    assert len(fake_hubspot.tasks) == 3 and len(fake_hubspot.batch_completed) == 3
    assert len(fake_hubspot.calls("POST", "/crm/v3/objects/contacts/batch/update")) == 1


def test_a_later_decision_moves_the_contacts_task_to_the_new_owner(hubspot_app, fake_hubspot):
    fake_hubspot.add_contact("904")
    client = hubspot_app(hubspot=API, task=TASK)
    first = post_action(client, body_with_name("ap-1")).json["outputFields"]
    again = body_with_name("ap-2", hubspot_owner_id=first["owner_id"])
    again["inputFields"]["overwrite_owner"] = "true"
    second = post_action(client, again).json["outputFields"]
    assert second["owner_id"] != first["owner_id"]
    (task_id,) = fake_hubspot.tasks
    assert first["task_id"] == second["task_id"] == task_id
    assert fake_hubspot.tasks[task_id]["properties"]["hubspot_owner_id"] == second["owner_id"]
    assert len(fake_hubspot.calls("POST", "/crm/v3/objects/tasks/batch/update")) == 1


@pytest.mark.parametrize(
    ("object_type", "type_id"),
    [("contact", 204), ("company", 192), ("deal", 216), ("ticket", 230)],
)
def test_each_object_kind_gets_its_default_task_association(fake_hubspot, object_type, type_id):
    api = HubSpotApi(access_token=fake_hubspot.token, host=fake_hubspot.url)
    task = NewTask(record_id=7, crm="hubspot", object_type=object_type, lead_id="31",
                   owner="101", subject="Call", body="", due=datetime.now(UTC),
                   priority="low", type="email")  # fmt: skip
    (made,) = HubSpotTasks(api).create([task]).values()
    assert fake_hubspot.tasks[str(made)]["assoc"] == [{"to": "31", "typeId": type_id}]
    props = fake_hubspot.tasks[str(made)]["properties"]
    assert (props["hs_task_priority"], props["hs_task_type"]) == ("LOW", "EMAIL")


def test_the_console_and_the_api_show_the_decisions_task(hubspot_app, fake_hubspot, monkeypatch):
    monkeypatch.setenv("LEADRELAY_OPS_TOKEN", OPS_TOKEN)
    fake_hubspot.add_contact("904")
    client = hubspot_app(hubspot=API, task=TASK)
    task_id = post_action(client, body_with_name()).json["outputFields"]["task_id"]
    (record,) = client.get("/api/assignments", headers=BEARER).json["assignments"]
    assert (record["task"]["status"], record["task"]["task_id"]) == ("created", task_id)
    page = client.get("/ops/assignments", headers=BEARER).text
    assert "follow-up task" in page and task_id in page
