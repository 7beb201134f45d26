"""Only HubSpot, signing with the app's secret over the URL it called, gets a contact routed."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import time_machine
from fakes.hubspot_requests import (
    ACTION_PATH,
    PUBLIC_URL,
    SECRET,
    action_body,
    hubspot_app,  # noqa: F401 (fixture)
    now_ms,
    post_action,
    sign_v2,
    sign_v3,
)

from connector.hubspot_signature import verify
from workflows.errors import SignatureError

# HubSpot's published examples: developers.hubspot.com "Validating the v2 request signature"
# and the v3 case in hubspot-api-python's tests/spec/utils/test_signature.py.
DOC_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
DOC_URL = "https://www.example.com/webhook_uri"
V2_POST = (
    '{"example_field":"example_value"}',
    "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900",
)
V2_GET = ("", "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e")
V3_BODY, V3_TIMESTAMP = "{'example_field':'example_value'}", "1693657560000"
V3_SIGNATURE = "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="


def test_test_signers_reproduce_hubspots_published_vectors():
    assert sign_v2(DOC_SECRET, "POST", DOC_URL, V2_POST[0].encode()) == V2_POST[1]
    assert sign_v2(DOC_SECRET, "GET", DOC_URL, V2_GET[0].encode()) == V2_GET[1]
    signed = sign_v3(DOC_SECRET, "POST", DOC_URL, V3_BODY.encode(), V3_TIMESTAMP)
    assert signed == V3_SIGNATURE


@pytest.mark.parametrize(("method", "vector"), [("POST", V2_POST), ("GET", V2_GET)])
def test_published_v2_vectors_verify(method, vector):
    body, signature = vector
    headers = {"X-HubSpot-Signature": signature, "X-HubSpot-Signature-Version": "v2"}
    verify(method=method, url=DOC_URL, body=body, headers=headers, secret=DOC_SECRET)


def test_published_v3_vector_verifies_at_its_time_and_is_stale_later():
    headers = {"X-HubSpot-Signature-v3": V3_SIGNATURE, "X-HubSpot-Request-Timestamp": V3_TIMESTAMP}
    signed_at = datetime.fromtimestamp(int(V3_TIMESTAMP) / 1000, UTC)
    with time_machine.travel(signed_at, tick=False):
        verify(method="POST", url=DOC_URL, body=V3_BODY, headers=headers, secret=DOC_SECRET)
    with pytest.raises(SignatureError, match="older than 5 minutes"):
        verify(method="POST", url=DOC_URL, body=V3_BODY, headers=headers, secret=DOC_SECRET)


@pytest.mark.parametrize("version", ["v2", "v3", "both"])
def test_correctly_signed_request_is_routed(hubspot_app, version):
    response = post_action(hubspot_app(), action_body(), version=version)
    assert response.status_code == 200
    assert response.json["outputFields"]["hs_execution_state"] == "SUCCESS"


def test_wrong_secret_is_refused_with_401(hubspot_app):
    response = post_action(hubspot_app(), action_body(), secret="not-the-secret")
    assert response.status_code == 401
    assert "does not match" in response.json["error"]


def test_unsigned_request_is_refused(hubspot_app):
    response = post_action(hubspot_app(), action_body(), version="none")
    assert response.status_code == 401
    assert "no HubSpot signature" in response.json["error"]


def test_v3_decides_when_present_even_if_v2_is_valid(hubspot_app):
    client = hubspot_app()
    bad_v3 = {"X-HubSpot-Signature-v3": "AAAA", "X-HubSpot-Request-Timestamp": now_ms()}
    response = post_action(client, action_body(), version="v2", headers=bad_v3)
    assert response.status_code == 401


def test_tampered_body_is_refused(hubspot_app):
    body = action_body()
    client = hubspot_app()
    good = post_action(client, action_body(callbackId="other"), version="v2")
    assert good.status_code == 200
    signature = good.request.headers["X-HubSpot-Signature"]
    forged = {"X-HubSpot-Signature": signature, "X-HubSpot-Signature-Version": "v2"}
    response = client.post(ACTION_PATH, json=body, headers=forged)
    assert response.status_code == 401


def test_stale_v3_timestamp_is_refused(hubspot_app):
    six_minutes_ago = str(int((time.time() - 360) * 1000))
    response = post_action(hubspot_app(), action_body(), version="v3", timestamp=six_minutes_ago)
    assert response.status_code == 401
    assert "older than 5 minutes" in response.json["error"]


def test_v3_without_timestamp_is_refused(hubspot_app):
    client = hubspot_app()
    response = post_action(
        client, action_body(), version="v3", headers={"X-HubSpot-Request-Timestamp": ""}
    )
    assert response.status_code == 401


def test_v3_timestamp_far_in_the_future_is_refused_but_small_skew_is_fine(hubspot_app):
    client = hubspot_app()
    ahead = str(int((time.time() + 600) * 1000))
    assert post_action(client, action_body(), version="v3", timestamp=ahead).status_code == 401
    skewed = str(int((time.time() + 20) * 1000))
    assert post_action(client, action_body(), version="v3", timestamp=skewed).status_code == 200


def test_query_string_is_part_of_the_signed_url(hubspot_app):
    client = hubspot_app()
    signed_without_query = PUBLIC_URL + ACTION_PATH
    response = post_action(
        client, action_body(), query="tenant=eu", signed_url=signed_without_query
    )
    assert response.status_code == 401
    assert post_action(client, action_body(), query="tenant=eu").status_code == 200


def test_v3_signs_the_url_with_hubspots_decoded_characters(hubspot_app):
    query = "ref=a%40b.com%2Cc"
    decoded = f"{PUBLIC_URL}{ACTION_PATH}?ref=a@b.com,c"
    response = post_action(
        hubspot_app(), action_body(), version="v3", query=query, signed_url=decoded
    )
    assert response.status_code == 200


def test_public_url_replaces_the_host_flask_sees(hubspot_app):
    # Behind a proxy Flask sees http://localhost; HubSpot signed the public https URL.
    client = hubspot_app()
    as_flask_sees_it = "http://localhost" + ACTION_PATH
    response = post_action(client, action_body(), signed_url=as_flask_sees_it)
    assert response.status_code == 401


def test_unknown_portal_is_refused_with_403(hubspot_app):
    client = hubspot_app(hubspot={"write_owner": "output", "portal_ids": [111, 222]})
    response = post_action(client, action_body())
    assert response.status_code == 403
    assert "102670506" in response.json["error"]


def test_allowed_portal_is_served(hubspot_app):
    client = hubspot_app(hubspot={"write_owner": "output", "portal_ids": ["102670506"]})
    assert post_action(client, action_body()).status_code == 200


def test_missing_client_secret_answers_503_naming_it(hubspot_app, monkeypatch):
    client = hubspot_app()
    monkeypatch.delenv("HUBSPOT_CLIENT_SECRET")
    response = post_action(client, action_body(), secret=SECRET)
    assert response.status_code == 503
    assert "HUBSPOT_CLIENT_SECRET is not set" in response.json["error"]
