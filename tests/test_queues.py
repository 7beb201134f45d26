"""Queues as targets: ``queues:`` in app.yaml, a queue decision end to end in Salesforce (an
Outbound Message, OwnerId 00G written) and HubSpot (the holding owner written), rotation state
left alone, and the config errors an admin sees."""

from __future__ import annotations

import csv
import io
import json

import pytest
import yaml
from click.testing import CliRunner
from conftest import TUESDAY_10AM, config_data, rep
from fakes.hubspot_api import fake_hubspot, owner_record  # noqa: F401 (fixture)
from fakes.hubspot_requests import (
    action_body,
    hubspot_app,  # noqa: F401 (fixture)
    post_action,
    with_properties,
)
from fakes.salesforce_api import (  # noqa: F401 (fixture)
    REP_USERS,
    fake_salesforce,
    outbound_body,
    salesforce_config_data,
)
from ops_helpers import BEARER, csrf_of, make_ops_app, ops_env, sign_in  # noqa: F401 (fixtures)

from adapters.hubspot.definition import action_definition
from adapters.salesforce.outbound_message import ACK
from connector.app import create_app
from connector.cli import main
from connector.hubspot_flusher import Flusher
from connector.shared import services_of
from workflows.errors import ConfigErrors
from workflows.model import Lead
from workflows.reassign import Owned, Reassignment
from workflows.router import Router

NURTURE_ID = "00G5g000004NuRtEAK"
HOLDING_OWNER = "150"  # a HubSpot owner that holds leads nobody has picked up yet
QUEUES = {"nurture": {"salesforce": NURTURE_ID, "hubspot_owner_id": HOLDING_OWNER}}
PURCHASED_TO_NURTURE = [
    {"name": "purchased", "when": {"source": "Purchased List"}, "assign": {"queue": "nurture"}},
    {"name": "everyone", "assign": {"pool": "team"}},
]
ALICE, BOB = REP_USERS["alice"], REP_USERS["bob"]


def message(*leads: tuple[str, str, str]) -> bytes:
    """An Outbound Message with one notification per (notification id, lead id, source)."""
    return outbound_body(
        [
            (nid, {"Id": lead_id, "LastName": "Doe", "Company": "Acme", "LeadSource": source,
                   "Email": f"{lead_id[-6:]}@acme.example.com"})
            for nid, lead_id, source in leads
        ]
    )  # fmt: skip


@pytest.fixture
def outbound(make_config, store, fake_salesforce):
    fake_salesforce.queues.add(NURTURE_ID)
    config = make_config(salesforce_config_data(queues=QUEUES, flow=PURCHASED_TO_NURTURE))
    client = create_app(config=config, store=store).test_client()

    def post(body: bytes):
        response = client.post("/salesforce/outbound", data=body, content_type="text/xml")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_data(as_text=True) == ACK
        return response

    return post


# -- Salesforce ---------------------------------------------------------------------------------
def test_a_salesforce_lead_sent_to_a_queue_gets_the_queue_id_as_owner_and_is_logged_queued(
    outbound, fake_salesforce, store
):
    outbound(message(("04l5g0000000001AAA", "00Q5g0000000001EAA", "Purchased List")))

    assert fake_salesforce.owners == {"00Q5g0000000001EAA": NURTURE_ID}
    assert fake_salesforce.writes[0].headers["Sforce-Auto-Assign"] == "FALSE"
    (record,) = store.log()
    decision = record.decision
    assert (decision.outcome, decision.queue, decision.owner_crm_id) == (
        "queued", "nurture", NURTURE_ID,
    )  # fmt: skip
    assert (decision.rep_id, record.new_owner, decision.rule) == (None, None, "purchased")
    assert decision.reason == "purchased: queue nurture"
    assert store.writeback(record.id)["status"] == "written"


def test_a_queue_decision_takes_no_turn_in_the_pool_and_counts_for_no_rep(
    outbound, fake_salesforce, store
):
    outbound(
        message(
            ("04l5g0000000001AAA", "00Q5g0000000001EAA", "Web"),
            ("04l5g0000000002AAA", "00Q5g0000000002EAA", "Purchased List"),
            ("04l5g0000000003AAA", "00Q5g0000000003EAA", "Web"),
        )
    )
    # Round robin goes on from alice to bob as if the queued lead had never come.
    assert fake_salesforce.owners == {
        "00Q5g0000000001EAA": ALICE,
        "00Q5g0000000002EAA": NURTURE_ID,
        "00Q5g0000000003EAA": BOB,
    }
    assert fake_salesforce.write_calls == 1  # one collections call, queue and users together
    assert [r.decision.outcome for r in store.log()] == ["assigned", "queued", "assigned"]
    with store.transaction() as tx:
        assert [tx.daily_count(rep)[1] for rep in ("alice", "bob", "chen")] == [1, 1, 0]


