"""Follow-up tasks through Salesforce's Outbound Messages and the Flow endpoint: one Task per
decision (WhoId the lead, OwnerId the new owner), whatever Salesforce retries; none for a
queue; a failed creation retried once on redelivery."""

from __future__ import annotations

import threading

import pytest
from conftest import FIXTURES, TUESDAY_10AM
from fakes import salesforce_api
from fakes.salesforce_api import QUEUE_ID, REP_USERS, salesforce_config_data

from adapters.salesforce.auth import SalesforceConnection
from adapters.salesforce.outbound_message import ACK
from adapters.salesforce.tasks import SalesforceTasks
from connector.app import create_app
from workflows.follow_up import NewTask, follow_up
from workflows.model import Lead
from workflows.router import Router

fake_salesforce = salesforce_api.fake_salesforce  # the fixture, requested by name below

LEAD_1 = "00Q5g0000000001EAA"
ALICE = REP_USERS["alice"]
TOKEN = "flow-s3cret"
TASK = {"subject": "Call {first_name} at {company} ({rule})", "due": "30m",
        "type": "call", "priority": "high"}  # fmt: skip


@pytest.fixture
def make_client(make_config, store, fake_salesforce, monkeypatch):
    monkeypatch.setenv("LEADRELAY_FLOW_TOKEN", TOKEN)

    def make(**overrides):
        config = make_config(salesforce_config_data(task=TASK, **overrides))
        return create_app(config=config, store=store).test_client()

    return make


def outbound(client, name: str = "one_lead.xml"):
    body = (FIXTURES / "salesforce" / name).read_bytes()
    return client.post("/salesforce/outbound", data=body, content_type="text/xml; charset=utf-8")


