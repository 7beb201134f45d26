"""`leadrelay serve` runs the app under gunicorn and answers /healthz once ready."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml
from conftest import config_data

from connector.app import create_app
from workflows.sqlite_store import SqliteStore


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_healthz_from_gunicorn_workers(tmp_path):
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(config_data(store="sqlite:///state.sqlite")))
    port = free_port()
    cli = Path(sys.executable).with_name("leadrelay")
    server = subprocess.Popen(
        [str(cli), "--config", str(config), "serve", "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        body = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    body = json.loads(r.read())
            except OSError:
                assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
                time.sleep(0.2)
        assert body is not None and body["status"] == "ok"
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode()
    assert "gunicorn" in output.lower()
    assert "Booting worker" in output


def test_healthz_needs_no_authentication(make_config, tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    try:
        client = create_app(make_config(), store).test_client()
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.get_json()["config_version"]
    finally:
        store.close()


def test_unknown_path_answers_json_404(make_config, tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    try:
        response = create_app(make_config(), store).test_client().get("/nope")
        assert response.status_code == 404
        assert "error" in response.get_json()
    finally:
        store.close()
