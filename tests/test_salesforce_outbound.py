"""POST /salesforce/outbound, end to end: the real Flask app, real simple-salesforce, and a fake
Salesforce REST API. Salesforce retries a message until it is acknowledged; leadrelay must ack
only what is done, and never route or write anything twice."""

from __future__ import annotations

import time

import pytest
from conftest import FIXTURES
from fakes import salesforce_api
from fakes.salesforce_api import (
    ORG_ID,
    OWNER_USER_ID,
    QUEUE_ID,
    REP_USERS,
    salesforce_config_data,
)

from adapters.salesforce.auth import SalesforceConnection
from adapters.salesforce.outbound_message import ACK
from connector.app import create_app

fake_salesforce = salesforce_api.fake_salesforce  # the fixture, requested by name below

SAMPLES = FIXTURES / "salesforce"
LEAD_1 = "00Q5g0000000001EAA"
ALICE, BOB, CHEN = REP_USERS["alice"], REP_USERS["bob"], REP_USERS["chen"]


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@pytest.fixture
def make_app(make_config, store):
    def make(**overrides):
        return create_app(config=make_config(salesforce_config_data(**overrides)), store=store)

    return make


@pytest.fixture
def client(make_app):
    return make_app().test_client()


def post(client, body: bytes, query: str = "", content_type: str = "text/xml; charset=utf-8"):
    return client.post(f"/salesforce/outbound{query}", data=body, content_type=content_type)


def log_rows(store):
    return list(store.log())


# -- the happy path ---------------------------------------------------------------------------
def test_one_lead_is_routed_written_and_acknowledged_with_the_exact_ack(
    client, fake_salesforce, store
):
    response = post(client, sample("one_lead.xml"))
    assert response.status_code == 200
    assert response.content_type == "text/xml; charset=utf-8"
    assert response.get_data(as_text=True) == ACK
    assert fake_salesforce.owners == {LEAD_1: ALICE}
    assert fake_salesforce.writes[0].headers["Sforce-Auto-Assign"] == "FALSE"
    (row,) = log_rows(store)
    assert (row.lead_id, row.crm, row.source) == (LEAD_1, "salesforce", "salesforce")
    assert row.idempotency_key == "salesforce:04l5g0000000001AAA"
    assert row.previous_owner == QUEUE_ID  # queue-owned leads are routed
    assert store.writeback(row.id)["status"] == "written"


def test_the_ack_is_the_documented_soap_envelope():
    from defusedxml.ElementTree import fromstring

    root = fromstring(ACK)
    ack = root.find(
        "{http://schemas.xmlsoap.org/soap/envelope/}Body/"
        "{http://soap.sforce.com/2005/09/outbound}notificationsResponse/"
        "{http://soap.sforce.com/2005/09/outbound}Ack"
    )
    assert ack is not None and ack.text == "true"


@pytest.mark.parametrize(
    "content_type", ["text/xml", "application/soap+xml; charset=utf-8", "application/xml"]
)
def test_any_xml_content_type_is_accepted_and_soapaction_is_ignored(
    client, fake_salesforce, content_type
):
    response = client.post(
        "/salesforce/outbound",
        data=sample("one_lead.xml"),
        content_type=content_type,
        headers={"SOAPAction": "something-unexpected"},
    )
    assert response.status_code == 200


def test_hundred_leads_are_written_in_one_collections_call(client, fake_salesforce, store):
    response = post(client, sample("hundred_leads.xml"))
    assert response.status_code == 200
    assert len(fake_salesforce.owners) == 100
    assert fake_salesforce.write_calls == 1
    assert len(log_rows(store)) == 100
    # round robin over three reps, in message order
    assert list(fake_salesforce.owners.values())[:4] == [ALICE, BOB, CHEN, ALICE]


def test_nil_fields_are_empty(client, fake_salesforce, store):
    response = post(client, sample("nil_fields.xml"))
    assert response.status_code == 200
    (row,) = log_rows(store)
    assert row.lead_email is None and row.lead_domain is None
    assert fake_salesforce.owners == {LEAD_1: ALICE}


