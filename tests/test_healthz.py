"""``GET /healthz``: cheap, no authentication, and it says which dependency is down (the
store: can it open a transaction in time?) without a secret, a path or a stack trace."""

from __future__ import annotations

import fcntl
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from conftest import config_data
from served import serving

from connector.app import create_app
from workflows.sqlite_store import SqliteStore


def get_health(base: str) -> tuple[int, dict[str, object], float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as answer:
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        status, body = refused.code, refused.read()
    return status, json.loads(body), time.monotonic() - started


def test_a_healthy_server_names_the_store_ok_and_its_config_version(make_config, tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    try:
        config = make_config()
        response = create_app(config, store).test_client().get("/healthz")
    finally:
        store.close()
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "store": "ok",
        "config_version": config.version,
    }


def test_a_store_that_fails_answers_503_naming_the_store_and_nothing_more(
    make_config, tmp_path, caplog
):
    store = SqliteStore(tmp_path / "s.sqlite")
    config = make_config()
    client = create_app(config, store).test_client()
    store.close()  # the store fails every transaction from now on
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["failed"] == ["store"]
    assert body["store"].startswith("the store failed (") and "see the server log" in body["store"]
    assert body["config_version"] == config.version
    text = response.get_data(as_text=True)
    assert str(tmp_path) not in text and "Traceback" not in text
    assert "health check: the store failed" in caplog.text  # the detail is in the log


def test_a_store_locked_by_a_stuck_process_answers_503_within_the_timeout(tmp_path):
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(config_data(store="sqlite:///state.sqlite")))
    with serving(config, os.environ, workers=2) as served:
        assert get_health(served.base)[0] == 200
        # Another process holds the routing lock and never lets go (until the test does).
        with open(Path(f"{tmp_path / 'state.sqlite'}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            status, body, took = get_health(served.base)
            assert status == 503 and body["failed"] == ["store"]
            assert body["store"] == "no transaction within 2 s"
            assert 1.5 < took < 5
            # Asked again while that check still waits: down at once, no second waiter.
            for _ in range(3):
                status, body, took = get_health(served.base)
                assert status == 503 and body["failed"] == ["store"] and took < 5
            fcntl.flock(lock, fcntl.LOCK_UN)
        deadline = time.monotonic() + 10
        while get_health(served.base)[0] != 200:
            assert time.monotonic() < deadline, "healthz did not recover once the lock was free"
            time.sleep(0.1)
