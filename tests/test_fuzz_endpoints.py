"""Fuzz the three inbound endpoints with arbitrary headers and bodies, signed and unsigned.

Whatever arrives: never a 5xx (the fakes beneath are healthy, so no 5xx is legitimate), never a
logged traceback, and a refused request (4xx) changes nothing: no row in the assignment log,
no call to the CRM. The budget is fixed and the examples derandomized, so every run of
``make test`` sends the same requests.
"""

from __future__ import annotations

import base64
import encodings.aliases
import json
import logging
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

import pytest
from conftest import FIXTURES
from fakes import salesforce_api
from fakes.hubspot_api import fake_hubspot  # noqa: F401 (fixture)
from fakes.hubspot_requests import (
    ACTION_PATH,
    PUBLIC_URL,
    SECRET,
    action_body,
    hubspot_app,  # noqa: F401 (fixture)
    now_ms,
    sign_v3,
)
from fakes.salesforce_api import QUEUE_ID, salesforce_config_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.app import create_app

fake_salesforce = salesforce_api.fake_salesforce  # the fixture, requested by name below

FUZZ = settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    # Each example is a real request through the app (and, when accepted, the fake CRM).
    suppress_health_check=[HealthCheck.too_slow],
)
FLOW_TOKEN = "flow-s3cret"
OUTBOUND_TOKEN = "outbound-s3cret"

# -- building blocks --------------------------------------------------------------------------
# What a WSGI server can hand over as a header value: latin-1 text without line breaks.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=50)
hostile_header = st.one_of(
    st.sampled_from(["", " ", "²" * 13, "١" * 13, "9" * 5000, "é" * 44, "a" * 43 + "=", "ü" * 64,
                     "0" * 64, "v2", "V2 ", "Bearer", "Bearer é", "bearer  x"]),
    header_text,
)  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)
)  # floats include NaN and infinities, which json.dumps writes as NaN and Infinity
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
content_types = st.one_of(
    st.sampled_from(["application/json", "text/xml; charset=utf-8", "text/plain", ""]),
    header_text,
)
tricky_numbers = st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "1" * 5000, "1e-400"])