def test_a_redelivered_queue_message_writes_the_queue_once(outbound, fake_salesforce, store):
    body = message(("04l5g0000000001AAA", "00Q5g0000000001EAA", "Purchased List"))
    outbound(body)
    outbound(body)
    assert len(fake_salesforce.writes) == 1 and len(list(store.log())) == 1


def test_a_queue_salesforce_does_not_know_fails_that_lead_for_good_and_says_why(
    make_config, store, fake_salesforce
):
    unknown = "00G5g000009ZzZzEAK"  # not a queue of this org (or not one that takes Leads)
    config = make_config(
        salesforce_config_data(
            queues={"nurture": {"salesforce": unknown}}, flow=PURCHASED_TO_NURTURE
        )
    )
    client = create_app(config=config, store=store).test_client()
    body = message(("04l5g0000000001AAA", "00Q5g0000000001EAA", "Purchased List"))
    response = client.post("/salesforce/outbound", data=body, content_type="text/xml")
    assert response.status_code == 200  # refused for good: a redelivery could not help
    (record,) = store.log()
    assert store.writeback(record.id)["status"] == "failed"
    assert "INVALID_CROSS_REFERENCE_KEY" in store.writeback(record.id)["detail"]
    assert fake_salesforce.owners == {}


def test_the_flow_answer_names_the_queue_and_its_id(
    make_config, store, fake_salesforce, monkeypatch
):
    monkeypatch.setenv("LEADRELAY_FLOW_TOKEN", "flow-secret")
    fake_salesforce.queues.add(NURTURE_ID)
    config = make_config(salesforce_config_data(queues=QUEUES, flow=PURCHASED_TO_NURTURE))
    client = create_app(config=config, store=store).test_client()
    answer = client.post(
        "/salesforce/route",
        json={"Id": "00Q5g0000000001EAA", "LeadSource": "Purchased List", "writeBack": True},
        headers={"Authorization": "Bearer flow-secret"},
    ).get_json()
    assert (answer["outcome"], answer["queue"], answer["ownerId"], answer["rep"]) == (
        "queued", "nurture", NURTURE_ID, None,
    )  # fmt: skip
    assert answer["writeStatus"] == "written"
    assert fake_salesforce.owners == {"00Q5g0000000001EAA": NURTURE_ID}
    document = yaml.safe_load(client.get("/salesforce/openapi.yaml").get_data(as_text=True))
    result = document["components"]["schemas"]["RouteResult"]["properties"]
    assert "queued" in result["outcome"]["enum"] and "queue" in result


# -- HubSpot ------------------------------------------------------------------------------------
def test_a_hubspot_contact_sent_to_a_queue_gets_the_holding_owner_and_outcome_queued(
    hubspot_app, fake_hubspot, store
):
    fake_hubspot.owners.append(
        owner_record(HOLDING_OWNER, "inbox@example.com", "Lead", "Inbox", 9150)
    )
    fake_hubspot.add_contact("904")
    client = hubspot_app(
        hubspot={"write_owner": "api"},
        queues=QUEUES,
        flow=[
            {
                "name": "organic",
                "when": {"source": "ORGANIC_SEARCH"},
                "assign": {"queue": "nurture"},
            },
            {"name": "everyone", "assign": {"pool": "team"}},
        ],
    )
    response = post_action(client, action_body())
    assert response.status_code == 200, response.json
    assert response.json["outputFields"] == {
        "hs_execution_state": "SUCCESS",
        "owner_id": HOLDING_OWNER,
        "owner_email": "",
        "rule": "organic",
        "reason": "organic: queue nurture",
        "outcome": "queued",
        "task_id": "",  # a queue gets no follow-up task
    }
    (update,) = fake_hubspot.calls("PATCH", "/crm/v3/objects/contacts/904")
    assert update.body == {"properties": {"hubspot_owner_id": HOLDING_OWNER}}
    assert fake_hubspot.contacts["904"]["hubspot_owner_id"] == HOLDING_OWNER
    # The next contact still gets the pool's first rep: the queue took no turn.
    other = with_properties(action_body(callbackId="ap-2"), hs_analytics_source="DIRECT")
    fake_hubspot.add_contact("905")
    other["object"]["objectId"] = 905
    assert post_action(client, other).json["outputFields"]["owner_id"] == "101"


