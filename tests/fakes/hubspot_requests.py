"""HubSpot's side of the action: signed execution requests, and an app to send them to.

Signatures are computed here from HubSpot's documented algorithms with hashlib and hmac, never
with the code under test, so a bug there cannot hide itself.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import FIXTURES, config_data, rep
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from connector.app import create_app

SECRET = "8f3c2a9e-test-client-secret"
PUBLIC_URL = "https://leads.example.com"
ACTION_PATH = "/hubspot/action"


def sign_v2(secret: str, method: str, url: str, body: bytes) -> str:
    """X-HubSpot-Signature v2: hex SHA-256 of secret + method + URL + body."""
    return hashlib.sha256(secret.encode() + method.encode() + url.encode() + body).hexdigest()


def sign_v3(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    """X-HubSpot-Signature-v3: base64 HMAC-SHA256 over method + URL + body + timestamp."""
    message = method.encode() + url.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def now_ms() -> str:
    return str(int(time.time() * 1000))


def action_body(name: str = "new_contact", **changes: Any) -> dict[str, Any]:
    """A sample execution request from tests/fixtures/hubspot, with top-level keys replaced."""
    body = json.loads((FIXTURES / "hubspot" / f"{name}.json").read_text())
    body = copy.deepcopy(body)
    body.update(changes)
    return body


def with_properties(body: dict[str, Any], **properties: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["object"]["properties"].update(properties)
    return body


def post_action(
    client: FlaskClient,
    payload: dict[str, Any] | bytes,
    *,
    version: str = "both",
    secret: str = SECRET,
    timestamp: str | None = None,
    query: str = "",
    signed_url: str | None = None,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """POST a request signed the way HubSpot signs it (``version``: v2, v3, both or none)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    target = ACTION_PATH + (f"?{query}" if query else "")
    url = signed_url or PUBLIC_URL + target
    sent: dict[str, str] = {}
    if version in ("v2", "both"):
        sent["X-HubSpot-Signature"] = sign_v2(secret, "POST", url, body)
        sent["X-HubSpot-Signature-Version"] = "v2"
    if version in ("v3", "both"):
        stamp = timestamp or now_ms()
        sent["X-HubSpot-Signature-v3"] = sign_v3(secret, "POST", url, body, stamp)
        sent["X-HubSpot-Request-Timestamp"] = stamp
    sent.update(headers or {})
    return client.post(target, data=body, content_type="application/json", headers=sent)


def hubspot_config_data(**overrides: Any) -> dict[str, Any]:
    """Three reps with HubSpot owner ids 101-103; big companies go to chen; output mode."""
    data = config_data(
        reps=[
            rep("alice", hubspot_owner_id="101", email="alice@example.com"),
            rep("bob", hubspot_owner_id="102", email="bob@example.com"),
            rep("chen", hubspot_owner_id="103", email="chen@example.com"),
        ],
        pools={
            "team": {"members": ["alice", "bob", "chen"], "strategy": "round_robin"},
            "big": {"members": ["chen"]},
        },
        flow=[
            {"name": "enterprise", "when": {"employees": {"gte": 1000}}, "assign": {"pool": "big"}},
            {"name": "everyone", "assign": {"pool": "team"}},
        ],
        hubspot={"write_owner": "output"},
    )
    data.update(overrides)
    return data


@pytest.fixture
def hubspot_app(
    make_config: Callable[..., Any], store: Any, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., FlaskClient]:
    """Build a test client for an app with ``hubspot_config_data(**overrides)``."""
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("LEADRELAY_PUBLIC_URL", PUBLIC_URL)

    def make(**overrides: Any) -> FlaskClient:
        app = create_app(config=make_config(hubspot_config_data(**overrides)), store=store)
        return app.test_client()

    return make
