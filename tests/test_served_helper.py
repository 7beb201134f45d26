"""The test helper that serves a real ``leadrelay serve`` keeps reading what it prints, so a
server that logs a lot never blocks on a full pipe."""

from __future__ import annotations

import os

import requests
import yaml
from conftest import config_data
from served import serving

# Each access-log line carries the request line, so a long query string makes a long line.
LONG_QUERY = "x" * 3000
REQUESTS = 60  # ~180 KB of access log: well past a pipe's 64 KB buffer


def test_a_server_that_logs_more_than_a_pipe_holds_keeps_answering(tmp_path):
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(config_data(store="sqlite:///state.sqlite")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADRELAY_")}
    with serving(config, env) as served, requests.Session() as http:
        for n in range(REQUESTS):
            answer = http.get(f"{served.base}/healthz?n={n}&pad={LONG_QUERY}", timeout=10)
            assert answer.status_code == 200, n
    assert served.output.count(LONG_QUERY) == REQUESTS
    assert f"n={REQUESTS - 1}&pad=" in served.output
