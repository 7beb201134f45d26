"""``hubspot.write_owner: batch``: answer BLOCK at once, write owners and complete executions in
batches from the store's outbox. Real signed requests, the real app, the loopback HubSpot fake.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from fakes.hubspot_api import fake_hubspot  # noqa: F401 (fixture)
from fakes.hubspot_requests import (
    action_body,
    hubspot_app,  # noqa: F401 (fixture)
    post_action,
)

from adapters.hubspot.flush_state import read_stop
from connector.hubspot_flusher import (
    ENQUEUED,
    FLUSH_LOCK,
    LAST_FLUSH,
    Flusher,
    announce_written,
    start_flusher,
)
from connector.shared import services_of

BATCH = {"write_owner": "batch"}
BLOCKED = {"hs_execution_state": "BLOCK", "hs_expiration_duration": "P1D"}


def execution(number: int, contact: int | None = None) -> dict:
    """Execution ``number`` of the action, for contact ``contact`` (default: its own)."""
    body = action_body(callbackId=f"ap-batch-{number}")
    body["object"]["objectId"] = 7000 + (number if contact is None else contact)
    return body


def add_contacts(fake, count: int) -> None:
    for number in range(count):
        fake.add_contact(str(7000 + number), hubspot_owner_id="")


def flusher_of(client) -> Flusher:
    services = services_of(client.application)
    return Flusher(lambda: services.store, lambda: services.hubspot_api(services.hubspot_token()),
                   every=1.0)  # fmt: skip


def owner_writes(fake) -> Counter:
    """How many times each contact's owner was written, by any call."""
    writes: Counter = Counter()
    for call in fake.calls("POST", "/crm/v3/objects/contacts/batch/update"):
        writes.update(str(item["id"]) for item in call.body["inputs"])
    for call in fake.calls("PATCH", "/crm/v3/objects/contacts/"):
        writes[call.path.rsplit("/", 1)[1]] += 1
    return writes


def completions(fake) -> dict[str, list[dict]]:
    done: dict[str, list[dict]] = {}
    for item in fake.batch_completed:
        done.setdefault(item["callbackId"], []).append(item["outputFields"])
    return done


def test_an_execution_is_answered_block_at_once_without_calling_hubspot(
    hubspot_app, fake_hubspot, store
):
    response = post_action(hubspot_app(hubspot=BATCH), execution(1))
    assert response.status_code == 200
    assert response.json == {"outputFields": BLOCKED}
    assert fake_hubspot.requests == []
    (record,) = store.log()
    assert store.writeback(record.id)["status"] == "pending"
    (item,) = store.outbox_claim(10, timedelta(seconds=30), datetime.now(UTC)).values()
    assert item["payload"]["callback_id"] == "ap-batch-1"
    assert item["payload"]["owner_id"] == "101"
    assert item["payload"]["output_fields"]["outcome"] == "assigned"


def test_the_expiration_is_configurable_as_an_iso_duration(hubspot_app, fake_hubspot):
    client = hubspot_app(hubspot={**BATCH, "batch": {"expiration": "1h30m"}})
    answer = post_action(client, execution(1)).json["outputFields"]
    assert answer["hs_expiration_duration"] == "PT1H30M"


def test_a_retried_execution_answers_block_again_and_enqueues_nothing_twice(
    hubspot_app, fake_hubspot, store
):
    client = hubspot_app(hubspot=BATCH)
    told = []
    client.application.extensions[ENQUEUED] = lambda: told.append(1)
    for _ in range(3):
        assert post_action(client, execution(1)).json == {"outputFields": BLOCKED}
    assert store.outbox_size() == 1 and len(list(store.log())) == 1
    assert told == [1]


