"""The ops console's test helpers: an app with the console on, a signed-in browser-like client,
the CSRF token a page carries."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from connector.app import create_app
from workflows.config import Config
from workflows.sqlite_store import SqliteStore

TOKEN = "ops-token-4f9c2a71d0b3e8"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
OPS_ENVS = (
    "LEADRELAY_OPS_TOKEN",
    "LEADRELAY_OPS_SECRET",
    "LEADRELAY_OPS_USER",
    "LEADRELAY_OPS_PASSWORD_HASH",
    "LEADRELAY_SANDBOX",
)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def ops_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The console on with ``TOKEN``, nothing else of the console's set."""
    for name in OPS_ENVS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEADRELAY_OPS_TOKEN", TOKEN)
    return monkeypatch


@pytest.fixture
def make_ops_app(
    ops_env: pytest.MonkeyPatch, make_config: Callable[..., Config], store: SqliteStore
) -> Iterator[Callable[..., Flask]]:
    """An app over the test store, reading the console's settings from the environment as
    it is when called (``config_data`` overrides build its app.yaml)."""

    def make(data: dict[str, Any] | None = None, **overrides: Any) -> Flask:
        return create_app(make_config(data, **overrides), store)

    yield make


@pytest.fixture
def ops_app(make_ops_app: Callable[..., Flask]) -> Flask:
    return make_ops_app()


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client: FlaskClient, **form: str) -> Any:
    """Sign in through the form as a browser does (``token=TOKEN`` unless told otherwise)."""
    page = client.get("/ops/sign-in")
    data = {"csrf_token": csrf_of(page.text), **(form or {"token": TOKEN})}
    return client.post("/ops/sign-in", data=data)


@pytest.fixture
def signed_in(ops_app: Flask) -> FlaskClient:
    client = ops_app.test_client()
    assert sign_in(client).status_code == 302
    return client
