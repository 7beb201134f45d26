"""``GET /metrics``: Prometheus' text format, behind the ops token, right across gunicorn workers.

The server tests run a real ``leadrelay serve`` with two workers and read ``/metrics`` with
prometheus_client's own parser; the others drive one app in this process (default registry),
so they compare counts before and after.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import TUESDAY_10AM, lead
from fakes.hubspot_requests import (
    ACTION_PATH,
    PUBLIC_URL,
    SECRET,
    action_body,
    hubspot_app,
    hubspot_config_data,
    now_ms,
    post_action,
    sign_v3,
    with_properties,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from served import serving
from sweep_helpers import MemoryCrm, sla_config_data

from adapters.hubspot.limits import RateLimiter
from connector import metrics
from connector.app import create_app
from connector.cli import main
from connector.serve import start_sweeper
from connector.shared import services_of
from workflows.delivery import Inbound, deliver
from workflows.errors import CrmError
from workflows.sqlite_store import SqliteStore

hubspot_app = hubspot_app  # the fixture, requested by name below
OPS_TOKEN = "ops-t0ken-for-tests"


def total(name: str, **labels: str) -> float:
    """The sum of every sample ``name`` whose labels include ``labels``, across workers."""
    wanted = set(labels.items())
    return sum(v for key, v in metrics.current(name).items() if wanted <= key)


# -- a real server, two workers ---------------------------------------------------------------


def signed_execution(base: str, number: int) -> urllib.request.Request:
    """Contact ``number``'s workflow execution, signed as HubSpot signs it."""
    body = action_body(callbackId=f"ap-metrics-{number}")
    body["object"]["objectId"] = 5000 + number
    data = json.dumps(body).encode()
    stamp = now_ms()
    headers = {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": sign_v3(SECRET, "POST", PUBLIC_URL + ACTION_PATH, data, stamp),
        "X-HubSpot-Request-Timestamp": stamp,
        "Connection": "close",  # a new connection each time: either worker may take it
    }
    return urllib.request.Request(base + ACTION_PATH, data=data, headers=headers, method="POST")


def post(request: urllib.request.Request) -> int:
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
        return int(answer.status)