def test_a_queue_without_a_hubspot_holding_owner_sends_hubspot_contacts_to_else(hubspot_app):
    client = hubspot_app(
        queues={"nurture": {"salesforce": NURTURE_ID}},
        flow=[{"name": "all", "assign": {"queue": "nurture", "else": {"pool": "team"}}}],
    )
    fields = post_action(client, action_body()).json["outputFields"]
    assert (fields["outcome"], fields["owner_id"]) == ("assigned", "101")
    assert fields["reason"].startswith("all: queue nurture: has no hubspot id in app.yaml; ")


# -- app.yaml ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("queues", "flow", "path", "message"),
    [
        ({"n": {"salesforce": "0055g00000AlIcEAAV"}}, None, "queues.n.salesforce",
         "not a Salesforce queue id: '0055g00000AlIcEAAV' (15 or 18 characters starting 00G)"),
        ({"n": {"salesforce": "00G5g000004NuRt"[:14]}}, None, "queues.n.salesforce",
         "not a Salesforce queue id"),
        ({"n": {}}, None, "queues.n", "give the queue's salesforce id, its hubspot_owner_id"),
        ({"n": {"hubspot_owner_id": "inbox@example.com"}}, None, "queues.n.hubspot_owner_id",
         "not a HubSpot owner id: 'inbox@example.com' (digits:"),
        ({"n": {"hubspot_owner_id": 101}}, None, "queues.n.hubspot_owner_id",
         "'101' is the owner id of rep 'alice'"),
        ({"n": {"salesforce": NURTURE_ID, "first_touch": "soon"}}, None, "queues.n.first_touch",
         "expected a duration"),
        ({}, [{"name": "r", "assign": {"queue": "nurture"}}], "flow[0].assign.queue",
         "unknown queue 'nurture' (none defined under queues:)"),
        (QUEUES, [{"name": "r", "assign": {"pool": "team", "else": {"queue": "nurtur"}}}],
         "flow[0].assign.else.queue", "unknown queue 'nurtur' (nurture)"),
        (QUEUES, [{"name": "r", "assign": {"queue": "nurture", "require": {"languages": "de"}}}],
         "flow[0].assign.require", "a queue has no reps"),
    ],
)  # fmt: skip
def test_queue_config_errors_name_their_path(make_config, queues, flow, path, message):
    data = config_data(queues=queues)
    data["reps"][0]["hubspot_owner_id"] = "101"
    if flow is not None:
        data["flow"] = flow
    with pytest.raises(ConfigErrors) as caught:
        make_config(data)
    assert any(e.path == path and message in e.message for e in caught.value.errors), str(
        caught.value
    )


def test_a_queue_may_be_the_fallback_and_sla_escalate_to(make_config):
    config = make_config(
        config_data(
            queues=QUEUES,
            fallback={"queue": "nurture"},
            sla={"first_touch": "15m", "escalate_to": {"queue": "nurture"}},
        )
    )
    assert config.fallback.kind == "queue" and config.fallback.describe() == "queue nurture"
    assert config.sla is not None and config.sla.escalate_to is not None
    assert config.sla.escalate_to.name == "nurture"


def test_in_batch_mode_the_flusher_writes_the_holding_owner_and_completes_queued(
    hubspot_app, fake_hubspot, store
):
    fake_hubspot.owners.append(owner_record(HOLDING_OWNER, "inbox@example.com", "L", "I", 9150))
    fake_hubspot.add_contact("904")
    client = hubspot_app(
        hubspot={"write_owner": "batch"},
        queues=QUEUES,
        flow=[{"name": "all", "assign": {"queue": "nurture"}}],
    )
    assert post_action(client, action_body()).json["outputFields"]["hs_execution_state"] == "BLOCK"
    services = services_of(client.application)
    api = lambda: services.hubspot_api(services.hubspot_token())  # noqa: E731
    Flusher(lambda: services.store, api, every=1.0).flush()

    assert fake_hubspot.contacts["904"]["hubspot_owner_id"] == HOLDING_OWNER
    (completed,) = fake_hubspot.batch_completed
    assert completed["outputFields"]["outcome"] == "queued"
    assert completed["outputFields"]["owner_id"] == HOLDING_OWNER


