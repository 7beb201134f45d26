"""The store's files hold lead emails, names and decisions: only their owner may read them."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
from conftest import TUESDAY_10AM, lead

from adapters.hubspot.client import budget_limiter
from workflows.router import Router
from workflows.sqlite_checkpoint import WalCheckpointer
from workflows.sqlite_store import SqliteStore
from workflows.sweep_lock import sweep_lock


@pytest.fixture
def usual_umask() -> Iterator[None]:
    # The common default, which lets SQLite create a database anyone can read.
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def modes(directory: Path) -> dict[str, str]:
    return {
        str(path.relative_to(directory)): oct(stat.S_IMODE(path.stat().st_mode))
        for path in sorted(directory.rglob("*"))
    }


def test_every_file_the_store_creates_is_owner_only(tmp_path, make_config, usual_umask):
    data = tmp_path / "data"
    store = SqliteStore(data / "store.sqlite")
    config = make_config(store=f"sqlite:///{data}/store.sqlite")
    try:
        Router(config, store).route(lead("L1", email="ann@example.com"), TUESDAY_10AM)
        budget_limiter(config, "pat-na1-token", lambda: store).acquire(time.monotonic() + 5)
        assert WalCheckpointer(store.path, nullcontext).run_once()
        with sweep_lock(store) as held:
            assert held
        with store.shared_value("a-value") as value:
            value.write(b"{}")
        snapshot = store.snapshot()
        assert isinstance(snapshot, SqliteStore)
        snapshot_modes = modes(snapshot.path.parent)
        snapshot_dir = oct(stat.S_IMODE(snapshot.path.parent.stat().st_mode))
        snapshot.close()
        found = modes(data)
    finally:
        store.close()
    assert {"store.sqlite-wal", "store.sqlite-shm", "store.sqlite.checkpoint"} <= set(found)
    assert {"store.sqlite.lock", "store.sqlite.sweep.lock", "store.sqlite.a-value"} <= set(found)
    assert any(name.endswith(".budget") for name in found)
    assert found == dict.fromkeys(found, "0o600")
    assert oct(stat.S_IMODE(data.stat().st_mode)) == "0o700"
    assert "snapshot.sqlite" in snapshot_modes
    assert snapshot_modes == dict.fromkeys(snapshot_modes, "0o600")
    assert snapshot_dir == "0o700"
    assert not snapshot.path.exists()  # a closed snapshot is discarded


def test_an_existing_store_keeps_the_mode_its_operator_gave_it(tmp_path, make_config):
    path = tmp_path / "store.sqlite"
    SqliteStore(path).close()
    path.chmod(0o640)
    SqliteStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