def test_a_flush_writes_owners_in_batches_and_completes_each_execution_once(
    hubspot_app, fake_hubspot, store
):
    add_contacts(fake_hubspot, 150)
    client = hubspot_app(hubspot=BATCH)
    for number in range(150):
        assert post_action(client, execution(number)).status_code == 200
    flusher_of(client).flush()

    updates = fake_hubspot.calls("POST", "/crm/v3/objects/contacts/batch/update")
    assert [len(call.body["inputs"]) for call in updates] == [100, 50]
    assert len(fake_hubspot.calls("POST", "/automation/v4/actions/callbacks/complete")) == 2
    assert set(owner_writes(fake_hubspot).values()) == {1}
    done = completions(fake_hubspot)
    assert len(done) == 150 and all(len(fields) == 1 for fields in done.values())
    for record in store.log():
        callback = record.idempotency_key.removeprefix("hubspot:")
        (fields,) = done[callback]
        owner = record.decision.owner_crm_id
        assert fields == {
            "hs_execution_state": "SUCCESS",
            "owner_id": owner,
            "owner_email": {
                "101": "alice@example.com",
                "102": "bob@example.com",
                "103": "chen@example.com",
            }[owner],  # fmt: skip
            "rule": record.decision.rule,
            "reason": record.decision.reason,
            "outcome": "assigned",
            "task_id": "",
        }
        assert fake_hubspot.contacts[record.lead_id]["hubspot_owner_id"] == owner
        assert store.writeback(record.id)["status"] == "written"
    assert store.outbox_size() == 0


def test_a_kept_owner_is_completed_without_any_owner_write(hubspot_app, fake_hubspot, store):
    client = hubspot_app(hubspot=BATCH)
    post_action(client, action_body("owned_contact", callbackId="ap-kept"))
    flusher_of(client).flush()
    assert owner_writes(fake_hubspot) == Counter()
    (fields,) = completions(fake_hubspot)["ap-kept"]
    assert (fields["outcome"], fields["owner_id"], fields["hs_execution_state"]) == (
        "kept", "102", "SUCCESS",
    )  # fmt: skip


def test_a_deleted_contact_fails_alone_and_its_execution_completes_as_failed(
    hubspot_app, fake_hubspot, store, caplog
):
    add_contacts(fake_hubspot, 5)
    del fake_hubspot.contacts["7002"]  # deleted (or merged away) since the workflow enrolled it
    client = hubspot_app(hubspot=BATCH)
    for number in range(5):
        post_action(client, execution(number))
    with caplog.at_level(logging.WARNING, logger="leadrelay.hubspot.flush"):
        flusher_of(client).flush()

    done = completions(fake_hubspot)
    assert len(done) == 5
    (failed,) = done["ap-batch-2"]
    assert (failed["outcome"], failed["hs_execution_state"], failed["owner_id"]) == (
        "failed", "FAIL_CONTINUE", "",
    )  # fmt: skip
    assert "HubSpot refused the owner of contact 7002" in failed["reason"]
    assert all(done[f"ap-batch-{n}"][0]["outcome"] == "assigned" for n in (0, 1, 3, 4))
    assert "contact 7002" in caplog.text and "completing it as failed" in caplog.text
    by_lead = {r.lead_id: r.id for r in store.log()}
    assert store.writeback(by_lead["7002"])["final"] is True
    assert store.writeback(by_lead["7001"])["status"] == "written"
    assert store.outbox_size() == 0


def test_two_executions_for_one_contact_never_share_a_batch(hubspot_app, fake_hubspot, store):
    add_contacts(fake_hubspot, 1)
    client = hubspot_app(hubspot=BATCH, flow=[{"name": "all", "assign": {"pool": "team"}}])
    post_action(client, execution(1, contact=0))
    post_action(client, execution(2, contact=0))
    flusher_of(client).flush()
    for call in fake_hubspot.calls("POST", "/crm/v3/objects/contacts/batch/update"):
        ids = [item["id"] for item in call.body["inputs"]]
        assert len(ids) == len(set(ids))
    assert set(completions(fake_hubspot)) == {"ap-batch-1", "ap-batch-2"}
    newest = max(store.log(), key=lambda r: r.id)
    assert fake_hubspot.contacts["7000"]["hubspot_owner_id"] == newest.decision.owner_crm_id