def flow(client, request_id: str = "r-1", **fields):
    body = {"Id": LEAD_1, "OwnerId": QUEUE_ID, "FirstName": "Pat", "Company": "Acme",
            "Country": "US", "requestId": request_id, "writeBack": True, **fields}  # fmt: skip
    return client.post("/salesforce/route", json=body,
                       headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip


def test_an_outbound_message_gives_the_new_owner_one_task_on_the_lead(make_client, fake_salesforce):
    response = outbound(make_client())
    assert response.status_code == 200 and response.get_data(as_text=True) == ACK
    (task,) = fake_salesforce.tasks.values()
    assert task["WhoId"] == LEAD_1 and "WhatId" not in task
    assert task["OwnerId"] == fake_salesforce.owners[LEAD_1] == ALICE
    assert task["Subject"] == "Call Pat at Company 1 (everyone)"
    assert (task["Priority"], task["TaskSubtype"]) == ("High", "Call")
    assert task["Status"] == "Not Started"
    assert task["IsReminderSet"] is True and task["ReminderDateTime"].endswith("+0000")
    assert len(task["ActivityDate"]) == 10  # a date, in the owner's time zone
    # The owner and the task went in one composite call (one API call against the limits).
    (call,) = fake_salesforce.requests
    assert call.url.endswith("/composite") and fake_salesforce.writes[0].headers[
        "Sforce-Auto-Assign"] == "FALSE"  # fmt: skip


def test_a_lead_whose_owner_salesforce_refused_keeps_no_task(make_client, fake_salesforce, store):
    fake_salesforce.refused[LEAD_1] = ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Region required")
    response = outbound(make_client())
    assert response.status_code == 200  # refused for good: acknowledged, nothing to retry
    assert fake_salesforce.owners == {} and fake_salesforce.tasks == {}  # made, then removed
    (record,) = store.log()
    row = store.task(record.id)
    assert row is not None and row["status"] == "failed" and row.get("final") is True


def test_a_redelivered_message_creates_one_task(make_client, fake_salesforce, store):
    client = make_client()
    for _ in range(3):
        assert outbound(client).status_code == 200
    assert len(fake_salesforce.tasks) == 1
    assert fake_salesforce.task_calls == 1
    (record,) = store.log()
    row = store.task(record.id)
    assert row is not None and (row["status"], row["task_id"]) == (
        "created", next(iter(fake_salesforce.tasks)),
    )  # fmt: skip


def test_a_failed_task_creation_faults_and_the_redelivery_creates_it_once(
    make_client, fake_salesforce
):
    client = make_client()
    fake_salesforce.tasks_down = 1
    failed = outbound(client)
    assert failed.status_code == 500  # a SOAP fault: Salesforce delivers again
    assert "follow-up task not created" in failed.get_data(as_text=True)
    assert fake_salesforce.owners == {LEAD_1: ALICE}  # the owner stays written
    owner_writes = len(fake_salesforce.writes)
    assert outbound(client).status_code == 200
    assert outbound(client).status_code == 200
    assert len(fake_salesforce.tasks) == 1 and fake_salesforce.task_calls == 2
    assert len(fake_salesforce.writes) == owner_writes  # only the task was left to do


def test_a_queue_owner_gets_no_task(make_config, store, fake_salesforce):
    # A queue cannot own a Task: whoever takes the lead from the queue makes their own. (Queue
    # targets come with the queues work; here the decision names a queue as the owner.)
    config = make_config(salesforce_config_data(task=TASK))
    record = Router(config, store).route(Lead(LEAD_1, crm="salesforce"), TUESDAY_10AM).record
    assert record is not None
    record.decision.owner_crm_id = QUEUE_ID
    writer = SalesforceTasks(SalesforceConnection("59.0"))
    lead = Lead(LEAD_1, crm="salesforce")
    assert follow_up(store, config, [(lead, record)], writer, lambda: TUESDAY_10AM) == {}
    assert fake_salesforce.tasks == {} and fake_salesforce.requests == []
    assert store.task(record.id) is None


def test_the_flow_answers_the_task_id_and_a_retry_replays_it(make_client, fake_salesforce):
    client = make_client()
    first = flow(client).get_json()
    again = flow(client).get_json()
    assert first["writeStatus"] == "written", first
    (task_id,) = fake_salesforce.tasks
    assert first["taskId"] == again["taskId"] == task_id
    assert (first["taskStatus"], again["replayed"]) == ("created", True)
    assert fake_salesforce.task_calls == 1


def test_the_flow_says_when_the_task_failed_and_a_retry_makes_it(make_client, fake_salesforce):
    client = make_client()
    fake_salesforce.tasks_down = 1
    failed = flow(client)
    assert failed.status_code == 502
    assert failed.get_json()["writeStatus"] == "written"
    assert "follow-up task not created" in failed.get_json()["error"]
    retried = flow(client)
    assert retried.status_code == 200 and retried.get_json()["taskId"] in fake_salesforce.tasks
    assert len(fake_salesforce.tasks) == 1


def test_a_flow_that_sets_the_owner_itself_gets_no_task_from_leadrelay(
    make_client, fake_salesforce
):
    answer = flow(make_client(), writeBack=False).get_json()
    assert answer["taskId"] is None and fake_salesforce.tasks == {}


@pytest.mark.parametrize(
    ("object_type", "record_id", "field"),
    [
        ("lead", "00Q5g0000000002EAA", "WhoId"),
        ("contact", "0035g0000000002EAA", "WhoId"),
        ("account", "0015g0000000002EAA", "WhatId"),
        ("opportunity", "0065g0000000002EAA", "WhatId"),
        ("case", "5005g0000000002EAA", "WhatId"),
    ],
)
def test_each_object_kind_is_the_tasks_who_or_what(fake_salesforce, object_type, record_id, field):
    task = NewTask(record_id=3, crm="salesforce", object_type=object_type, lead_id=record_id,
                   owner=ALICE, subject="Call", body="", due=TUESDAY_10AM, priority="normal",
                   type="todo", timezone="Asia/Tokyo")  # fmt: skip
    (made,) = SalesforceTasks(SalesforceConnection("59.0")).create([task]).values()
    created = fake_salesforce.tasks[str(made)]
    assert created[field] == record_id
    # 10:00 in New York is past midnight in Tokyo: the due day is the owner's own.
    assert created["ActivityDate"] == "2026-11-25"
    assert (created["TaskSubtype"], created["Priority"]) == ("Task", "Normal")


def test_two_concurrent_deliveries_of_one_message_make_one_task(make_client, fake_salesforce):
    client = make_client()
    barrier = threading.Barrier(4)
    answers: list[int] = []

    def deliver() -> None:
        barrier.wait()
        answers.append(outbound(client).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fake_salesforce.tasks) == 1 and len(fake_salesforce.owners) == 1
    # The deliveries that found the write under way answered a fault: Salesforce retries them.
    assert answers.count(200) >= 1 and set(answers) <= {200, 500}
    assert outbound(client).status_code == 200 and len(fake_salesforce.tasks) == 1
