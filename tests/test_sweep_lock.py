"""Exactly one process sweeps: the store's sweep lock, and the schedulers in ``serve``.

(The lock itself, across threads and processes: tests/store_contract/.)"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from conftest import TUESDAY_10AM
from sweep_helpers import MemoryCrm, sla_config_data

import connector.sweep_cli as sweep_cli
from connector.app import create_app
from connector.serve import start_sweeper
from workflows.config_builder import build_config
from workflows.notify import Notifier
from workflows.router import Router
from workflows.sqlite_store import SqliteStore
from workflows.sweep_lock import sweep_lock


def test_locked_sweep_skips_while_another_sweep_runs(make_config, tmp_path):
    config = make_config(sla_config_data(), store=f"sqlite:///{tmp_path / 's.sqlite'}")
    store = SqliteStore(tmp_path / "s.sqlite")
    try:
        router = Router(config, store)
        with sweep_lock(store):
            skipped = sweep_cli.locked_sweep(
                router, {"hubspot": MemoryCrm()}, TUESDAY_10AM, Notifier.from_config(config)
            )
        assert skipped is None
        ran = sweep_cli.locked_sweep(
            router, {"hubspot": MemoryCrm()}, TUESDAY_10AM, Notifier.from_config(config)
        )
        assert ran is not None and ran.summary.total == 0
    finally:
        store.close()


def test_two_schedulers_on_one_store_only_one_sweeps(tmp_path, monkeypatch):
    data = sla_config_data()
    data["store"] = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    data["sla"]["sweep_every"] = "1h"  # one run each: the first, at start
    config = build_config(data, source=tmp_path / "app.yaml")
    sweeps: list[str] = []
    both_tried = threading.Barrier(2, timeout=5)  # neither returns before the other tried
    real_sweep = sweep_cli.run_sweep

    def slow_sweep(router, readers, now, **kwargs):
        sweeps.append(threading.current_thread().name)
        time.sleep(0.5)  # still sweeping while the other scheduler fires
        return real_sweep(router, readers, now, **kwargs)

    original_locked = sweep_cli.locked_sweep

    attempts: list[object] = []

    def counting_locked(*args, **kwargs):
        attempts.append(1)
        try:
            return original_locked(*args, **kwargs)
        finally:
            both_tried.wait()

    monkeypatch.setattr(sweep_cli, "run_sweep", slow_sweep)
    monkeypatch.setattr(sweep_cli, "locked_sweep", counting_locked)
    stores = [SqliteStore(tmp_path / "shared.sqlite") for _ in range(2)]
    apps = [create_app(config, store) for store in stores]
    schedulers = [start_sweeper(app) for app in apps]
    try:
        assert all(s is not None for s in schedulers)
        deadline = time.monotonic() + 5
        while both_tried.n_waiting < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(1.0)
        assert len(attempts) == 2  # both schedulers fired
        assert len(sweeps) == 1  # one swept, the other skipped
    finally:
        for scheduler in schedulers:
            assert scheduler is not None
            scheduler.shutdown(wait=True)
        for store in stores:
            store.close()


def test_no_scheduler_without_an_sla(make_config, store):
    config = make_config()
    assert start_sweeper(create_app(config, store)) is None


def test_scheduler_runs_every_sweep_every_one_at_a_time(tmp_path):
    data = sla_config_data(sweep_every="2m")
    data["store"] = f"sqlite:///{tmp_path / 'one.sqlite'}"
    config = build_config(data, source=tmp_path / "app.yaml")
    store = SqliteStore(tmp_path / "one.sqlite")
    scheduler = start_sweeper(create_app(config, store))
    try:
        assert scheduler is not None
        (job,) = scheduler.get_jobs()
        assert job.trigger.interval == timedelta(minutes=2)
        assert job.max_instances == 1 and job.coalesce is True
    finally:
        assert scheduler is not None
        scheduler.shutdown(wait=True)
        store.close()