def test_a_5xx_leaves_everything_in_the_outbox_and_a_later_flush_finishes(
    hubspot_app, fake_hubspot, store
):
    add_contacts(fake_hubspot, 3)
    client = hubspot_app(hubspot=BATCH)
    for number in range(3):
        post_action(client, execution(number))
    fake_hubspot.fail_next(503, times=10, path="/crm/v3/objects/contacts/batch/update")
    flusher = flusher_of(client)
    (first,) = flusher.flush()
    assert (first.written, first.completed, first.retry) == (0, 0, 3)
    assert fake_hubspot.batch_completed == [] and store.outbox_size() == 3
    fake_hubspot.failures.clear()
    # Backed off: nothing is claimed again before its retry time.
    assert flusher.flush()[0].claimed == 0
    later = Flusher(flusher._store, flusher._api, 1.0, clock=lambda: datetime.now(UTC)
                    + timedelta(minutes=2))  # fmt: skip
    later.flush()
    # Four refused attempts (the client's own retries), then one that went through.
    assert len(fake_hubspot.calls("POST", "/crm/v3/objects/contacts/batch/update")) == 5
    assert all(fake_hubspot.contacts[str(7000 + n)]["hubspot_owner_id"] for n in range(3))
    assert len(completions(fake_hubspot)) == 3 and store.outbox_size() == 0


def test_a_failed_completion_never_writes_the_owner_again(hubspot_app, fake_hubspot, store):
    add_contacts(fake_hubspot, 2)
    client = hubspot_app(hubspot=BATCH)
    for number in range(2):
        post_action(client, execution(number))
    fake_hubspot.fail_next(502, times=10, path="/automation/v4/actions/callbacks/complete")
    flusher = flusher_of(client)
    flusher.flush()
    assert fake_hubspot.batch_completed == [] and store.outbox_size() == 2
    fake_hubspot.failures.clear()
    Flusher(flusher._store, flusher._api, 1.0,
            clock=lambda: datetime.now(UTC) + timedelta(minutes=2)).flush()  # fmt: skip
    assert owner_writes(fake_hubspot) == Counter({"7000": 1, "7001": 1})
    assert len(completions(fake_hubspot)) == 2 and store.outbox_size() == 0


def test_a_429_pauses_every_process_and_the_items_wait_for_the_pause(
    hubspot_app, fake_hubspot, store
):
    add_contacts(fake_hubspot, 2)
    client = hubspot_app(hubspot=BATCH)
    for number in range(2):
        post_action(client, execution(number))
    fake_hubspot.fail_next(429, times=10, retry_after="30", path="/crm/v3/objects/contacts/batch")
    flusher = flusher_of(client)
    (result,) = flusher.flush()
    assert result.retry == 2 and result.calls == 1
    api = flusher._api()
    pause = api.limiter.paused()
    assert pause is not None and pause.asked == 30
    items = store.outbox_claim(10, timedelta(seconds=1), pause.until - timedelta(seconds=1))
    assert items == {}  # not before the pause ends
    assert len(fake_hubspot.calls("POST", "/crm/v3/objects/contacts/batch/update")) == 1


def test_an_expired_callback_does_not_hold_back_the_others(
    hubspot_app, fake_hubspot, store, caplog
):
    add_contacts(fake_hubspot, 3)
    fake_hubspot.expired_callbacks.add("ap-batch-1")
    client = hubspot_app(hubspot=BATCH)
    for number in range(3):
        post_action(client, execution(number))
    flusher_of(client).flush()
    assert set(completions(fake_hubspot)) == {"ap-batch-0", "ap-batch-2"}
    assert "ap-batch-1" in caplog.text and store.outbox_size() == 0


def test_a_401_stops_the_flusher_loudly_and_check_says_so(
    hubspot_app, fake_hubspot, store, caplog, tmp_path, monkeypatch
):
    add_contacts(fake_hubspot, 2)
    client = hubspot_app(hubspot=BATCH)
    for number in range(2):
        post_action(client, execution(number))
    fake_hubspot.token = "pat-na1-revoked"  # the app's token was rotated in HubSpot
    flusher = flusher_of(client)
    with caplog.at_level(logging.ERROR):
        (result,) = flusher.flush()
    assert result.stopped and "401" in result.stopped
    assert flusher.stopped == result.stopped
    assert "HubSpot batch flusher STOPPED" in caplog.text
    assert store.outbox_size() == 2  # nothing dropped
    assert "401" in read_stop(store)["reason"]

    from dataclasses import replace

    from adapters.hubspot.check import check_warnings

    config = services_of(client.application).config
    config = replace(config, store_url=f"sqlite:///{tmp_path}/store.sqlite")  # the app's store
    warnings = check_warnings(config)
    assert any("flusher stopped" in w and "outbox" in w for w in warnings), warnings


