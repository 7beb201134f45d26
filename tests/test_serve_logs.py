"""No secret reaches a log line: `leadrelay serve` really served, real requests sent (good,
wrong, malformed), and everything gunicorn and leadrelay wrote searched for every secret."""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path
from urllib.parse import quote, quote_plus

import requests
import yaml
from conftest import FIXTURES
from fakes.hubspot_requests import action_body, hubspot_config_data, now_ms, sign_v3
from fakes.salesforce_api import ORG_ID, QUEUE_ID, REP_USERS
from served import free_port, serving

from connector.log_redaction import RedactingFilter, Redactor

CLOSED = f"http://127.0.0.1:{free_port()}"  # nothing listens: every CRM call fails at once

SECRETS = {
    # URL-special characters: the access log shows the token as the request carried it.
    "LEADRELAY_OUTBOUND_TOKEN": "ob+Tok/3n=Out&bound-7f3a",
    "LEADRELAY_FLOW_TOKEN": "flow-token-5c1d9e7b2a",
    "LEADRELAY_OPS_TOKEN": "ops-console-t0ken-3e5f",
    "HUBSPOT_CLIENT_SECRET": "hs-client-secret-0b6e4d",
    "HUBSPOT_ACCESS_TOKEN": "pat-na1-11aa22bb-33cc-44dd-55ee-66ff77889900",
    "HUBSPOT_DEVELOPER_API_KEY": "hs-dev-key-9e8d7c",
    "SALESFORCE_ACCESS_TOKEN": "00D5g000004SbAx!AQ0AQ.sf-session-4b2c",
    "SALESFORCE_CONSUMER_KEY": "3MVG9-consumer-key-a1b2",
    "SALESFORCE_CONSUMER_SECRET": "sf-consumer-secret-c3d4",
    "SALESFORCE_PASSWORD": "sf-password-e5f6",
    "SALESFORCE_SECURITY_TOKEN": "sf-security-token-a7b8",
    "TEAM_HOOK": f"{CLOSED}/services/T01/B02/hook-path-secret-d9c0",
}


def forms(secret: str) -> set[str]:
    """The ways a secret can be written in a line: as is and URL-encoded."""
    return {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}


def serve_and_capture(tmp_path: Path, send) -> str:
    port = free_port()
    data = hubspot_config_data(
        store="sqlite:///state.sqlite",
        notify=[{"url_env": "TEAM_HOOK"}],
        salesforce={"org_ids": [ORG_ID]},
        hubspot={"write_owner": "api", "portal_ids": ["102670506"]},
    )
    for spec in data["reps"]:
        spec["salesforce_user_id"] = REP_USERS[spec["id"]]
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(data))
    env = {
        **os.environ,
        **SECRETS,
        "LEADRELAY_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "HUBSPOT_API_BASE": CLOSED,
        "SALESFORCE_INSTANCE_URL": CLOSED,
    }
    with serving(config, env, port=port) as served:
        send(served.base, port)
    return served.output


