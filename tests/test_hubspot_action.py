"""POST /hubspot/action end to end: real signed requests, the real app, a faked HubSpot API."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from fakes.hubspot_api import fake_hubspot  # noqa: F401 (fixture)
from fakes.hubspot_requests import (
    action_body,
    hubspot_app,  # noqa: F401 (fixture)
    hubspot_config_data,
    post_action,
    with_properties,
)

from connector.cli import main

API = {"write_owner": "api"}


def outputs(response):
    assert response.status_code == 200, response.json
    return response.json["outputFields"]


def owner_updates(fake):
    return [r.body["properties"]["hubspot_owner_id"] for r in fake.calls("PATCH", "/crm/v3")]


# -- output mode: no API call at all ----------------------------------------------------------


def test_contact_is_routed_and_owner_goes_out_as_output_fields(hubspot_app, fake_hubspot):
    fields = outputs(post_action(hubspot_app(), action_body()))
    assert fields == {
        "hs_execution_state": "SUCCESS",
        "owner_id": "101",
        "owner_email": "alice@example.com",
        "rule": "everyone",
        "reason": "everyone: pool team (round_robin) chose alice",
        "outcome": "assigned",
        "task_id": "",
    }
    assert fake_hubspot.requests == []


def test_employee_range_reaches_the_size_rule(hubspot_app):
    body = with_properties(action_body(), numemployees="1000+")
    fields = outputs(post_action(hubspot_app(), body))
    assert (fields["rule"], fields["owner_id"]) == ("enterprise", "103")


def test_retried_callback_returns_the_first_answer_and_rotates_nothing(hubspot_app, store):
    client = hubspot_app()
    first = outputs(post_action(client, action_body()))
    again = outputs(post_action(client, action_body()))
    assert again == first
    assert len(list(store.log())) == 1
    assert outputs(post_action(client, action_body(callbackId="ap-next")))["owner_id"] == "102"


def test_owned_contact_keeps_its_owner_when_overwrite_is_off(hubspot_app, store):
    fields = outputs(post_action(hubspot_app(), action_body("owned_contact")))
    assert fields["hs_execution_state"] == "SUCCESS"
    assert (fields["outcome"], fields["owner_id"], fields["owner_email"]) == (
        "kept", "102", "bob@example.com",
    )  # fmt: skip
    assert fields["reason"] == "already owned by bob (owner 102); overwrite_owner is off"
    (record,) = store.log()
    assert record.decision.outcome == "kept" and record.source == "hubspot"


def test_owned_contact_is_rerouted_when_overwrite_is_on(hubspot_app):
    body = action_body("owned_contact", inputFields={"overwrite_owner": "true"})
    body = with_properties(body, numemployees="10")
    fields = outputs(post_action(hubspot_app(), body))
    assert (fields["outcome"], fields["owner_id"]) == ("assigned", "101")


def test_routing_entry_starts_at_the_chosen_pool(hubspot_app):
    body = action_body(inputFields={"routing_entry": "big"})
    fields = outputs(post_action(hubspot_app(), body))
    assert (fields["rule"], fields["owner_id"]) == ("pool:big", "103")


def test_nobody_available_answers_fail_continue_to_branch_on(hubspot_app):
    client = hubspot_app(
        reps=[{"id": "alice", "timezone": "UTC", "hubspot_owner_id": "101", "active": False}],
        pools={"team": {"members": ["alice"]}},
        flow=[{"name": "everyone", "assign": {"pool": "team"}}],
        fallback={"rep": "alice"},
    )
    fields = outputs(post_action(client, action_body()))
    assert fields["hs_execution_state"] == "FAIL_CONTINUE"
    assert (fields["outcome"], fields["owner_id"]) == ("unassigned", "")
    assert "nobody available" in fields["reason"]


def test_contact_with_all_properties_empty_is_still_routed(hubspot_app, fake_hubspot):
    fields = outputs(post_action(hubspot_app(), action_body("empty_properties")))
    assert (fields["outcome"], fields["rule"], fields["owner_id"]) == (
        "assigned",
        "everyone",
        "101",
    )
    assert fake_hubspot.requests == []


# -- bad requests -----------------------------------------------------------------------------


def test_contact_with_a_lone_surrogate_in_a_property_is_routed_and_logged(hubspot_app, store):
    # JSON may escape half a UTF-16 pair ("\\ud800"); Python keeps it, orjson refuses it.
    body = with_properties(action_body(), email="broken\ud800@example.com", firstname="\udcff")
    assert outputs(post_action(hubspot_app(), body))["outcome"] == "assigned"
    (record,) = store.log()
    assert record.lead_email == "broken\ud800@example.com"


def test_malformed_json_answers_400(hubspot_app):
    response = post_action(hubspot_app(), b'{"callbackId": "x", "object": ')
    assert response.status_code == 400
    assert response.json["field"] == "body" and "not valid JSON" in response.json["error"]


def test_missing_object_answers_400_naming_it(hubspot_app):
    response = post_action(hubspot_app(), action_body("no_object"))
    assert (response.status_code, response.json["field"]) == (400, "object")


def test_object_id_of_the_wrong_type_answers_400(hubspot_app):
    body = action_body()
    body["object"]["objectId"] = {"id": 904}
    response = post_action(hubspot_app(), body)
    assert (response.status_code, response.json["field"]) == (400, "object.objectId")


def test_unknown_routing_entry_answers_400_listing_the_choices(hubspot_app):
    response = post_action(hubspot_app(), action_body(inputFields={"routing_entry": "nope"}))
    assert response.status_code == 400
    assert "team" in response.json["error"] and "big" in response.json["error"]


def test_oversized_body_answers_413_as_json(hubspot_app):
    body = with_properties(action_body(), notes="x" * (1024 * 1024))
    response = post_action(hubspot_app(), body)
    assert response.status_code == 413
    assert "error" in response.json


# -- api mode: the owner is written through hubspot-api-client --------------------------------


def test_api_mode_sets_the_owner_with_one_call(hubspot_app, fake_hubspot):
    fake_hubspot.add_contact("904", email="ana.smith@hooli.com")
    fields = outputs(post_action(hubspot_app(hubspot=API), action_body()))
    assert (fields["outcome"], fields["owner_id"]) == ("assigned", "101")
    assert len(fake_hubspot.requests) == 1
    assert owner_updates(fake_hubspot) == ["101"]
    assert fake_hubspot.contacts["904"]["hubspot_owner_id"] == "101"


def test_api_mode_retry_of_a_written_callback_calls_nothing(hubspot_app, fake_hubspot):
    fake_hubspot.add_contact("904")
    client = hubspot_app(hubspot=API)
    first = outputs(post_action(client, action_body()))
    assert outputs(post_action(client, action_body())) == first
    assert len(fake_hubspot.requests) == 1


def test_api_mode_kept_owner_is_not_written(hubspot_app, fake_hubspot):
    fake_hubspot.add_contact("905", hubspot_owner_id="102")
    fields = outputs(post_action(hubspot_app(hubspot=API), action_body("owned_contact")))
    assert fields["outcome"] == "kept"
    assert fake_hubspot.requests == []


def test_missing_access_token_in_api_mode_answers_503_naming_it(hubspot_app, monkeypatch):
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    response = post_action(hubspot_app(hubspot=API), action_body())
    assert response.status_code == 503
    assert "HUBSPOT_ACCESS_TOKEN is not set" in response.json["error"]


def test_stale_definition_reads_the_contact_once_with_exactly_the_rule_properties(
    hubspot_app, fake_hubspot
):
    fake_hubspot.add_contact("907", email="gia@stark.com", numemployees="5000")
    fields = outputs(post_action(hubspot_app(hubspot=API), action_body("stale_definition")))
    assert (fields["rule"], fields["owner_id"]) == ("enterprise", "103")
    (read,) = fake_hubspot.calls("GET")
    assert read.path == "/crm/v3/objects/contacts/907"
    assert sorted(read.query["properties"]) == ["email", "hubspot_owner_id", "numemployees"]
    assert owner_updates(fake_hubspot) == ["103"]


def test_account_rule_reads_the_company_owner(hubspot_app, fake_hubspot):
    fake_hubspot.add_contact("904")
    fake_hubspot.companies["77"] = {"name": "Hooli", "hubspot_owner_id": "102"}
    client = hubspot_app(
        hubspot=API,
        flow=[
            {"name": "customers", "when": {"account_owner": {"exists": True}},
             "assign": {"account_owner": True}},
            {"name": "everyone", "assign": {"pool": "team"}},
        ],
    )  # fmt: skip
    body = with_properties(action_body(), associatedcompanyid="77")
    fields = outputs(post_action(client, body))
    assert (fields["rule"], fields["owner_id"]) == ("customers", "102")
    assert [(r.method, r.path) for r in fake_hubspot.requests] == [
        ("GET", "/crm/v3/objects/companies/77"),
        ("PATCH", "/crm/v3/objects/contacts/904"),
    ]


def test_transient_5xx_is_retried_within_the_request(hubspot_app, fake_hubspot):
    fake_hubspot.add_contact("904")
    fake_hubspot.fail_next(502)
    fields = outputs(post_action(hubspot_app(hubspot=API), action_body()))
    assert fields["outcome"] == "assigned"
    assert owner_updates(fake_hubspot) == ["101", "101"]


def test_write_failure_answers_503_then_the_retry_writes_without_rerouting(
    hubspot_app, fake_hubspot, store
):
    fake_hubspot.add_contact("904")
    fake_hubspot.fail_next(503, times=10)
    client = hubspot_app(hubspot=API)
    started = time.monotonic()
    failed = post_action(client, action_body())
    assert failed.status_code == 503 and "HubSpot will retry" in failed.json["error"]
    assert time.monotonic() - started < 8  # HubSpot waits ~30 s; we answer well before
    (record,) = store.log()
    assert store.writeback(record.id)["status"] == "failed"

    fake_hubspot.failures.clear()
    fields = outputs(post_action(client, action_body()))  # HubSpot's retry
    assert (fields["outcome"], fields["owner_id"]) == ("assigned", "101")
    assert owner_updates(fake_hubspot)[-1] == "101"
    assert len(list(store.log())) == 1
    assert store.writeback(record.id)["status"] == "written"
    assert outputs(post_action(client, action_body(callbackId="ap-next")))["owner_id"] == "102"


def test_429_with_a_long_retry_after_answers_429_fast_and_holds_every_caller(
    hubspot_app, fake_hubspot
):
    fake_hubspot.add_contact("904")
    fake_hubspot.add_contact("906")
    fake_hubspot.fail_next(429, retry_after="30")
    client = hubspot_app(hubspot=API)
    started = time.monotonic()
    first = post_action(client, action_body())
    # HubSpot honours Retry-After on a 429: it comes back when the pause ends.
    assert first.status_code == 429 and 25 <= int(first.headers["Retry-After"]) <= 30
    assert first.json["pausedUntil"]
    other = action_body("empty_properties")
    assert post_action(client, other).status_code == 429
    assert time.monotonic() - started < 1
    assert len(fake_hubspot.requests) == 1  # the pause kept the second caller off the API


def test_429_with_a_short_retry_after_is_honoured_then_succeeds(hubspot_app, fake_hubspot):
    fake_hubspot.add_contact("904")
    fake_hubspot.fail_next(429, retry_after="1")
    started = time.monotonic()
    fields = outputs(post_action(hubspot_app(hubspot=API), action_body()))
    assert fields["outcome"] == "assigned"
    first, second = fake_hubspot.calls("PATCH")
    assert second.at - first.at >= 0.95
    assert time.monotonic() - started < 3


def test_bad_token_answers_fail_continue_and_is_logged_loudly(
    hubspot_app, fake_hubspot, monkeypatch, caplog
):
    fake_hubspot.add_contact("904")
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-revoked-secret-token")
    with caplog.at_level(logging.INFO):
        fields = outputs(post_action(hubspot_app(hubspot=API), action_body()))
    assert fields["hs_execution_state"] == "FAIL_CONTINUE"
    assert fields["outcome"] == "failed" and "401" in fields["reason"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("401" in r.getMessage() for r in errors)
    assert "pat-revoked-secret-token" not in caplog.text


def test_owner_hubspot_rejects_is_a_failure_not_a_success(hubspot_app, fake_hubspot):
    fake_hubspot.add_contact("904")
    fake_hubspot.owners = [o for o in fake_hubspot.owners if o["id"] != "101"]
    fields = outputs(post_action(hubspot_app(hubspot=API), action_body()))
    assert (fields["hs_execution_state"], fields["outcome"]) == ("FAIL_CONTINUE", "failed")
    assert "400" in fields["reason"] and "101" in fields["reason"]


def test_a_retry_after_seen_by_one_worker_holds_back_other_workers_and_the_sweeper(
    hubspot_app, fake_hubspot, make_config, store
):
    # Two apps stand for two gunicorn workers: each has its own HubSpot client and limiter,
    # but the budget (and HubSpot's Retry-After) lives in the store they serve.
    from fakes.hubspot_requests import hubspot_config_data

    from connector.services import build_services
    from workflows.errors import CrmError

    fake_hubspot.add_contact("904")
    fake_hubspot.add_contact("906")
    fake_hubspot.fail_next(429, retry_after="30")
    first_worker, second_worker = hubspot_app(hubspot=API), hubspot_app(hubspot=API)
    assert post_action(first_worker, action_body()).status_code == 429
    assert post_action(second_worker, action_body("empty_properties")).status_code == 429
    assert len(fake_hubspot.requests) == 1
    config = make_config(hubspot_config_data(hubspot=API, store=f"sqlite:///{store.path}"))
    services = build_services(config, {"HUBSPOT_ACCESS_TOKEN": fake_hubspot.token})
    reader = services.readers()["hubspot"]
    with pytest.raises(CrmError, match=r"paused until .* \(HubSpot asked for 30 s\)"):
        reader.api.limiter.acquire(time.monotonic() + 1)


def test_an_hour_long_retry_after_pauses_a_minute_says_until_when_and_resume_lifts_it(
    hubspot_app, fake_hubspot, tmp_path, store
):
    fake_hubspot.add_contact("904")
    fake_hubspot.add_contact("906")
    fake_hubspot.fail_next(429, retry_after="3600")
    client = hubspot_app(hubspot=API)
    first = post_action(client, action_body())
    assert first.status_code == 429
    assert 1 <= int(first.headers["Retry-After"]) <= 60
    until = datetime.fromisoformat(first.json["pausedUntil"])
    assert timedelta(0) < until - datetime.now(UTC) <= timedelta(seconds=60)
    said = f"paused until {until:%H:%M:%S} UTC (HubSpot asked for 3600 s, capped at 60 s)"
    assert said in first.json["error"] and "HubSpot will retry" in first.json["error"]
    held = post_action(client, action_body("empty_properties"))
    assert (held.status_code, held.json["pausedUntil"]) == (429, first.json["pausedUntil"])
    assert said in held.json["error"]
    assert len(fake_hubspot.requests) == 1  # the pause kept the second caller off the API

    # The app's config, as the admin's app.yaml (same store, so the same budget).
    app_yaml = tmp_path / "app.yaml"
    same_store = f"sqlite:///{store.path}"
    app_yaml.write_text(yaml.safe_dump(hubspot_config_data(hubspot=API, store=same_store)))
    check = CliRunner().invoke(main, ["--config", str(app_yaml), "check"])
    assert check.exit_code == 0, check.output
    assert f"warning: HubSpot calls {said}; `leadrelay hubspot resume` lifts" in check.output

    resume = subprocess.run(
        [str(Path(sys.executable).with_name("leadrelay")), "--config", str(app_yaml),
         "hubspot", "resume"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert resume.returncode == 0, resume.stderr
    assert f"lifted: HubSpot calls {said}" in resume.stdout
    fields = outputs(post_action(client, action_body()))  # HubSpot's retry, within the hour
    assert (fields["outcome"], fields["owner_id"]) == ("assigned", "101")
    assert owner_updates(fake_hubspot) == ["101", "101"]


# -- account rules: a company HubSpot no longer has --------------------------------------------

ACCOUNT_ELSE_TEAM = [
    {"name": "customers", "assign": {"account_owner": True, "else": {"pool": "team"}}},
]


def test_a_deleted_company_sends_an_account_rule_to_its_else_and_says_why(
    hubspot_app, fake_hubspot, store
):
    fake_hubspot.add_contact("904")  # company 77 was deleted or merged: HubSpot answers 404
    client = hubspot_app(hubspot=API, flow=ACCOUNT_ELSE_TEAM)
    body = with_properties(action_body(), associatedcompanyid="77")
    fields = outputs(post_action(client, body))
    assert fields == {
        "hs_execution_state": "SUCCESS",
        "owner_id": "101",
        "owner_email": "alice@example.com",
        "rule": "customers",
        "reason": "customers: account owner: company 77 not found; "
        "customers: pool team (round_robin) chose alice",
        "outcome": "assigned",
        "task_id": "",
    }
    assert [(r.method, r.path) for r in fake_hubspot.requests] == [
        ("GET", "/crm/v3/objects/companies/77"),
        ("PATCH", "/crm/v3/objects/contacts/904"),
    ]
    assert owner_updates(fake_hubspot) == ["101"]
    (record,) = store.log()
    assert record.decision.reason == fields["reason"]


def test_a_contact_without_a_company_goes_to_the_account_rules_else_and_says_why(
    hubspot_app, fake_hubspot
):
    fake_hubspot.add_contact("904")
    fields = outputs(post_action(hubspot_app(hubspot=API, flow=ACCOUNT_ELSE_TEAM), action_body()))
    assert (fields["rule"], fields["owner_id"]) == ("customers", "101")
    assert fields["reason"].startswith(
        "customers: account owner: the contact has no associated company;"
    )
    assert fake_hubspot.calls("GET") == []


def test_a_company_read_hubspot_rate_limits_is_still_retried_later(
    hubspot_app, fake_hubspot, store
):
    fake_hubspot.add_contact("904")
    fake_hubspot.fail_next(429, retry_after="30", path="/crm/v3/objects/companies")
    client = hubspot_app(hubspot=API, flow=ACCOUNT_ELSE_TEAM)
    response = post_action(client, with_properties(action_body(), associatedcompanyid="77"))
    assert response.status_code == 429 and "reading company 77" in response.json["error"]
    assert list(store.log()) == []  # nothing decided: HubSpot's retry routes the contact
