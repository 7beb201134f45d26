"""`leadrelay serve` runs the app under gunicorn and answers /healthz once ready."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import config_data
from served import free_port, serving

from connector.app import create_app
from connector.cli import main
from workflows.sqlite_store import SqliteStore


def test_serve_answers_healthz_from_gunicorn_workers(tmp_path):
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(config_data(store="sqlite:///state.sqlite")))
    with (
        serving(config, os.environ, workers=2) as served,
        urllib.request.urlopen(f"{served.base}/healthz", timeout=5) as answer,
    ):
        assert answer.status == 200
        assert json.loads(answer.read())["status"] == "ok"
    assert "gunicorn" in served.output.lower()
    assert "Booting worker" in served.output


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


def unusable_stores(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Stores root cannot use either: (store URL, what the message must say)."""
    (tmp_path / "a_file").write_text("")
    (tmp_path / "notes.sqlite").write_text("not a database")
    (tmp_path / "a_dir.sqlite").mkdir()
    return {
        "under a file": (
            "sqlite:///a_file/missing/x.sqlite",
            f"store: cannot use {tmp_path}/a_file/missing/x.sqlite: {tmp_path}/a_file is not a"
            " directory",
        ),
        "not sqlite": (
            "sqlite:///notes.sqlite",
            f"store: cannot use {tmp_path}/notes.sqlite: file is not a database",
        ),
        "a directory": (
            "sqlite:///a_dir.sqlite",
            f"store: cannot use {tmp_path}/a_dir.sqlite: it is a directory, not a database file",
        ),
    }


@pytest.mark.parametrize("case", ["under a file", "not sqlite", "a directory"])
def test_check_refuses_a_store_it_cannot_open_naming_store_and_path(tmp_path, case):
    url, message = unusable_stores(tmp_path)[case]
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(config_data(store=url)))
    result = CliRunner().invoke(main, ["--config", str(config), "check"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {message}"


def test_check_creates_a_new_store_in_a_missing_directory(tmp_path):
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(config_data(store="sqlite:///new/dir/state.sqlite")))
    result = CliRunner().invoke(main, ["--config", str(config), "check"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "dir" / "state.sqlite").is_file()


def test_serve_refuses_an_unusable_store_once_before_starting_gunicorn(tmp_path):
    url, message = unusable_stores(tmp_path)["under a file"]
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(config_data(store=url)))
    cli = Path(sys.executable).with_name("leadrelay")
    served = subprocess.run(
        [str(cli), "--config", str(config), "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 1
    assert served.stderr.strip() == f"error: {message}"
    assert served.stdout == ""