def test_the_flusher_thread_flushes_within_its_interval(hubspot_app, fake_hubspot, store):
    add_contacts(fake_hubspot, 3)
    client = hubspot_app(hubspot={**BATCH, "batch": {"flush_every": "1s"}})
    flusher = start_flusher(client.application)
    assert flusher is not None
    try:
        for number in range(3):
            post_action(client, execution(number))
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        while len(fake_hubspot.batch_completed) < 3 and datetime.now(UTC) < deadline:
            import time

            time.sleep(0.05)
    finally:
        flusher.close()
    assert len(completions(fake_hubspot)) == 3


def test_batch_mode_without_a_token_answers_503_naming_it(hubspot_app, monkeypatch):
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    response = post_action(hubspot_app(hubspot=BATCH), execution(1))
    assert response.status_code == 503
    assert "HUBSPOT_ACCESS_TOKEN" in response.json["error"]


# -- api mode: a short wait for the budget, then 429 ----------------------------------------


def test_api_mode_answers_429_with_retry_after_once_the_budget_wait_is_over(
    hubspot_app, fake_hubspot, store
):
    for number in range(4):
        fake_hubspot.add_contact(str(7000 + number))
    client = hubspot_app(hubspot={"write_owner": "api", "max_calls_per_10s": 1, "budget_wait": 1})
    answers = [post_action(client, execution(number)) for number in range(3)]
    statuses = [a.status_code for a in answers]
    assert statuses[0] == 200 and 429 in statuses, statuses
    refused = answers[statuses.index(429)]
    assert int(refused.headers["Retry-After"]) >= 1
    assert "budget" in refused.json["error"]


@pytest.mark.parametrize("wait", ["0s", "4s"])
def test_a_budget_wait_outside_zero_to_three_seconds_is_refused(make_config, wait):
    from conftest import config_data

    from workflows.errors import ConfigErrors

    with pytest.raises(ConfigErrors, match="hubspot.budget_wait"):
        make_config(config_data(hubspot={"budget_wait": wait}))


def test_check_names_the_missing_token_in_batch_mode(tmp_path, monkeypatch):
    from conftest import config_data

    from adapters.hubspot.check import missing_credentials
    from workflows.config_builder import build_config

    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    config = build_config(config_data(hubspot=BATCH), source=tmp_path / "app.yaml")
    problems = missing_credentials(config, {})
    assert any("write_owner: batch" in p for p in problems)
    assert CliRunner  # (the CLI's check prints these; see test_cli)


def test_written_owners_are_told_to_the_write_listeners_as_in_api_mode(
    hubspot_app, fake_hubspot, store
):
    add_contacts(fake_hubspot, 3)
    del fake_hubspot.contacts["7001"]
    client = hubspot_app(hubspot=BATCH)
    services = services_of(client.application)
    told = []
    services.router.write_listeners.append(lambda lead, error: told.append((lead.id, error)))
    for number in range(3):
        post_action(client, execution(number))
    assert told == []  # nothing is written while answering
    Flusher(lambda: services.store, lambda: services.hubspot_api(services.hubspot_token()),
            1.0, on_written=lambda owners: announce_written(services, owners)).flush()  # fmt: skip
    assert sorted(lead for lead, _ in told) == ["7000", "7001", "7002"]
    errors = dict(told)
    assert errors["7000"] is None and errors["7002"] is None
    assert "7001" in str(errors["7001"])


