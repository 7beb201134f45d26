"""``make run`` serves on ``PORT`` (default 8000): read from the recipe make would run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def serve_line(**env: str) -> str:
    """The ``leadrelay serve`` command ``make run`` would run (make -n runs nothing)."""
    environ = {k: v for k, v in os.environ.items() if k != "PORT"} | env
    shown = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "run"],
        capture_output=True,
        text=True,
        env=environ,
        check=True,
        timeout=30,
    ).stdout
    (line,) = [line for line in shown.splitlines() if " serve" in line]
    return line


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_serves_on_port_8000_unless_port_says_otherwise():
    assert serve_line().endswith("serve --port 8000")
    assert serve_line(PORT="8123").endswith("serve --port 8123")


def test_a_port_out_of_range_is_refused_naming_the_option(tmp_path):
    import yaml
    from click.testing import CliRunner
    from conftest import config_data

    from connector.cli import main

    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(config_data(store="sqlite:///s.sqlite")))
    result = CliRunner().invoke(main, ["--config", str(config), "serve", "--port", "70000"])
    assert result.exit_code == 2
    assert "Invalid value for '--port': 70000 is not in the range 0<=x<=65535" in result.output