def test_org_id_in_15_character_form_matches_the_18_character_config(client, fake_salesforce):
    assert post(client, sample("org_id_15.xml")).status_code == 200


def test_18_character_org_id_matches_a_15_character_config(make_app, fake_salesforce):
    client = make_app(salesforce={"org_ids": [ORG_ID[:15]]}).test_client()
    assert post(client, sample("one_lead.xml")).status_code == 200


def test_a_lead_owned_by_a_user_keeps_its_owner_and_nothing_is_written(
    client, fake_salesforce, store
):
    response = post(client, sample("user_owned.xml"))
    assert response.status_code == 200  # acknowledged: done, nothing to write
    assert fake_salesforce.writes == []
    (row,) = log_rows(store)
    assert row.decision.outcome == "kept"
    assert row.decision.reason == f"owned by user {OWNER_USER_ID}; leadrelay does not reassign"


def test_user_owned_leads_are_routed_when_the_config_says_reassign(make_app, fake_salesforce):
    client = make_app(salesforce={"org_ids": [ORG_ID], "reassign_user_owned": True}).test_client()
    assert post(client, sample("user_owned.xml")).status_code == 200
    assert fake_salesforce.owners == {LEAD_1: ALICE}


def test_entry_in_the_url_routes_from_that_pool(make_app, fake_salesforce):
    pools = {
        "team": {"members": ["alice", "bob", "chen"], "strategy": "round_robin"},
        "night": {"members": ["chen"], "strategy": "round_robin"},
    }
    client = make_app(pools=pools).test_client()
    assert post(client, sample("one_lead.xml"), "?entry=night").status_code == 200
    assert fake_salesforce.owners == {LEAD_1: CHEN}
    assert post(client, sample("one_lead.xml"), "?entry=nowhere").status_code == 400


# -- retries ----------------------------------------------------------------------------------
def test_a_redelivered_message_writes_nothing_twice(client, fake_salesforce, store):
    assert post(client, sample("one_lead.xml")).status_code == 200
    assert post(client, sample("one_lead.xml")).status_code == 200
    assert len(fake_salesforce.writes) == 1
    assert len(log_rows(store)) == 1


def test_salesforce_down_answers_a_soap_fault_and_the_retry_finishes(
    client, fake_salesforce, store
):
    fake_salesforce.down = True
    response = post(client, sample("one_lead.xml"))
    assert response.status_code == 500
    assert response.content_type == "text/xml; charset=utf-8"
    body = response.get_data(as_text=True)
    assert "<faultcode>soapenv:Server</faultcode>" in body and "503" in body
    assert fake_salesforce.owners == {}

    fake_salesforce.down = False
    assert post(client, sample("one_lead.xml")).get_data(as_text=True) == ACK
    assert fake_salesforce.owners == {LEAD_1: ALICE}  # the first decision, not a new turn
    assert len(log_rows(store)) == 1


def test_outbound_message_retry_after_outage_writes_every_owner_exactly_once(
    make_app, fake_salesforce, store
):
    """The issue's "done when": 100 notifications, Salesforce goes down after 40 are written;
    Salesforce retries the message; in the end 100 log rows and 100 owners, each written once,
    every write carrying Sforce-Auto-Assign: FALSE."""
    app = make_app()
    # Collections calls of 40 records, so an outage can fall between two calls.
    app.extensions["leadrelay"].salesforce = SalesforceConnection("59.0", chunk_size=40)
    client = app.test_client()
    fake_salesforce.outage_after_writes = 1

    first = post(client, sample("hundred_leads.xml"))
    assert first.status_code == 500 and "60 of 100 leads not written" in first.get_data(True)
    assert len(fake_salesforce.writes) == 40
    assert fake_salesforce.write_calls == 2  # the 40 written, then the 503; nothing after it

    fake_salesforce.outage_after_writes = None  # Salesforce is back; it retries the message
    second = post(client, sample("hundred_leads.xml"))
    assert second.get_data(as_text=True) == ACK

    rows = log_rows(store)
    assert len(rows) == 100
    written = fake_salesforce.written_leads
    assert len(written) == 100 and len(set(written)) == 100
    assert all(w.headers.get("Sforce-Auto-Assign") == "FALSE" for w in fake_salesforce.writes)
    decided = {row.lead_id: REP_USERS[row.new_owner] for row in rows}
    assert fake_salesforce.owners == decided  # the retry wrote the first decisions
    assert all(store.writeback(row.id)["status"] == "written" for row in rows)

    third = post(client, sample("hundred_leads.xml"))  # a late duplicate changes nothing
    assert third.get_data(as_text=True) == ACK
    assert len(fake_salesforce.writes) == 100 and len(log_rows(store)) == 100