def scrape(base: str, token: str | None = OPS_TOKEN) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(base + "/metrics", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def samples(text: str, name: str) -> Iterator[tuple[dict[str, str], float]]:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                yield sample.labels, sample.value


@pytest.fixture
def served_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")}
    env.update(
        HUBSPOT_CLIENT_SECRET=SECRET,
        LEADRELAY_PUBLIC_URL=PUBLIC_URL,
        LEADRELAY_OPS_TOKEN=OPS_TOKEN,
        TMPDIR=str(tmp_path),  # where serve makes its private metrics directory
    )
    return env


def served_config(tmp_path: Path) -> Path:
    data = hubspot_config_data(store="sqlite:///state.sqlite")
    data["sla"] = {"first_touch": "15m", "clock": "wall", "sweep_every": "1h"}
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def per_worker(directory: Path, name: str) -> dict[str, float]:
    """The total of ``name`` of each worker that counted some, read from the worker's own file
    in the multiprocess directory."""
    found: dict[str, float] = {}
    for file in directory.glob("counter_*.db"):
        pid = file.stem.removeprefix("counter_")
        for family in MultiProcessCollector.merge([str(file)]):
            for sample in family.samples:
                if sample.name == name and sample.value:
                    found[pid] = found.get(pid, 0.0) + sample.value
    return found


def test_routed_leads_are_counted_once_across_both_gunicorn_workers(tmp_path, served_env):
    config = served_config(tmp_path)
    routed = 0
    with serving(config, served_env, workers=2) as served:
        (directory,) = tmp_path.glob("leadrelay-metrics-*")  # made by serve, read here
        # Batches of concurrent requests until both workers have routed some (the kernel
        # decides which worker accepts each connection; one may take a whole batch).
        with ThreadPoolExecutor(8) as pool:
            while len(per_worker(directory, "leadrelay_assignments_total")) < 2:
                assert routed < 240, "240 requests, and the directory lacks one worker's counts"
                batch = [signed_execution(served.base, routed + n) for n in range(12)]
                assert list(pool.map(post, batch)) == [200] * len(batch)
                routed += len(batch)
        # Several scrapes, whichever worker answers each: every one sees both workers' counts.
        for _ in range(6):
            status, text = scrape(served.base)
            assert status == 200
            assigned = {
                labels["rep"]: value
                for labels, value in samples(text, "leadrelay_assignments_total")
            }
            assert set(assigned) == {"alice", "bob", "chen"}  # round robin over the team
            assert assigned["alice"] == assigned["bob"] == assigned["chen"] == routed / 3
            latencies = list(samples(text, "leadrelay_decision_seconds_count"))
            assert sum(value for _, value in latencies) == routed
            assert {labels["source"] for labels, _ in latencies} == {"hubspot"}
        counted_by = per_worker(directory, "leadrelay_assignments_total")
    assert sum(counted_by.values()) == routed
    assert all(count > 0 for count in counted_by.values())


def test_metrics_refuse_a_missing_or_wrong_token(tmp_path, served_env):
    with serving(served_config(tmp_path), served_env, workers=2) as served:
        assert scrape(served.base, token=None)[0] == 401
        status, text = scrape(served.base, token="not-the-token")
        assert status == 401 and "leadrelay_" not in text
        assert scrape(served.base)[0] == 200


def test_a_scheduled_sweep_leaves_a_line_in_the_server_log_and_records_sweep_last(
    tmp_path, served_env
):
    before = datetime.now(UTC)
    with serving(served_config(tmp_path), served_env, workers=2) as served:
        deadline = time.monotonic() + 10
        text = ""
        while time.monotonic() < deadline:
            text = scrape(served.base)[1]
            if sum(v for _, v in samples(text, "leadrelay_sweeps_total")) >= 2:
                break  # both workers' first runs are done: one swept, one skipped (or swept)
            time.sleep(0.2)
        swept = {labels["result"]: v for labels, v in samples(text, "leadrelay_sweeps_total")}
        assert swept.get("swept", 0) >= 1
        assert sum(v for _, v in samples(text, "leadrelay_sweep_seconds_count")) == swept["swept"]
    assert "SLA sweep: 0 due assignments: nothing to do in " in served.output
    store = SqliteStore(tmp_path / "state.sqlite")
    try:
        with store.shared_value("sweep:last") as value:
            last = json.loads(value.read())
    finally:
        store.close()
    assert set(last) == {"started_at", "seconds", "counts", "by"}
    assert datetime.fromisoformat(last["started_at"]) >= before
    assert 0 <= last["seconds"] < 10 and last["counts"] == {}
    assert last["by"].startswith("pid ") and last["by"][4:].isdigit()


def test_serve_makes_and_removes_a_private_metrics_directory(tmp_path, served_env):
    with serving(served_config(tmp_path), served_env, workers=2) as served:
        (made,) = tmp_path.glob("leadrelay-metrics-*")
        assert made.stat().st_mode & 0o777 == 0o700
        assert scrape(served.base)[0] == 200
    assert not made.exists()


def test_an_operators_metrics_directory_is_emptied_at_start(tmp_path, served_env):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_99999.db").write_bytes(b"left from an earlier run")
    env = {**served_env, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    with serving(served_config(tmp_path), env, workers=2) as served:
        assert not (directory / "counter_99999.db").exists()
        assert post(signed_execution(served.base, 1)) == 200
        status, text = scrape(served.base)
        assert status == 200
        assert sum(v for _, v in samples(text, "leadrelay_assignments_total")) == 1
        assert per_worker(directory, "leadrelay_assignments_total")  # counted in its files
    assert not list(tmp_path.glob("leadrelay-metrics-*"))  # no private one beside it
    assert directory.is_dir()  # the operator's directory stays


# -- one app in this process --------------------------------------------------------------------


def test_without_a_token_set_metrics_are_off_and_say_so(hubspot_app, monkeypatch):
    monkeypatch.delenv("LEADRELAY_OPS_TOKEN", raising=False)
    response = hubspot_app().get("/metrics")
    assert response.status_code == 404
    assert "LEADRELAY_OPS_TOKEN" in response.get_json()["error"]


def test_one_process_answers_from_the_default_registry(hubspot_app, monkeypatch):
    monkeypatch.setenv("LEADRELAY_OPS_TOKEN", OPS_TOKEN)
    client = hubspot_app()
    rule = {"rule": "everyone", "crm": "hubspot", "source": "hubspot", "outcome": "assigned"}
    before = total("leadrelay_assignments_total", **rule)
    assert post_action(client, action_body(callbackId="ap-one-process-1")).status_code == 200
    response = client.get("/metrics", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    counted = sum(
        value
        for labels, value in samples(response.get_data(as_text=True), "leadrelay_assignments_total")
        if rule.items() <= labels.items()
    )
    assert counted == before + 1


def test_a_crm_retry_and_a_dry_run_are_not_counted_as_assignments(hubspot_app):
    client = hubspot_app()
    before = total("leadrelay_assignments_total", source="hubspot")
    latency_before = total("leadrelay_decision_seconds_count", source="hubspot")
    body = with_properties(action_body(callbackId="ap-retried-1"), numemployees="5000")
    for _ in range(3):  # HubSpot retrying one execution
        assert post_action(client, body).status_code == 200
    router = services_of(client.application).router
    router.route(lead("dry-1"), TUESDAY_10AM, source="hubspot", dry_run=True)
    assert total("leadrelay_assignments_total", source="hubspot") == before + 1
    assert total("leadrelay_decision_seconds_count", source="hubspot") == latency_before + 1
    assert total("leadrelay_assignments_total", rule="enterprise", rep="chen") >= 1


def test_write_back_errors_are_counted_by_crm(hubspot_app):
    client = hubspot_app()
    router = services_of(client.application).router
    before = total("leadrelay_writeback_errors_total", crm="hubspot")

    def refuse(batch: Any) -> dict[str, CrmError | None]:
        return {item.id: CrmError("HubSpot answered 503", retryable=True) for item, _ in batch}

    def accept(batch: Any) -> dict[str, CrmError | None]:
        return {item.id: None for item, _ in batch}

    contact = lead("wb-1", crm="hubspot", owner="")
    inbound = [Inbound(contact, "wb-key-1")]
    deliver(router, inbound, TUESDAY_10AM, source="hubspot", write=refuse)
    deliver(router, inbound, TUESDAY_10AM, source="hubspot", write=refuse)  # the CRM's retry
    deliver(router, inbound, TUESDAY_10AM, source="hubspot", write=accept)  # written at last
    assert total("leadrelay_writeback_errors_total", crm="hubspot") == before + 2


def test_notifier_deliveries_are_counted_by_result(hubspot_app, monkeypatch):
    from fakes.webhooks import WebhookReceiver

    receiver = WebhookReceiver()
    try:
        receiver.answer(503)  # the first attempt fails, the retry is sent
        client = hubspot_app(notify=[{"url": receiver.url}])
        notifier = services_of(client.application).notifier
        notifier.backoff = 0.01
        before = {r: total("leadrelay_notifier_deliveries_total", result=r) for r in RESULTS}
        assert post_action(client, action_body(callbackId="ap-notified-1")).status_code == 200
        notifier.close(5)
    finally:
        receiver.stop()
    after = {r: total("leadrelay_notifier_deliveries_total", result=r) for r in RESULTS}
    assert {r: after[r] - before[r] for r in RESULTS} == {"sent": 1, "retried": 1, "failed": 0}
    assert notifier.stats["sent"] == 1 and notifier.stats["retried"] == 1


RESULTS = ("sent", "retried", "failed")


def test_hubspot_budget_waits_are_counted_with_their_seconds():
    slept: list[float] = []
    clock = [100.0]
    limiter = RateLimiter(per_second=2.0, burst=1, clock=lambda: clock[0], sleep=slept.append)
    waits = total("leadrelay_crm_budget_waits_total", crm="hubspot")
    seconds = total("leadrelay_crm_budget_wait_seconds_total", crm="hubspot")
    limiter.acquire(deadline=200.0)  # the one token in the bucket: no wait
    limiter.acquire(deadline=200.0)  # waits half a second for the next
    assert slept == [0.5]
    assert total("leadrelay_crm_budget_waits_total", crm="hubspot") == waits + 1
    assert total("leadrelay_crm_budget_wait_seconds_total", crm="hubspot") == seconds + 0.5


def test_a_hubspot_429_is_counted(monkeypatch):
    from hubspot.crm.contacts import ApiException

    from adapters.hubspot.limits import RetryPolicy, call

    def refused(timeout: Any) -> None:
        error = ApiException(status=429, reason="Too Many Requests")
        error.headers = {"Retry-After": "0"}
        error.body = json.dumps({"message": "You have reached your secondly limit."})
        raise error

    before = total("leadrelay_crm_rate_limited_total", crm="hubspot")
    with pytest.raises(CrmError):
        call(
            refused,
            "reading a contact",
            limiter=RateLimiter(burst=10, sleep=lambda s: None),
            deadline=time.monotonic() + 5,
            policy=RetryPolicy(attempts=2, first_backoff=0.0),
            sleep=lambda s: None,
        )
    assert total("leadrelay_crm_rate_limited_total", crm="hubspot") == before + 2


def test_a_salesforce_request_limit_is_counted():
    from simple_salesforce.exceptions import SalesforceGeneralError

    from adapters.salesforce.errors import crm_error

    before = total("leadrelay_crm_rate_limited_total", crm="salesforce")
    content = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]
    error = crm_error(SalesforceGeneralError("url", 403, "Lead", content), "updating lead 1")
    assert error.retryable
    assert total("leadrelay_crm_rate_limited_total", crm="salesforce") == before + 1


def test_a_scheduled_sweep_counts_breaches_and_logs_its_line(make_config, tmp_path, caplog):
    data = sla_config_data(sweep_every="1h")
    data["store"] = f"sqlite:///{tmp_path / 'sweep.sqlite'}"
    config = make_config(data)
    store = SqliteStore(tmp_path / "sweep.sqlite")
    crm = MemoryCrm()
    try:
        app = create_app(config, store)
        services = services_of(app)
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        for number in range(3):  # three leads past their 15-minute first touch
            routed = services.router.route(lead(f"due-{number}", crm="hubspot"), an_hour_ago)
            owner = routed.decision.owner_crm_id
            assert owner is not None
            crm.add(f"due-{number}", owner)
        services.readers = lambda: {"hubspot": crm}  # type: ignore[method-assign]
        rotated = total("leadrelay_sla_breaches_total", action="rotated")
        swept = total("leadrelay_sweeps_total", result="swept")
        with caplog.at_level(logging.INFO, logger="leadrelay.serve"):
            scheduler = start_sweeper(app)
            assert scheduler is not None
            try:
                deadline = time.monotonic() + 10
                while total("leadrelay_sweeps_total", result="swept") == swept:
                    assert time.monotonic() < deadline, "the scheduled sweep did not run"
                    time.sleep(0.05)
            finally:
                scheduler.shutdown(wait=True)
    finally:
        store.close()
    assert total("leadrelay_sla_breaches_total", action="rotated") == rotated + 3
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("SLA sweep")]
    assert line.startswith("SLA sweep: 3 due assignments: 3 rotated in ")
    assert line.endswith(" s")


def test_a_cli_sweep_records_sweep_last_and_a_dry_run_does_not(tmp_path):
    data = sla_config_data()
    data["store"] = "sqlite:///cli.sqlite"
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    dry = runner.invoke(main, ["--config", str(config), "sweep", "--once", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    store = SqliteStore(tmp_path / "cli.sqlite")
    try:
        assert store.shared_names("sweep:") == []
    finally:
        store.close()
    ran = runner.invoke(main, ["--config", str(config), "sweep", "--once"])
    assert ran.exit_code == 0, ran.output
    store = SqliteStore(tmp_path / "cli.sqlite")
    try:
        with store.shared_value("sweep:last") as value:
            last = json.loads(value.read())
    finally:
        store.close()
    assert last["counts"] == {} and last["by"] == f"pid {os.getpid()}"


def test_serve_refuses_a_metrics_directory_it_cannot_use_in_one_line(tmp_path, served_env):
    import subprocess
    import sys

    from served import free_port

    not_a_dir = tmp_path / "a_file"
    not_a_dir.write_text("")
    env = {**served_env, "PROMETHEUS_MULTIPROC_DIR": str(not_a_dir / "metrics")}
    cli = Path(sys.executable).with_name("leadrelay")
    config = served_config(tmp_path)
    served = subprocess.run(
        [str(cli), "--config", str(config), "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert served.returncode == 1
    assert served.stderr.strip() == (
        f"error: PROMETHEUS_MULTIPROC_DIR: cannot use {not_a_dir}/metrics: Not a directory"
    )


def test_only_prometheus_value_files_are_emptied_from_the_operators_directory(tmp_path):
    directory = tmp_path / "shared"
    directory.mkdir()
    for name in ("counter_1.db", "histogram_2.db", "gauge_livesum_3.db", "keep.db", "notes"):
        (directory / name).write_text("x")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    try:
        assert metrics.use_multiprocess_dir(env) is None
    finally:
        from prometheus_client import values

        values.ValueClass = values.get_value_class()  # this test process stays single-process
    assert sorted(p.name for p in directory.iterdir()) == ["keep.db", "notes"]


def test_a_scrape_while_a_worker_creates_its_value_file_still_answers(tmp_path, monkeypatch):
    # A worker creates its value file empty and sizes it a moment later; a scrape that lands
    # in between used to fail whole (struct.error from prometheus_client: a 500).
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "counter_4242.db").touch()
    assert metrics.current("leadrelay_assignments_total") == {}
