"""Shared fixtures: configs built from small dicts, a store in a temp dir, times in a zone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from workflows.config import Config
from workflows.config_builder import build_config
from workflows.model import Lead
from workflows.router import Router
from workflows.sqlite_store import SqliteStore

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent


def at(text: str, tz: str = "America/New_York") -> datetime:
    """An aware time: ``at("2026-11-24 10:00")`` is 10:00 in New York."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


# A Tuesday morning in New York, when every rep of the default team works.
TUESDAY_10AM = at("2026-11-24 10:00")


def rep(rep_id: str, **extra: Any) -> dict[str, Any]:
    """A rep spec as app.yaml holds it, working every hour unless told otherwise."""
    return {"id": rep_id, "hours": "always", "timezone": "America/New_York", **extra}


def config_data(**overrides: Any) -> dict[str, Any]:
    """A small valid app.yaml as data: three reps in one round-robin pool, fallback bob."""
    data: dict[str, Any] = {
        "timezone": "America/New_York",
        "reps": [rep("alice"), rep("bob"), rep("chen")],
        "pools": {"team": {"members": ["alice", "bob", "chen"], "strategy": "round_robin"}},
        "flow": [{"name": "everyone", "assign": {"pool": "team"}}],
        "fallback": {"rep": "bob"},
    }
    data.update(overrides)
    return data


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """Build a validated Config from ``config_data`` overrides (or a whole dict)."""

    def make(data: dict[str, Any] | None = None, **overrides: Any) -> Config:
        return build_config(data or config_data(**overrides), source=tmp_path / "app.yaml")

    return make


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "store.sqlite")
    yield opened
    opened.close()


@pytest.fixture
def make_router(make_config: Callable[..., Config], store: SqliteStore) -> Callable[..., Router]:
    """A Router over the test store, with a config from ``config_data`` overrides."""

    def make(data: dict[str, Any] | None = None, **overrides: Any) -> Router:
        return Router(make_config(data, **overrides), store)

    return make


def lead(lead_id: str = "L1", **fields: Any) -> Lead:
    """A lead with just the fields a test cares about."""
    return Lead(id=lead_id, **fields)


def owners(router: Router, count: int, when: datetime = TUESDAY_10AM, **fields: Any) -> list:
    """Route ``count`` fresh leads and return who got each (None when nobody)."""
    return [router.route(lead(f"L{i}", **fields), when).decision.rep_id for i in range(count)]