def send_everything(base: str, port: int) -> None:
    outbound = quote(SECRETS["LEADRELAY_OUTBOUND_TOKEN"], safe="")
    one_lead = (FIXTURES / "salesforce" / "one_lead.xml").read_bytes()
    xml = {"Content-Type": "text/xml; charset=utf-8"}
    # The right token: routed, then the write to Salesforce fails and is logged.
    answer = requests.post(f"{base}/salesforce/outbound?token={outbound}", one_lead, headers=xml)
    assert answer.status_code == 500
    # The right token under another name, in the Referer and the User-Agent.
    headers = {
        **xml,
        "Referer": f"https://example.my.salesforce.com/x?token={outbound}",
        "User-Agent": f"agent {SECRETS['HUBSPOT_ACCESS_TOKEN']}",
    }
    requests.post(f"{base}/salesforce/outbound?entry=team&t={outbound}", b"<x/>", headers=headers)
    # Wrong tokens, which are someone's secrets too.
    requests.post(f"{base}/salesforce/outbound?token=other-system-secret", one_lead, headers=xml)
    # The Flow endpoint with its bearer token; the write fails.
    flow = {"Authorization": f"Bearer {SECRETS['LEADRELAY_FLOW_TOKEN']}"}
    lead = {"Id": "00Q5g00000AbCdEAAZ", "OwnerId": QUEUE_ID, "Email": "ann@example.com"}
    answer = requests.post(
        f"{base}/salesforce/route", json={**lead, "writeBack": True}, headers=flow
    )
    assert answer.status_code == 502
    # A signed HubSpot action; reading the contact from HubSpot fails.
    body = json.dumps(action_body("new_contact")).encode()
    stamp = now_ms()
    url = f"http://127.0.0.1:{port}/hubspot/action"
    signature = sign_v3(SECRETS["HUBSPOT_CLIENT_SECRET"], "POST", url, body, stamp)
    requests.post(
        url,
        body,
        headers={
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": stamp,
        },
    )
    # Prometheus scraping /metrics with the ops token, and the token where no name says so.
    ops = SECRETS["LEADRELAY_OPS_TOKEN"]
    scraped = requests.get(f"{base}/metrics?ref={ops}", headers={"Authorization": f"Bearer {ops}"})
    assert scraped.status_code == 200
    # A request line gunicorn refuses, which its error log quotes.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        token = SECRETS["LEADRELAY_OUTBOUND_TOKEN"]  # not even URL-encoded
        raw.sendall(f"POST /salesforce/outbound?token={token}\r\n\r\n".encode())
        raw.recv(4096)


def test_no_secret_appears_in_any_log_line_of_a_served_request(tmp_path):
    output = serve_and_capture(tmp_path, send_everything)
    for name, secret in SECRETS.items():
        for form in forms(secret):
            assert form not in output, f"${name} logged as {form!r}"
    assert "other-system-secret" not in output
    assert "POST /salesforce/outbound?token=[redacted] HTTP/1.1" in output  # the access log
    assert "/x?token=[redacted]" in output and "agent [redacted]" in output
    assert "POST /salesforce/route HTTP/1.1" in output
    assert "GET /metrics?ref=[redacted] HTTP/1.1" in output
    # gunicorn's error log, quoting the request line it refused:
    assert "Invalid HTTP request line: 'POST /salesforce/outbound?token=[redacted]'" in output
    assert "Flow route of lead 00Q5g00000AbCdEAAZ: owner not written" in output
    assert "not written, answering a fault" in output  # leadrelay's own log


def test_the_filter_redacts_message_arguments_and_tracebacks():
    record_logger = logging.getLogger("leadrelay.test-redaction")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactingFilter(Redactor(["s3cret-value"])))
    record_logger.addHandler(handler)
    try:
        try:
            raise RuntimeError("calling https://api.example.com/?hapikey=abc123 failed")
        except RuntimeError:
            record_logger.exception("sent %s with %s", "s3cret-value", "Basic dXNlcjpwYXNz")
    finally:
        record_logger.removeHandler(handler)
    (line,) = records
    assert "s3cret" not in line and "abc123" not in line and "dXNlcjpwYXNz" not in line
    assert "sent [redacted] with Basic [redacted]" in line
    assert "?hapikey=[redacted] failed" in line


def test_a_password_inside_a_url_never_reaches_a_log_line():
    # A store URL (LEADRELAY_STORE or app.yaml) may carry a password; a driver's error may
    # quote it whole.
    redact = Redactor([])
    line = 'connection to "postgresql://leadrelay:pa55-word@db.internal:5432/leads" failed'
    assert redact(line) == (
        'connection to "postgresql://leadrelay:[redacted]@db.internal:5432/leads" failed'
    )
    assert redact("sqlite:///var/lib/leadrelay.sqlite") == "sqlite:///var/lib/leadrelay.sqlite"
