"""Outgoing webhooks: sent after the write-back, in the background, retried, never silently lost.

Every webhook here is a real HTTP POST (``adapters/webhook.py``) to a loopback receiver.
"""

from __future__ import annotations

import ast
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import TUESDAY_10AM, config_data, lead
from fakes import salesforce_api
from fakes.hubspot_requests import action_body, hubspot_app, post_action
from fakes.salesforce_api import QUEUE_ID, REP_USERS, salesforce_config_data
from fakes.webhooks import WebhookReceiver
from served import free_port

import workflows.notify
from adapters.webhook import result_of, webhook_sender
from connector.app import create_app
from connector.cli import main
from connector.services import build_services, record_link
from workflows.delivery import Inbound, deliver
from workflows.errors import ConfigErrors, CrmError
from workflows.notify import Hook, Notifier, resolve_hooks, slack_body

fake_salesforce = salesforce_api.fake_salesforce
hubspot_app = hubspot_app  # the fixture, requested by name below

HOOK_URL = "https://hooks.example.com/leadrelay"
SLACK_URL = "https://hooks.slack.com/services/T0001/B0002/s3cretT0ken"
SECRET_PATH = "/services/T0001/B0002/s3cretT0ken"  # a Slack webhook URL's path is its secret


HUBSPOT_REPS = [
    {"id": "alice", "name": "Alice Ng", "email": "alice@example.com", "hours": "always",
     "hubspot_owner_id": "101"},
    {"id": "bob", "hours": "always", "hubspot_owner_id": "102"},
    {"id": "chen", "hours": "always", "hubspot_owner_id": "103"},
]  # fmt: skip


def hook(url: str = HOOK_URL, fmt: str = "json", attempts: int = 5) -> Hook:
    return Hook(url, fmt, frozenset({"assigned", "reassigned", "escalated"}), attempts)


class Writer:
    def __init__(self) -> None:
        self.failing = False

    def __call__(self, batch):
        error = CrmError("503 from CRM", retryable=True) if self.failing else None
        return {lead.id: error for lead, _ in batch}


@pytest.fixture
def webhooks():
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


def make_notifier(config, *hooks: Hook) -> Notifier:
    """The notifier ``build_services`` makes (HTTP sender, CRM links), with these hooks."""
    link = record_link(config, {})
    return Notifier(hooks, config, send=webhook_sender(), link=link, backoff=0.01)


def secret_url(receiver: WebhookReceiver) -> str:
    return receiver.base + SECRET_PATH


def route(router, notifier, leads, writer=None, event="assigned"):
    batch = [Inbound(item, f"key-{item.id}") for item in leads]
    return deliver(
        router,
        batch,
        TUESDAY_10AM,
        source="test",
        write=writer or Writer(),
        notify=lambda ds: notifier.deliveries(event, ds),
    )


def test_webhook_is_retried_with_back_off_then_succeeds(make_router, webhooks):
    router = make_router()
    webhooks.answer(503)
    webhooks.answer(500)
    notifier = make_notifier(router.config, hook(webhooks.url))
    route(router, notifier, [lead("L1", email="ann@acme.com")])
    notifier.close(5)
    assert notifier.stats == {"queued": 1, "sent": 1, "retried": 2, "failed": 0, "pending": 0}
    assert len(webhooks.received) == 3
    assert all(body == webhooks.received[0] for body in webhooks.received)


def test_json_body_names_lead_owner_rule_reason_event_and_links_to_the_crm(make_router, webhooks):
    router = make_router(reps=HUBSPOT_REPS, hubspot={"portal_ids": ["4242"]})
    notifier = make_notifier(router.config, hook(webhooks.url))
    route(router, notifier, [lead("904", crm="hubspot", owner="", company="Acme")])
    notifier.close(5)
    (body,) = webhooks.received
    assert body["event"] == "assigned"
    assert body["lead"] == {
        "id": "904",
        "crm": "hubspot",
        "link": "https://app.hubspot.com/contacts/4242/record/0-1/904",
        "company": "Acme",
    }
    assert body["owner"] == {
        "rep_id": "alice", "name": "Alice Ng", "email": "alice@example.com", "crm_id": "101",
    }  # fmt: skip
    assert body["rule"] == "everyone" and "pool team" in body["reason"]
    assert body["time"].startswith("2026-11-24T15:00:00")