def test_one_refused_record_is_retried_alone(client, fake_salesforce):
    fake_salesforce.refused["00Q5g0000000002EAA"] = ("UNABLE_TO_LOCK_ROW", "unable to lock row")
    assert post(client, sample("hundred_leads.xml")).status_code == 500
    assert len(fake_salesforce.writes) == 99
    fake_salesforce.refused.clear()
    assert post(client, sample("hundred_leads.xml")).status_code == 200
    assert fake_salesforce.written_leads[99:] == ["00Q5g0000000002EAA"]


def test_expired_access_token_is_not_acknowledged_and_logged_without_the_token(
    client, fake_salesforce, caplog
):
    fake_salesforce.expire_tokens()
    response = post(client, sample("one_lead.xml"))
    assert response.status_code == 500
    assert "expired or invalid" in response.get_data(as_text=True)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert errors and "expired or invalid" in errors[-1].getMessage()
    assert "fake-direct-token" not in caplog.text + response.get_data(as_text=True)


def test_missing_credentials_are_not_acknowledged(client, fake_salesforce, monkeypatch):
    monkeypatch.delenv("SALESFORCE_ACCESS_TOKEN")
    response = post(client, sample("one_lead.xml"))
    assert response.status_code == 500
    assert "SALESFORCE_ACCESS_TOKEN" in response.get_data(as_text=True)


# -- verification -----------------------------------------------------------------------------
def test_a_wrong_org_is_refused_and_nothing_is_routed(make_app, fake_salesforce, store):
    client = make_app(salesforce={"org_ids": ["00D000000000001AAA"]}).test_client()
    response = post(client, sample("one_lead.xml"))
    assert response.status_code == 403
    assert "<faultcode>soapenv:Client</faultcode>" in response.get_data(as_text=True)
    assert log_rows(store) == [] and fake_salesforce.requests == []


def test_no_org_ids_configured_refuses_everything(make_app, fake_salesforce, store):
    client = make_app(salesforce={}).test_client()
    assert post(client, sample("one_lead.xml")).status_code == 403
    assert log_rows(store) == []


def test_org_ids_are_case_sensitive(make_app, fake_salesforce):
    client = make_app(salesforce={"org_ids": [ORG_ID.lower()]}).test_client()
    assert post(client, sample("one_lead.xml")).status_code == 403


@pytest.mark.parametrize("query", ["", "?token=", "?token=wrong", "?token=s3cret-but-longer"])
def test_a_missing_or_wrong_token_is_refused(client, fake_salesforce, store, monkeypatch, query):
    monkeypatch.setenv("LEADRELAY_OUTBOUND_TOKEN", "s3cret")
    assert post(client, sample("one_lead.xml"), query).status_code == 403
    assert log_rows(store) == []


def test_the_right_token_is_accepted(client, fake_salesforce, monkeypatch):
    monkeypatch.setenv("LEADRELAY_OUTBOUND_TOKEN", "s3cret")
    assert post(client, sample("one_lead.xml"), "?token=s3cret").status_code == 200


