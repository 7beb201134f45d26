"""The embedded store: exact under threads and processes, durable, append-only, idempotent."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import TUESDAY_10AM, config_data, lead, owners, rep

from workflows.config_builder import build_config
from workflows.errors import StoreError
from workflows.router import Router
from workflows.sqlite_store import SqliteStore
from workflows.store import LogQuery

TEAM = [f"rep{i}" for i in range(7)]


def team_config(tmp_path: Path):
    return build_config(
        config_data(
            reps=[rep(r) for r in TEAM],
            pools={"team": {"members": TEAM, "strategy": "round_robin"}},
            fallback={"rep": "rep0"},
        ),
        source=tmp_path / "app.yaml",
    )


def assign_many(db_path: str, config_dir: str, prefix: str, count: int) -> None:
    """Worker: open the store in this process and route ``count`` leads."""
    store = SqliteStore(Path(db_path))
    router = Router(team_config(Path(config_dir)), store)
    for i in range(count):
        router.route(lead(f"{prefix}-{i}"), TUESDAY_10AM, idempotency_key=f"{prefix}-{i}")
    store.close()


def assert_exact_rotation(store: SqliteStore, total: int) -> None:
    records = list(store.log())
    assert len(records) == total
    assert sorted(r.id for r in records) == list(range(1, total + 1))
    counts = Counter(r.new_owner for r in records)
    assert set(counts) == set(TEAM)
    assert max(counts.values()) - min(counts.values()) <= 1


def test_eight_threads_share_one_round_robin_pool_exactly(tmp_path, store):
    router = Router(team_config(tmp_path), store)

    def work(prefix: str) -> None:
        for i in range(250):
            router.route(lead(f"{prefix}-{i}"), TUESDAY_10AM, idempotency_key=f"{prefix}-{i}")

    threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert_exact_rotation(store, 2000)


def test_four_processes_share_one_round_robin_pool_exactly(tmp_path):
    db_path = tmp_path / "shared.sqlite"
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=assign_many, args=(str(db_path), str(tmp_path), f"p{n}", 500))
        for n in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    store = SqliteStore(db_path)
    try:
        assert_exact_rotation(store, 2000)
    finally:
        store.close()


def open_and_assign(db_path: str, config_dir: str, name: str, start) -> None:
    """Worker: wait for the start signal, then open a store nobody created yet and route once."""
    start.wait()
    store = SqliteStore(Path(db_path))
    Router(team_config(Path(config_dir)), store).route(lead(name), TUESDAY_10AM)
    store.close()


def test_workers_booting_at_once_all_open_a_new_store(tmp_path):
    # gunicorn forks its workers together; each opens the same, not yet existing, file.
    db_path = tmp_path / "fresh.sqlite"
    ctx = multiprocessing.get_context("fork")
    for attempt in range(10):
        start = ctx.Event()
        workers = [
            ctx.Process(target=open_and_assign, args=(f"{db_path}{attempt}", str(tmp_path),
                                                      f"w{n}", start))
            for n in range(8)
        ]  # fmt: skip
        for worker in workers:
            worker.start()
        start.set()
        for worker in workers:
            worker.join(timeout=60)
        assert [worker.exitcode for worker in workers] == [0] * 8
        store = SqliteStore(Path(f"{db_path}{attempt}"))
        try:
            assert len(list(store.log())) == 8
        finally:
            store.close()


def test_assignment_survives_reopening_the_store(tmp_path, make_config):
    path = tmp_path / "durable.sqlite"
    first = SqliteStore(path)
    Router(make_config(), first).route(lead("L1"), TUESDAY_10AM)
    first.close()
    reopened = SqliteStore(path)
    try:
        router = Router(make_config(), reopened)
        assert [r.new_owner for r in reopened.log()] == ["alice"]
        assert owners(router, 1) == ["bob"]  # the rotation carried on where it stopped
    finally:
        reopened.close()


def test_same_idempotency_key_returns_the_first_decision_and_advances_nothing(make_router, store):
    router = make_router()
    first = router.route(lead("L1"), TUESDAY_10AM, idempotency_key="cb-1")
    again = router.route(lead("L1"), TUESDAY_10AM, idempotency_key="cb-1")
    assert again.replayed and not first.replayed
    assert again.decision == first.decision
    assert again.record is not None and first.record is not None
    assert again.record.id == first.record.id
    assert owners(router, 1) == ["bob"]
    assert len(list(store.log())) == 2


def test_dry_run_writes_nothing(make_router, store):
    router = make_router()
    decision = router.route(lead("L1"), TUESDAY_10AM, dry_run=True).decision
    assert decision.rep_id == "alice"
    assert list(store.log()) == []
    assert owners(router, 1) == ["alice"]


def test_log_records_every_field_ops_reviews(make_router, store):
    router = make_router(
        reps=[rep(r, hubspot_owner_id=str(100 + i)) for i, r in enumerate(["alice", "bob", "chen"])]
    )
    router.route(
        lead("L1", crm="hubspot", email="Pat@Example.com", owner="999"),
        TUESDAY_10AM,
        source="hubspot",
        idempotency_key="cb-9",
    )
    (record,) = store.log()
    assert record.id == 1
    assert record.decided_at == TUESDAY_10AM
    assert (record.crm, record.lead_id, record.source) == ("hubspot", "L1", "hubspot")
    assert (record.previous_owner, record.new_owner) == ("999", "alice")
    assert record.decision.owner_crm_id == "100"
    assert record.decision.rule == "everyone"
    assert record.decision.strategy == "round_robin"
    assert record.idempotency_key == "cb-9"
    assert record.lead_domain == "example.com"
    assert record.config_version == router.config.version


def test_log_filters_by_rep_lead_and_time(make_router, store):
    router = make_router()
    for i in range(6):
        router.route(lead(f"L{i}"), TUESDAY_10AM.replace(hour=9 + i))
    assert [r.lead_id for r in store.log(LogQuery(rep="bob"))] == ["L1", "L4"]
    assert [r.new_owner for r in store.log(LogQuery(lead="L2"))] == ["chen"]
    since = TUESDAY_10AM.replace(hour=13)
    assert [r.lead_id for r in store.log(LogQuery(since=since))] == ["L4", "L5"]


def test_log_streams_past_one_page(make_router, store):
    router = make_router()
    for i in range(1203):
        router.route(lead(f"L{i}"), TUESDAY_10AM)
    ids = [r.id for r in store.log()]
    assert ids == list(range(1, 1204))


def test_scratch_copy_leaves_the_live_store_untouched(tmp_path, make_router, store):
    router = make_router()
    owners(router, 2)
    scratch = store.copy_to(tmp_path / "scratch.sqlite")
    try:
        assert owners(Router(router.config, scratch), 3) == ["chen", "alice", "bob"]
    finally:
        scratch.close()
    assert len(list(store.log())) == 2
    assert owners(router, 1) == ["chen"]


def test_writeback_status_is_kept_beside_the_log_row(make_router, store):
    record = make_router().route(lead(), TUESDAY_10AM).record
    assert record is not None
    assert store.writeback(record.id)["status"] == "not_needed"
    store.set_writebacks({record.id: ("failed", "HubSpot answered 503")})
    store.set_writebacks({record.id: ("written", "")})
    status = store.writeback(record.id)
    assert status is not None
    assert (status["status"], status["attempts"]) == ("written", 2)
    assert [r.id for r in store.log()] == [record.id]


def test_a_commit_the_database_refuses_raises_and_the_store_stays_usable(make_router, store):
    router = make_router()
    owners(router, 1)
    # A trigger that makes SQLite refuse the next write stands in for a full disk.
    store._conn.execute(
        """CREATE TRIGGER refuse BEFORE INSERT ON "leadrelay" WHEN NEW.key LIKE 'log:%'
        BEGIN SELECT RAISE(ABORT, 'disk full'); END"""
    )
    with pytest.raises(StoreError, match="disk full"):
        router.route(lead("L-refused"), TUESDAY_10AM)
    store._conn.execute("DROP TRIGGER refuse")
    assert owners(router, 1) == ["bob"]  # nothing of the refused decision was kept
    assert [r.lead_id for r in store.log()] == ["L0", "L0"]


def _wait_until(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("first_checkpoint_fails", [False, True])
def test_wal_is_copied_back_and_restarted_while_decisions_go_on(
    tmp_path, monkeypatch, first_checkpoint_fails
):
    # SQLite's own checkpoint waits for a WAL far bigger than this test writes; the background
    # one must keep the file from growing, and carry on after one of its rounds failed.
    from workflows.sqlite_checkpoint import WalCheckpointer

    monkeypatch.setattr("workflows.sqlite_checkpoint.WAL_ROWS", 200)
    monkeypatch.setattr("workflows.sqlite_checkpoint.INTERVAL_SECONDS", 0.02)
    real, attempts, completed = WalCheckpointer.run_once, [], []

    def counted(self):
        attempts.append(1)
        if first_checkpoint_fails and len(attempts) == 1:
            raise sqlite3.DatabaseError("disk I/O error")
        done = real(self)
        completed.append(done)
        return done

    monkeypatch.setattr(WalCheckpointer, "run_once", counted)
    path = tmp_path / "busy.sqlite"
    store = SqliteStore(path)
    router = Router(team_config(tmp_path), store)
    wal = Path(f"{path}-wal")
    sizes = []
    try:
        for chunk in range(6):
            for i in range(chunk * 100, chunk * 100 + 100):
                router.route(lead(f"L{i}"), TUESDAY_10AM, idempotency_key=f"k{i}")
            rounds = completed.count(True)
            _wait_until(lambda rounds=rounds: completed.count(True) > rounds)
            sizes.append(wal.stat().st_size)
        copied_back = path.stat().st_size
    finally:
        store.close()
    # Without checkpoints the WAL would hold all 600 decisions (~600 x 10 pages of 4 KiB);
    # restarted after each complete checkpoint, it never holds much more than one chunk.
    assert max(sizes) < 600 * 10 * 4096 / 3
    assert copied_back > 64 * 1024  # decisions reached the database file while it was open
    reopened = SqliteStore(path)
    try:
        assert len(list(reopened.log())) == 600
    finally:
        reopened.close()