def test_salesforce_link_uses_the_instance_url_and_no_link_when_unknown(make_config, store):
    config = make_config()
    env = {"SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com/"}
    link = build_services(config, env, store).notifier.link
    assert link("salesforce", "00Q1") == "https://acme.my.salesforce.com/lightning/r/Lead/00Q1/view"
    assert link("hubspot", "904") is None  # no single portal id in app.yaml
    assert build_services(config, {}, store).notifier.link("salesforce", "00Q1") is None


def test_the_notifier_core_imports_neither_http_nor_any_crm():
    tree = ast.parse(Path(workflows.notify.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}  # fmt: skip
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in ("requests", "adapters")}
    assert not any(word in Path(workflows.notify.__file__).read_text() for word in (
        "hubspot.com", "lightning", "SALESFORCE_",
    ))  # fmt: skip


def test_a_notifier_with_webhooks_but_no_sender_is_refused(make_config):
    with pytest.raises(ValueError, match="needs a sender"):
        Notifier([hook()], make_config())


def test_slack_format_is_one_readable_line(make_router, webhooks):
    router = make_router(reps=HUBSPOT_REPS, hubspot={"portal_ids": ["4242"]})
    notifier = make_notifier(router.config, hook(secret_url(webhooks), "slack"))
    route(router, notifier, [lead("904", crm="hubspot", company="Acme")], event="reassigned")
    notifier.close(5)
    (body,) = webhooks.received
    assert list(body) == ["text"]
    assert body["text"] == (
        "Lead <https://app.hubspot.com/contacts/4242/record/0-1/904|Acme> (hubspot) reassigned"
        " to *Alice Ng* by rule `everyone`: " + route_reason(router)
    )


def route_reason(router) -> str:
    return next(iter(router.store.log())).decision.reason


def test_slack_body_without_link_names_the_lead():
    message = {
        "event": "escalated",
        "lead": {"id": "00Q1", "crm": "salesforce"},
        "owner": {"rep_id": "maria", "name": "Maria"},
        "rule": "fallback",
        "reason": "SLA missed twice",
    }
    assert slack_body(message) == {
        "text": "Lead 00Q1 (salesforce) escalated to *Maria* by rule `fallback`: SLA missed twice"
    }


def test_slack_text_escapes_what_slack_would_read_as_markup():
    message = {
        "event": "assigned",
        "lead": {"id": "1", "crm": "hubspot", "company": "<!channel> & Co"},
        "owner": {"rep_id": "bob"},
        "rule": "everyone",
        "reason": "pool team",
    }
    assert slack_body(message)["text"].startswith("Lead &lt;!channel&gt; &amp; Co (hubspot)")


def test_failure_is_counted_and_logged_with_the_host_only(make_router, webhooks, caplog):
    router = make_router()
    for _ in range(3):
        webhooks.answer(500)
    notifier = make_notifier(router.config, hook(secret_url(webhooks), "slack", attempts=3))
    with caplog.at_level(logging.INFO, logger="leadrelay.notify"):
        route(router, notifier, [lead("L1")])
        notifier.close(5)
    assert notifier.stats["failed"] == 1 and notifier.stats["retried"] == 2
    assert len(webhooks.received) == 3
    assert "webhook to 127.0.0.1 answered 500" in caplog.text
    assert "gave up after 3 attempt(s)" in caplog.text
    assert "s3cret" not in caplog.text and "/services/" not in caplog.text


def test_connection_errors_never_log_the_url(make_router, caplog):
    router = make_router()
    nobody_listens = f"http://127.0.0.1:{free_port()}{SECRET_PATH}"
    notifier = make_notifier(router.config, hook(nobody_listens, attempts=2))
    with caplog.at_level(logging.INFO, logger="leadrelay.notify"):
        route(router, notifier, [lead("L1")])
        notifier.close(5)
    assert notifier.stats["failed"] == 1 and notifier.stats["retried"] == 1
    assert "failed (ConnectionError)" in caplog.text and "s3cret" not in caplog.text