def test_a_batch_refused_whole_for_one_bad_owner_still_writes_the_others(
    hubspot_app, fake_hubspot, store
):
    add_contacts(fake_hubspot, 4)
    fake_hubspot.owners = [o for o in fake_hubspot.owners if o["id"] != "103"]  # chen left
    client = hubspot_app(hubspot=BATCH)
    for number in range(4):
        body = execution(number)
        if number == 2:
            body["object"]["properties"]["numemployees"] = "1000+"  # enterprise: chen (103)
        post_action(client, body)
    (result,) = flusher_of(client).flush()
    owner_of = {r.lead_id: r.decision.owner_crm_id for r in store.log()}
    to_chen = {lead for lead, owner in owner_of.items() if owner == "103"}
    assert "7002" in to_chen and len(to_chen) < 4
    assert (result.written, result.refused, result.completed) == (4 - len(to_chen), len(to_chen), 4)
    done = completions(fake_hubspot)
    for lead, owner in owner_of.items():
        (fields,) = done[f"ap-batch-{int(lead) - 7000}"]
        if lead in to_chen:
            assert (
                fields["outcome"] == "failed" and "103 is not a valid owner id" in fields["reason"]
            )
            assert fake_hubspot.contacts[lead]["hubspot_owner_id"] == ""
        else:
            assert fields["outcome"] == "assigned"
            assert fake_hubspot.contacts[lead]["hubspot_owner_id"] == owner


def test_a_flusher_waits_instead_of_spinning_while_another_process_flushes(
    hubspot_app, fake_hubspot, store
):
    client = hubspot_app(hubspot={**BATCH, "batch": {"flush_every": "1s"}})
    services = services_of(client.application)
    attempts = Counter()
    real_lock = services.store.lock

    def counted_lock(name: str):
        attempts[name] += 1
        return real_lock(name)

    services.store.lock = counted_lock  # type: ignore[method-assign]
    # The other process's flush began long ago and still holds the lock (a long flush).
    with services.store.shared_value(LAST_FLUSH) as value:
        value.write(b"0")
    with real_lock(FLUSH_LOCK) as held:
        assert held
        flusher = flusher_of(client).start()
        time.sleep(1.0)
        flusher.close()
    # One look per 0.2 s at most, not one per loop of a thread with nothing else to do.
    assert 1 <= attempts[FLUSH_LOCK] <= 7


def test_executions_left_by_batch_mode_are_still_flushed_after_a_switch_to_output(
    hubspot_app, fake_hubspot, store, tmp_path, monkeypatch
):
    from dataclasses import replace

    from adapters.hubspot.check import check_warnings

    add_contacts(fake_hubspot, 2)
    batch = hubspot_app(hubspot=BATCH)
    for number in range(2):
        post_action(batch, execution(number))
    # The admin switches to output mode before the flusher ran; the store keeps the outbox.
    output = hubspot_app(hubspot={"write_owner": "output"})
    config = replace(
        services_of(output.application).config, store_url=f"sqlite:///{tmp_path}/store.sqlite"
    )
    assert any("2 HubSpot execution(s) decided in batch mode" in w for w in check_warnings(config))
    flusher = start_flusher(output.application)
    assert flusher is not None
    try:
        deadline = time.monotonic() + 5
        while store.outbox_size() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        flusher.close()
    assert set(completions(fake_hubspot)) == {"ap-batch-0", "ap-batch-1"}
    assert owner_writes(fake_hubspot) == Counter({"7000": 1, "7001": 1})
    assert not any("outbox" in w for w in check_warnings(config))
    # With nothing left over, output mode starts no flusher at all.
    assert start_flusher(hubspot_app(hubspot={"write_owner": "output"}).application) is None


def test_the_console_health_view_shows_the_outbox_waiting_in_batch_mode(
    hubspot_app, fake_hubspot, store, monkeypatch
):
    monkeypatch.setenv("LEADRELAY_OPS_TOKEN", "a-console-token-for-the-outbox")
    add_contacts(fake_hubspot, 3)
    client = hubspot_app(hubspot=BATCH)
    for number in range(3):
        post_action(client, execution(number))
    headers = {"Authorization": "Bearer a-console-token-for-the-outbox"}
    page = client.get("/ops/health", headers=headers).get_data(as_text=True)
    assert "HubSpot executions waiting in the outbox" in page
    stats = client.get("/api/stats", headers=headers).get_json()
    assert stats["health"]["hubspot_outbox"] == {"waiting": 3, "stopped": None}
    flusher_of(client).flush()
    stats = client.get("/api/stats", headers=headers).get_json()
    assert stats["health"]["hubspot_outbox"]["waiting"] == 0