def mostly(usual: Any, other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` three times in four, else ``other``: most examples should reach routing."""
    return st.integers(0, 3).flatmap(lambda n: other if n == 0 else st.just(usual))


signed_mostly = mostly(True, st.just(False))  # unsigned requests all stop at the first check


def to_json(value: Any) -> bytes:
    return json.dumps(value).encode()


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


NUMBER = "__number__"  # stands for number text that json.dumps cannot write (1e400, NaN)


def anything_instead_of(data: bytes) -> st.SearchStrategy[bytes]:
    """Mostly ``data``; else deep nesting, it with an unwritable number, any JSON or bytes."""
    placeholder = json.dumps(NUMBER).encode()
    return mostly(
        data.replace(placeholder, b"1"),
        st.one_of(
            st.sampled_from([40, 5_000, 100_000]).map(nested),
            tricky_numbers.map(lambda n: data.replace(placeholder, n.encode())),
            json_values.map(to_json),
            st.binary(max_size=100),
        ),
    )


@st.composite
def hubspot_bodies(draw: st.DrawFn) -> bytes:
    """Mostly execution requests with a fuzzed part, some arbitrary JSON or bytes."""
    body = action_body(draw(st.sampled_from(["new_contact", "owned_contact"])))
    body["object"]["properties"]["numemployees"] = NUMBER
    part = draw(st.sampled_from(["", "", "callbackId", "origin", "object", "inputFields", "id",
                                 "properties", "inputs", "objectType"]))  # fmt: skip
    if part in ("callbackId", "origin", "object", "inputFields"):
        body[part] = draw(json_values)
    elif part == "id":
        body["object"]["objectId"] = draw(
            st.one_of(st.sampled_from([904, "905", "١٢٣", "99999999999999999999999"]), scalars)
        )
    elif part == "properties":
        props = draw(st.dictionaries(st.sampled_from(["numemployees", "country", "x"]), scalars))
        body["object"]["properties"].update(props)
    elif part == "objectType":  # every kind, with its own properties, or any value
        body["object"]["objectType"] = draw(
            st.one_of(st.sampled_from(["COMPANY", "DEAL", "TICKET", "deal", "0-3"]), scalars)
        )
        names = st.sampled_from(["amount", "dealstage", "hs_ticket_priority", "domain", "name"])
        body["object"]["properties"].update(draw(st.dictionaries(names, scalars)))
    elif part == "inputs":
        body["inputFields"] = {"routing_entry": draw(scalars), "overwrite_owner": draw(scalars)}
    return draw(anything_instead_of(to_json(body)))


# A Contact, Account, Opportunity, Case, a queue, a user: the Flow knows the object by prefix.
FLOW_IDS = ["0035g0000000001AAA", "0015g0000000001AAA", "0065g0000000001AAA",
            "5005g0000000001AAA", "00G5g000003Qe1AEAS", "0055g00000Ab1CdAAJ", "500"]  # fmt: skip


@st.composite
def flow_bodies(draw: st.DrawFn) -> bytes:
    """Flow requests: a Lead's fields with fuzzed values and control keys, or anything."""
    lead: dict[str, Any] = {
        "Id": draw(
            mostly("00Q5g0000000001EAA", st.one_of(st.sampled_from(FLOW_IDS), st.text(max_size=20)))
        ),
        "OwnerId": draw(st.sampled_from([QUEUE_ID, "0055g00000Ab1CdAAJ", ""])),
        "NumberOfEmployees": NUMBER,
    }
    keys = ["NumberOfEmployees", "AnnualRevenue", "CreatedDate", "Country", "requestId",
            "writeBack", "entry", "otherFields", "Custom__c"]  # fmt: skip
    lead.update(draw(st.dictionaries(st.sampled_from(keys), scalars, max_size=2)))
    if draw(st.integers(0, 3)) == 0:
        lead[draw(st.sampled_from(keys))] = draw(json_values)
    return draw(anything_instead_of(to_json(lead)))


_ONE_LEAD = (FIXTURES / "salesforce" / "one_lead.xml").read_text()
# What XML 1.0 can carry as text (no control characters, no lone surrogates).
xml_text = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=30)


SOAP_VALUES = ["", "00D5g000004SbAxEAK", "04l5g0000000001AAA", "00Q5g0000000001EAA", ">250<",
               ">2.5E7<", "2026-11-24T15:00:00.000Z", "00G5g000003Qe1AEAS", "sf:Lead"]  # fmt: skip


# The parser looks up whatever encoding the XML declaration names: every codec name Python
# knows (binary codecs such as rot13 and zlib too), names it does not, and odd text.
_CODECS = sorted(set(encodings.aliases.aliases.values()))
xml_declarations = st.builds(
    "{}<?xml version='1.0' encoding='{}'?>".format,
    st.sampled_from(["", "", " ", "\n", "\ufeff", "<a/>"]),  # a declaration not at the start
    st.one_of(
        st.sampled_from(["bogus", "utf-16", "utf-32", "rot13", "idna", "punycode", "UTF-8"]),
        st.sampled_from(_CODECS),
        st.text(max_size=12),
    ),
)


@st.composite
def soap_bodies(draw: st.DrawFn) -> bytes:
    """Outbound Messages: the sample with a fuzzed id, field value or XML declaration, or
    anything."""
    text = _ONE_LEAD
    declaration = draw(mostly("", xml_declarations))
    if declaration:
        text = declaration + text[text.index("?>") + 2 :]
    original = draw(st.sampled_from(SOAP_VALUES))
    if original:
        value = draw(st.one_of(xml_text, tricky_numbers))
        text = text.replace(original, f">{escape(value)}<" if original[0] == ">" else escape(value))
    data = text.encode()
    cut = st.integers(0, len(data)).map(lambda n: data[:n])
    return draw(mostly(data, st.one_of(cut, st.binary(max_size=100))))


# -- the checks -------------------------------------------------------------------------------


class Watch:
    """Sends one request and checks the invariants around it."""

    def __init__(self, store: Any, crm_calls: Callable[[], int], caplog: Any) -> None:
        self.store, self.crm_calls, self.caplog = store, crm_calls, caplog

    def __call__(self, send: Callable[[], Any]) -> Any:
        rows, calls = len(list(self.store.log())), self.crm_calls()
        response = send()
        assert response.status_code < 500, (response.status_code, response.data[:300])
        if 400 <= response.status_code < 500:
            assert len(list(self.store.log())) == rows, "a refused request was logged"
            assert self.crm_calls() == calls, "a refused request reached the CRM"
        tracebacks = [r for r in self.caplog.records if r.exc_info]
        assert not tracebacks, tracebacks[0].getMessage()
        return response


@pytest.fixture
def watch_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


# -- HubSpot: POST /hubspot/action --------------------------------------------------------------
@st.composite
def forged_signatures(draw: st.DrawFn) -> dict[str, str]:
    """HubSpot's signature headers, shaped like the real ones or not, never made with the secret;
    a fresh timestamp half the time, so a malformed signature reaches the comparison."""
    headers = {
        "X-HubSpot-Signature-v3": draw(
            st.one_of(st.binary(min_size=32, max_size=32).map(_base64), hostile_header)
        ),
        "X-HubSpot-Request-Timestamp": draw(st.one_of(st.builds(now_ms), hostile_header)),
        "X-HubSpot-Signature": draw(
            st.one_of(st.binary(min_size=32, max_size=32).map(bytes.hex), hostile_header)
        ),  # fmt: skip
        "X-HubSpot-Signature-Version": draw(st.one_of(st.just("v2"), hostile_header)),
    }
    left_out = draw(st.sets(st.sampled_from(SIGNATURE_HEADERS)))
    return {name: value for name, value in headers.items() if name not in left_out}


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode()


SIGNATURE_HEADERS = ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp",
                     "X-HubSpot-Signature", "X-HubSpot-Signature-Version"]  # fmt: skip


def test_hubspot_action_survives_anything(hubspot_app, fake_hubspot, store, watch_logs):
    fake_hubspot.add_contact("904", email="ana.smith@hooli.com")
    fake_hubspot.add_contact("905", email="ben.kim@globex.com", hubspot_owner_id="102")
    client = hubspot_app(hubspot={"write_owner": "api", "max_calls_per_10s": 250})
    watch = Watch(store, lambda: len(fake_hubspot.requests), watch_logs)

    @FUZZ
    @given(
        body=hubspot_bodies(),
        signed=st.booleans(),
        headers=forged_signatures(),
        content_type=mostly("application/json", content_types),
    )
    def send(body: bytes, signed: bool, headers: dict[str, str], content_type: str) -> None:
        if signed:  # HubSpot's own signature over the fuzzed body, with the app's secret
            stamp = now_ms()
            signature = sign_v3(SECRET, "POST", PUBLIC_URL + ACTION_PATH, body, stamp)
            headers = {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": stamp}
        response = watch(
            lambda: client.post(ACTION_PATH, data=body, content_type=content_type, headers=headers)
        )
        if not signed:
            assert response.status_code == 401  # nothing unsigned gets any further

    send()


# -- Salesforce Flow: POST /salesforce/route ----------------------------------------------------
def test_flow_route_survives_anything(make_config, store, fake_salesforce, monkeypatch, watch_logs):
    monkeypatch.setenv("LEADRELAY_FLOW_TOKEN", FLOW_TOKEN)
    client = create_app(config=make_config(salesforce_config_data()), store=store).test_client()
    watch = Watch(store, lambda: len(fake_salesforce.requests), watch_logs)

    @FUZZ
    @given(
        body=flow_bodies(),
        signed=signed_mostly,
        authorization=hostile_header,
        content_type=mostly("application/json", content_types),
    )
    def send(body: bytes, signed: bool, authorization: str, content_type: str) -> None:
        headers = {"Authorization": f"Bearer {FLOW_TOKEN}" if signed else authorization}
        response = watch(
            lambda: client.post(
                "/salesforce/route", data=body, content_type=content_type, headers=headers
            )
        )
        if not signed:
            assert response.status_code == 401

    send()


# -- Salesforce Outbound Messages: POST /salesforce/outbound ------------------------------------
def test_outbound_messages_survive_anything(
    make_config, store, fake_salesforce, monkeypatch, watch_logs
):
    monkeypatch.setenv("LEADRELAY_OUTBOUND_TOKEN", OUTBOUND_TOKEN)
    client = create_app(config=make_config(salesforce_config_data()), store=store).test_client()
    watch = Watch(store, lambda: len(fake_salesforce.requests), watch_logs)

    @FUZZ
    @given(
        body=soap_bodies(),
        signed=signed_mostly,
        token=st.text(max_size=20),
        entry=st.one_of(st.none(), st.just("team"), st.text(max_size=10)),
        content_type=mostly("text/xml; charset=utf-8", content_types),
    )
    def send(body: bytes, signed: bool, token: str, entry: str | None, content_type: str) -> None:
        query: dict[str, str] = {"token": OUTBOUND_TOKEN if signed else token}
        if entry is not None:
            query["entry"] = entry
        response = watch(
            lambda: client.post(
                "/salesforce/outbound", query_string=query, data=body, content_type=content_type
            )
        )
        if not signed:
            assert response.status_code == 403

    send()