def test_a_client_error_is_not_retried(make_router, webhooks):
    router = make_router()
    webhooks.answer(404)
    notifier = make_notifier(router.config, hook(webhooks.url))
    route(router, notifier, [lead("L1")])
    notifier.close(5)
    assert len(webhooks.received) == 1
    assert notifier.stats["failed"] == 1 and notifier.stats["retried"] == 0


@pytest.mark.parametrize(("status", "retryable"), [(408, True), (429, True), (502, True),
                                                   (400, False), (410, False)])  # fmt: skip
def test_timeouts_throttling_and_server_errors_are_retried_other_refusals_are_not(
    status, retryable
):
    assert result_of(status, None).retryable is retryable
    assert result_of(204, None).ok and not result_of(status, None).ok


def test_retry_after_is_obeyed_up_to_five_minutes(make_router, webhooks, caplog):
    router = make_router()
    webhooks.answer(429, {"Retry-After": "3600"})
    notifier = make_notifier(router.config, hook(webhooks.url, attempts=2))
    with caplog.at_level(logging.WARNING, logger="leadrelay.notify"):
        route(router, notifier, [lead("L1")])
        notifier.close(5)  # the retry no longer waits once closing
    assert "answered 429; retrying in 300.0 s" in caplog.text
    assert notifier.stats["sent"] == 1 and len(webhooks.received) == 2
    assert result_of(503, "12").retry_after == 12.0
    assert result_of(503, "Wed, 21 Oct 2026 07:28:00 GMT").retry_after is None  # backs off


def test_a_slow_webhook_never_slows_the_delivery(make_router, webhooks):
    router = make_router()
    webhooks.delay = 1.0
    notifier = make_notifier(router.config, hook(webhooks.url))
    started = time.monotonic()
    results = route(router, notifier, [lead(f"L{i}") for i in range(3)])
    assert time.monotonic() - started < 0.5
    assert [d.status for d in results] == ["written"] * 3
    notifier.close(10)
    assert notifier.stats["sent"] == 3


def test_replays_never_notify_twice(make_router, webhooks):
    router = make_router()
    notifier = make_notifier(router.config, hook(webhooks.url))
    route(router, notifier, [lead("L1")])
    route(router, notifier, [lead("L1")])
    notifier.close(5)
    assert len(webhooks.received) == 1


def test_a_failed_write_notifies_only_once_written_on_the_retry(make_router, webhooks):
    router, writer = make_router(), Writer()
    notifier = make_notifier(router.config, hook(webhooks.url))
    writer.failing = True
    route(router, notifier, [lead("L1")], writer)
    assert notifier.stats["queued"] == 0  # the owner did not change
    writer.failing = False
    route(router, notifier, [lead("L1")], writer)
    route(router, notifier, [lead("L1")], writer)
    notifier.close(5)
    assert len(webhooks.received) == 1


def test_only_owner_changes_notify(make_router, webhooks):
    router = make_router()
    notifier = make_notifier(router.config, hook(webhooks.url))
    keep = Inbound(lead("L1", owner="bob"), "k1", keep_reason="owned by a user")
    same = Inbound(lead("L2", owner="alice"), "k2")  # round robin picks alice first
    for item in (same, keep):
        deliver(
            router, [item], TUESDAY_10AM, source="t", write=None,
            notify=lambda ds: notifier.deliveries("assigned", ds),
        )  # fmt: skip
    notifier.close(1)
    assert notifier.stats["queued"] == 0 and len(webhooks.received) == 0


def test_events_a_hook_did_not_ask_for_are_not_sent(make_router, webhooks):
    router = make_router()
    only_escalations = Hook(webhooks.url, "json", frozenset({"escalated"}), 3)
    notifier = make_notifier(router.config, only_escalations)
    route(router, notifier, [lead("L1")])
    notifier.close(1)
    assert len(webhooks.received) == 0
    with pytest.raises(ValueError, match="unknown event"):
        notifier.deliveries("assignd", [])