# -- hostile and broken input -----------------------------------------------------------------
def _envelope(notifications: str) -> bytes:
    text = sample("one_lead.xml").decode()
    start = text.index("   <Notification>")
    end = text.index("  </notifications>")
    return (text[:start] + notifications + text[end:]).encode()


def _notification_text() -> str:
    text = sample("one_lead.xml").decode()
    return text[text.index("   <Notification>") : text.index("  </notifications>")]


def _declared(encoding: str) -> bytes:
    """The sample, its XML declaration naming ``encoding`` but its bytes still UTF-8."""
    text = sample("one_lead.xml")
    return f"<?xml version='1.0' encoding='{encoding}'?>".encode() + text[text.index(b"?>") + 2 :]


HOSTILE = {
    "xxe": sample("xxe.xml"),
    "billion laughs": sample("billion_laughs.xml"),
    "external dtd": sample("dtd.xml"),
    "a task, not a routed object": sample("contact.xml").replace(b"sf:Contact", b"sf:Task"),
    "a contact whose id is a lead's": sample("contact.xml").replace(b"<sf:Id>003", b"<sf:Id>00Q"),
    "malformed": sample("one_lead.xml")[:-40],
    "not xml": b"hello",
    "empty": b"",
    "not soap": b"<notifications/>",
    "soap without notifications": (
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<soapenv:Body/></soapenv:Envelope>"
    ),
    "no notification": _envelope(""),
    "101 notifications": _envelope(_notification_text() * 101),
    "bad lead id": sample("one_lead.xml").replace(b"<sf:Id>00Q", b"<sf:Id>../../x"),
    "bad number": sample("one_lead.xml").replace(b">250<", b">lots<"),
    "processing instruction junk": b"<?xml version='1.0'?><?evil?><a/>",
    "unknown encoding": b"<?xml version='1.0' encoding='bogus'?><x/>",
    "a binary codec as encoding": _declared("rot13"),
    "utf-16 declared, utf-8 sent": _declared("utf-16"),
    "utf-32 declared": _declared("utf-32"),
    "declaration not at the start": b" " + sample("one_lead.xml"),
    "declaration after the root": b"<a/>" + sample("one_lead.xml"),
    "a utf-8 BOM before a declaration of utf-16": b"\xef\xbb\xbf" + _declared("utf-16"),
    "utf-16 BOM with utf-8 bytes": b"\xff\xfe" + sample("one_lead.xml"),
}


@pytest.mark.parametrize("payload", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_or_broken_messages_are_refused_and_nothing_is_routed(
    client, fake_salesforce, store, payload
):

    response = post(client, payload)
    assert 400 <= response.status_code < 500
    body = response.get_data(as_text=True)
    assert "<faultcode>soapenv:Client</faultcode>" in body
    assert "root:" not in body  # no /etc/passwd
    assert log_rows(store) == [] and fake_salesforce.requests == []
    # and the server is still up
    assert post(client, sample("one_lead.xml")).status_code == 200


def test_billion_laughs_is_refused_before_any_expansion(client, fake_salesforce):
    started = time.perf_counter()
    response = post(client, sample("billion_laughs.xml"))
    assert response.status_code == 400 and "DTDForbidden" in response.get_data(as_text=True)
    assert time.perf_counter() - started < 1


def test_the_hostile_samples_really_declare_entities():
    # Guards the samples themselves: with DTDs allowed, defusedxml still finds entities.
    from defusedxml import EntitiesForbidden
    from defusedxml.ElementTree import fromstring

    for name in ("xxe.xml", "billion_laughs.xml"):
        with pytest.raises(EntitiesForbidden):
            fromstring(sample(name), forbid_dtd=False)


def test_an_oversized_body_is_refused(client, fake_salesforce, store):
    body = sample("one_lead.xml") + b" " * (1024 * 1024)
    response = post(client, body)
    assert response.status_code == 413
    assert log_rows(store) == []


def test_a_non_xml_content_type_is_refused(client, fake_salesforce, store):
    response = post(client, sample("one_lead.xml"), content_type="application/json")
    assert response.status_code == 415
    assert log_rows(store) == []