def test_the_console_shows_a_queued_row_and_filters_by_outcome_queued(make_ops_app):
    app = make_ops_app(
        config_data(queues=QUEUES, flow=[{"name": "all", "assign": {"queue": "nurture"}}])
    )
    services_of(app).router.route(Lead(id="Q1"), TUESDAY_10AM)
    client = app.test_client()
    answer = client.get("/api/assignments?outcome=queued", headers=BEARER).json
    ((item,),) = [answer["assignments"]]
    assert (item["decision"]["outcome"], item["decision"]["queue"]) == ("queued", "nurture")
    assert item["decision"]["owner_crm_id"] == "nurture"  # no CRM: the queue's own name
    csv_text = client.get("/api/assignments.csv", headers=BEARER).get_data(as_text=True)
    (row,) = csv.DictReader(io.StringIO(csv_text))
    assert (row["outcome"], row["queue"], row["new_owner"]) == ("queued", "nurture", "")
    assert sign_in(client).status_code == 302
    rules = client.get("/ops/rules").get_data(as_text=True)
    tried = client.post("/ops/rules", data={"csrf_token": csrf_of(rules), "id": "T1"}).text
    assert "<h3>queue nurture <span" in tried and "(queued)" in tried
    page = client.get("/ops?outcome=queued").get_data(as_text=True)
    assert "<strong>queue nurture</strong>" in page and 'class="assignment outcome-queued"' in page
    assert "<option selected>queued</option>" in page


def test_the_cli_routes_to_a_queue_and_check_refuses_a_queue_id_on_a_rep(tmp_path):
    data = config_data(queues=QUEUES, flow=[{"name": "all", "assign": {"queue": "nurture"}}])
    data["reps"][0]["salesforce_user_id"] = NURTURE_ID
    data["store"] = "sqlite:///state.sqlite"
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    routed = runner.invoke(main, ["--config", str(path), "route", '{"id": "A"}', "--json"])
    assert routed.exit_code == 0, routed.output
    answer = json.loads(routed.stdout)
    assert (answer["outcome"], answer["queue"], answer["owner"]) == ("queued", "nurture", None)
    check = runner.invoke(main, ["--config", str(path), "check"])
    assert f"rep alice: salesforce_user_id {NURTURE_ID} is a queue, not a user: name it under" in (
        check.output
    )


def test_reassigning_a_departing_reps_book_into_a_queue_moves_it_there(make_config, store):
    router = Router(
        make_config(
            config_data(
                reps=[rep("alice", active=False), rep("bob")],
                pools={},
                queues=QUEUES,
                flow=[{"name": "all", "assign": {"queue": "nurture"}}],
            )
        ),
        store,
    )
    owners = {"L1": "alice", "L2": "alice"}

    def book():
        for lead_id in sorted(owners):
            yield Owned(Lead(id=lead_id, owner="alice"), None, "")

    def write(batch):
        owners.update({lead.id: decision.owner_crm_id for lead, decision in batch})
        return {lead.id: None for lead, _ in batch}

    outcomes = list(Reassignment(router, "alice", TUESDAY_10AM).run(book(), write))
    assert [o.status for o in outcomes] == ["reassigned", "reassigned"]
    assert owners == {"L1": "nurture", "L2": "nurture"}
    assert [r.decision.outcome for r in store.log()] == ["queued", "queued"]


def test_the_hubspot_action_offers_queued_as_an_outcome_to_branch_on(make_config):
    definition = action_definition(make_config(config_data()), "https://leads.example.com/a")
    (outcome,) = [f for f in definition["outputFields"] if f["typeDefinition"]["name"] == "outcome"]
    values = [option["value"] for option in outcome["typeDefinition"]["options"]]
    assert values == ["assigned", "kept", "unassigned", "queued", "failed"]


def test_a_contact_held_by_a_queues_holding_owner_is_routed_even_without_overwrite(
    hubspot_app, fake_hubspot
):
    client = hubspot_app(queues=QUEUES)  # output mode: the answer carries the owner
    held = with_properties(action_body(), hubspot_owner_id=HOLDING_OWNER)
    fields = post_action(client, held).json["outputFields"]
    assert (fields["outcome"], fields["owner_id"]) == ("assigned", "101")
    owned = with_properties(action_body(callbackId="ap-owned"), hubspot_owner_id="102")
    assert post_action(client, owned).json["outputFields"]["outcome"] == "kept"