def test_hooks_read_secret_urls_from_the_environment(make_config):
    config = make_config(
        notify=[
            {"url_env": "SLACK_WEBHOOK_URL", "format": "slack", "events": ["escalated"]},
            {"url_env": "UNSET_WEBHOOK_URL"},
            {"url": HOOK_URL, "max_attempts": 2},
        ]
    )
    hooks = resolve_hooks(config, {"SLACK_WEBHOOK_URL": SLACK_URL})
    assert [(h.url, h.format, h.events, h.max_attempts) for h in hooks] == [
        (SLACK_URL, "slack", frozenset({"escalated"}), 5),
        (HOOK_URL, "json", frozenset({"assigned", "reassigned", "escalated"}), 2),
    ]
    assert hooks[0].host == "hooks.slack.com"


def test_close_counts_what_could_not_be_sent(make_router, webhooks, caplog):
    router = make_router()
    webhooks.delay = 0.3
    notifier = make_notifier(router.config, hook(webhooks.url))
    route(router, notifier, [lead(f"L{i}") for i in range(5)])
    with caplog.at_level(logging.ERROR, logger="leadrelay.notify"):
        notifier.close(0.1)
    stats = notifier.stats
    assert stats["failed"] >= 3 and stats["sent"] + stats["failed"] + stats["pending"] == 5
    assert "unsent" in caplog.text


def test_flow_endpoint_notifies_after_routing(
    make_config, store, fake_salesforce, webhooks, monkeypatch
):
    monkeypatch.setenv("LEADRELAY_FLOW_TOKEN", "t0ken")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", secret_url(webhooks))
    fake_salesforce.mock.add_passthru(webhooks.base)  # the fake Salesforce mocks requests
    config = make_config(
        salesforce_config_data(notify=[{"url_env": "SLACK_WEBHOOK_URL", "format": "slack"}])
    )
    app = create_app(config=config, store=store)
    body = {"Id": "00Q5g0000000001EAA", "OwnerId": QUEUE_ID, "requestId": "r1"}
    headers = {"Authorization": "Bearer t0ken"}
    for _ in range(2):  # the retry of the same request notifies nothing more
        response = app.test_client().post("/salesforce/route", json=body, headers=headers)
        assert response.get_json()["ownerId"] == REP_USERS["alice"]
    notifier = app.extensions["leadrelay"].notifier
    notifier.close(5)
    assert notifier.stats["sent"] == 1
    (posted,) = webhooks.received
    assert webhooks.paths == [SECRET_PATH] and "*alice*" in posted["text"]


def test_hubspot_action_notifies_once_per_callback(hubspot_app, webhooks):
    client = hubspot_app(
        notify=[{"url": webhooks.url}],
        hubspot={"write_owner": "output", "portal_ids": ["102670506"]},
    )
    for _ in range(2):  # HubSpot retrying the same callback
        assert post_action(client, action_body()).status_code == 200
    notifier = client.application.extensions["leadrelay"].notifier
    notifier.close(5)
    (body,) = webhooks.received
    assert body["owner"]["crm_id"] == "101" and body["lead"]["crm"] == "hubspot"
    assert body["lead"]["link"].startswith("https://app.hubspot.com/contacts/102670506/record/")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_delivery_and_is_never_followed(
    make_router, webhooks, caplog, status
):
    router = make_router()
    webhooks.answer(status, {"Location": f"{webhooks.base}/collector"})
    notifier = make_notifier(router.config, hook(secret_url(webhooks), attempts=3))
    with caplog.at_level(logging.INFO, logger="leadrelay.notify"):
        route(router, notifier, [lead("L1", email="ann@example.com")])
        notifier.close(5)
    assert webhooks.paths == [SECRET_PATH]  # nothing went to /collector
    assert notifier.stats["failed"] == 1 and notifier.stats["sent"] == 0
    assert notifier.stats["retried"] == 0
    assert f"webhook to 127.0.0.1 answered {status} (a redirect, not followed" in caplog.text
    assert "s3cret" not in caplog.text and "collector" not in caplog.text


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("file:///etc/passwd", "must be an http:// or https:// URL (got file:)"),
        ("gopher://hooks.example.com/1", "must be an http:// or https:// URL (got gopher:)"),
        ("hooks.example.com/leadrelay", "must be an http:// or https:// URL (got no scheme)"),
        ("not a url", "must be an http:// or https:// URL (got no scheme)"),
        ("https://", "must name a host (https://host/path)"),
        ("http:///only/a/path", "must name a host (https://host/path)"),
        ("https://hooks.example.com:port/x", "not a URL (Port could not be cast"),
        ("https://hooks.example.com/a b", "must not contain spaces or control characters"),
    ],
)
def test_config_refuses_a_notify_url_that_is_no_http_url(make_config, url, problem):
    with pytest.raises(ConfigErrors) as caught:
        make_config(notify=[{"url": HOOK_URL}, {"url": url}])
    (error,) = [str(e) for e in caught.value.errors]
    assert error.startswith(f"notify[1].url: {problem}")


def test_http_and_https_urls_with_a_host_are_accepted(make_config):
    config = make_config(notify=[{"url": "http://10.0.0.5:8080/hook"}, {"url": HOOK_URL}])
    assert [h.host for h in resolve_hooks(config, {})] == ["10.0.0.5", "hooks.example.com"]


def url_env_app_yaml(tmp_path):
    path = tmp_path / "app.yaml"
    data = config_data(store="sqlite:///state.sqlite", notify=[{"url_env": "TEAM_HOOK"}])
    path.write_text(yaml.safe_dump(data))
    return path


def test_check_refuses_a_url_env_value_that_is_no_http_url_without_printing_it(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("TEAM_HOOK", "file:///var/secret-s3cret/hook")
    result = CliRunner().invoke(main, ["--config", str(url_env_app_yaml(tmp_path)), "check"])
    assert result.exit_code == 1
    assert "notify[0].url_env: $TEAM_HOOK must be an http:// or https:// URL (got file:)" in (
        result.output
    )
    assert "s3cret" not in result.output and "Traceback" not in result.output


def test_serve_refuses_a_url_env_value_that_is_no_http_url_before_starting(tmp_path):
    cli = Path(sys.executable).with_name("leadrelay")
    served = subprocess.run(
        [
            str(cli),
            "--config",
            str(url_env_app_yaml(tmp_path)),
            "serve",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "TEAM_HOOK": "gopher://s3cret.example.com/x"},
    )
    assert served.returncode == 1
    assert "notify[0].url_env: $TEAM_HOOK must be an http:// or https:// URL" in served.stderr
    assert "s3cret" not in served.stdout + served.stderr


def test_check_warns_that_an_unset_url_env_leaves_its_webhook_off(tmp_path, monkeypatch):
    monkeypatch.delenv("TEAM_HOOK", raising=False)
    result = CliRunner().invoke(main, ["--config", str(url_env_app_yaml(tmp_path)), "check"])
    assert result.exit_code == 0
    assert "warning: notify[0].url_env: $TEAM_HOOK is not set; this webhook is off" in (
        result.output
    )


def test_a_hook_whose_environment_url_is_no_http_url_stays_off(make_config, caplog):
    config = make_config(notify=[{"url_env": "TEAM_HOOK"}, {"url": HOOK_URL}])
    with caplog.at_level(logging.ERROR, logger="leadrelay.notify"):
        hooks = resolve_hooks(config, {"TEAM_HOOK": "file:///s3cret"})
    assert [h.url for h in hooks] == [HOOK_URL]
    assert "$TEAM_HOOK must be an http:// or https:// URL" in caplog.text
    assert "s3cret" not in caplog.text


def test_a_url_read_from_a_file_with_its_newline_still_works(make_config):
    config = make_config(notify=[{"url_env": "TEAM_HOOK"}])
    (hook_,) = resolve_hooks(config, {"TEAM_HOOK": f"{HOOK_URL}\n"})
    assert hook_.url == HOOK_URL
