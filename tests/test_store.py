"""The embedded SQLite store, beyond the store contract (tests/test_store_contract.py): its
on-disk rows, its files, booting workers, refused commits and WAL checkpoints."""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import FIXTURES, TUESDAY_10AM, lead, owners
from sqlitedict import SqliteDict
from sweep_helpers import sla_config_data
from test_store_contract import (
    CONSOLE_QUERIES,
    console_config_data,
    every_page,
    fill_console_log,
    newest_first,
    team_config,
)

from workflows import sqlite_queries, sqlite_transaction
from workflows.config_builder import build_config
from workflows.errors import StoreError
from workflows.model import Lead
from workflows.router import Router, RouteRequest
from workflows.sqlite_store import SqliteStore
from workflows.store import AssignmentQuery
from workflows.store_registry import open_snapshot


def rows(path: Path) -> dict[str, object]:
    """Every row of the store as JSON, the wall-clock times of write-backs masked."""
    found: dict[str, object] = {}
    with sqlite3.connect(path) as conn:
        for key, value in conn.execute("SELECT key, value FROM leadrelay ORDER BY key"):
            data = json.loads(value)
            if key.startswith("wb:"):
                data.update({k: "<wall clock>" for k in ("at", "claimed_until") if k in data})
            found[key] = data
    return found


def write_v1_scenario(path: Path, tmp_path: Path) -> None:
    """Route, write back and settle the scenario of tests/fixtures/store_rows_v1.json."""
    store = SqliteStore(path)
    router = Router(build_config(sla_config_data(), source=tmp_path / "app.yaml"), store)
    t = TUESDAY_10AM
    router.route(Lead(id="A", crm="hubspot", email="Pat@Acme.io", owner="999"), t,
                 source="hubspot", idempotency_key="cb-1")  # fmt: skip
    (b,) = router.route_many(
        [RouteRequest(Lead(id="B", crm="hubspot", email="kim@beta.io", domain="beta.io"), t,
                      source="hubspot", idempotency_key="n-1", aliases=("n-2",),
                      writes_back=True)]
    )  # fmt: skip
    router.route(Lead(id="A", crm="hubspot"), t + timedelta(minutes=1), source="sweep",
                 idempotency_key="sweep:1")  # fmt: skip
    router.route(Lead(id="A", crm="hubspot"), t + timedelta(minutes=2), source="hubspot")
    router.route(Lead(id="C", crm="hubspot"), t, dry_run=True)
    router.route(Lead(id="D\ud800", crm="hubspot", email="X@Ünï.io"), t,
                 idempotency_key="k\ud800")  # fmt: skip
    assert b.record is not None
    store.set_writebacks({b.record.id: ("failed", "503")}, t, final={b.record.id})
    store.settle(
        {1: {"status": "settled", "outcome": "contacted", "settled_at": t.isoformat(),
             "ttft_s": 60},
         3: {"due_key": "2026-11-24T16:00:00.000000"}}
    )  # fmt: skip
    store.close()


def test_the_rows_on_disk_are_those_leadrelay_wrote_before_the_ledger(tmp_path):
    # tests/fixtures/store_rows_v1.json: this scenario's rows as written by the store before
    # its rules moved to workflows/ledger.py. Same keys, same JSON: old stores keep working.
    path = tmp_path / "store.sqlite"
    write_v1_scenario(path, tmp_path)
    assert rows(path) == json.loads((FIXTURES / "store_rows_v1.json").read_text())


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
                                                      f"w{n}", start), daemon=True)
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


def test_the_sweep_lock_is_a_file_beside_the_database(tmp_path):
    store = SqliteStore(tmp_path / "state.sqlite")
    try:
        with store.lock("sweep") as held:
            assert held
            assert (tmp_path / "state.sqlite.sweep.lock").exists()
    finally:
        store.close()


def test_a_snapshot_of_a_store_not_created_yet_creates_nothing(tmp_path):
    scratch = open_snapshot(f"sqlite:///{tmp_path}/not/yet/state.sqlite")
    try:
        assert list(scratch.log()) == []
    finally:
        scratch.close()
    assert list(tmp_path.iterdir()) == []


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


# The console's table (the log's projection): built for files made before it, kept whole
# when an older leadrelay writes the same file.


def write_v1_rows(path: Path) -> None:
    """A store file as leadrelay wrote it before the projection: sqlitedict's table holding
    tests/fixtures/store_rows_v1.json, nothing else."""
    SqliteDict(str(path), tablename="leadrelay", journal_mode="WAL").close()  # its table
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO leadrelay (key, value) VALUES (?, ?)",
            [(k, json.dumps(v)) for k, v in
             json.loads((FIXTURES / "store_rows_v1.json").read_text()).items()],
        )  # fmt: skip
    with sqlite3.connect(path) as conn:
        tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"leadrelay"}


V1_QUERIES = [
    AssignmentQuery(),
    AssignmentQuery(rep="alice"),
    AssignmentQuery(rule="everyone"),
    AssignmentQuery(source="sweep"),
    AssignmentQuery(since=TUESDAY_10AM + timedelta(minutes=1)),
]


def answers(store: SqliteStore) -> list[object]:
    masked = []  # the write-back times are the wall clock's: the same scenario differs there
    for query in V1_QUERIES:
        for record in store.assignments(query):
            masked.append(record.to_dict())
        masked.append([dataclasses.replace(f, writeback_status=None)
                       for f in store.facts(query)])  # fmt: skip
    masked.append([store.writeback(i) and store.writeback(i)["status"] for i in range(1, 7)])
    return masked


def test_a_store_file_made_before_the_console_table_gets_it_on_open_with_the_same_answers(
    tmp_path, caplog
):
    old, new = tmp_path / "old.sqlite", tmp_path / "new.sqlite"
    write_v1_rows(old)
    write_v1_scenario(new, tmp_path)
    with caplog.at_level(logging.INFO, logger="leadrelay.store"):
        upgraded = SqliteStore(old)
    fresh = SqliteStore(new)
    try:
        assert "building the assignment index: 5 records" in caplog.text
        assert [r.id for r in upgraded.assignments(AssignmentQuery())] == [5, 4, 3, 2, 1]
        assert answers(upgraded) == answers(fresh)
        (facts,) = [f for f in upgraded.facts(AssignmentQuery()) if f.id == 1]
        assert (facts.sla_status, facts.sla_outcome, facts.ttft_s) == ("settled", "contacted", 60)
    finally:
        upgraded.close()
        fresh.close()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="leadrelay.store"):
        SqliteStore(old).close()
    assert "building" not in caplog.text  # once


def open_and_page(db_path: str, start, answers) -> None:
    """Worker: wait for the start signal, open the store, answer its first page's ids."""
    start.wait()
    store = SqliteStore(Path(db_path))
    answers.put([r.id for r in store.assignments(AssignmentQuery())])
    store.close()


def test_processes_opening_an_old_file_at_once_build_its_table_once(tmp_path):
    path = tmp_path / "old.sqlite"
    write_v1_rows(path)
    ctx = multiprocessing.get_context("fork")
    start, found = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=open_and_page, args=(str(path), start, found), daemon=True)
               for _ in range(4)]  # fmt: skip
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0] * 4
    assert [found.get(timeout=5) for _ in workers] == [[5, 4, 3, 2, 1]] * 4
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM assignments").fetchone() == (5,)


def as_older_leadrelay(patched: pytest.MonkeyPatch) -> None:
    """Commits as leadrelay did before the console's table: key-value rows alone."""
    patched.setattr(sqlite_transaction, "START_PROJECTING", "SELECT 1")
    patched.setattr(sqlite_transaction, "project_commit", lambda *args: None)


def test_what_an_older_leadrelay_writes_meanwhile_reaches_the_console_table(tmp_path, monkeypatch):
    # A rolling restart: this process has the table; an older one, writing the same file,
    # knows nothing of it (here: the same store with its projection steps taken out).
    config = build_config(sla_config_data(), source=tmp_path / "app.yaml")
    path = tmp_path / "store.sqlite"
    current, older = SqliteStore(path), SqliteStore(path)
    try:
        Router(config, current).route(Lead(id="A", crm="hubspot"), TUESDAY_10AM)
        with monkeypatch.context() as patched:
            as_older_leadrelay(patched)
            Router(config, older).route(Lead(id="B", crm="hubspot"), TUESDAY_10AM)
            older.settle({1: {"status": "settled", "outcome": "contacted", "ttft_s": 30}})
            older.set_writebacks({2: ("failed", "503")}, TUESDAY_10AM)
        with sqlite3.connect(path) as conn:  # not projected yet: noted as stale
            assert conn.execute("SELECT count(*) FROM assignments").fetchone() == (1,)
        found = [(f.id, f.sla_status, f.writeback_status) for f in
                 current.facts(AssignmentQuery())]  # fmt: skip
        assert found == [(1, "settled", "not_needed"), (2, "open", "failed")]
        with monkeypatch.context() as patched:
            as_older_leadrelay(patched)
            older.settle({2: {"status": "settled", "outcome": "rotated"}})
        Router(config, current).route(Lead(id="C", crm="hubspot"), TUESDAY_10AM)  # a commit
        with sqlite3.connect(path) as conn:  # caught up by that commit, before any read
            projected = conn.execute("SELECT id, sla_status FROM assignments ORDER BY id")
            assert projected.fetchall() == [(1, "settled"), (2, "settled"), (3, "open")]
            assert conn.execute("SELECT count(*) FROM assignments_stale").fetchone() == (0,)
    finally:
        current.close()
        older.close()


@pytest.mark.parametrize("probe", [1, 3, 1000])
def test_answers_stay_the_same_whichever_index_a_page_reads(make_router, monkeypatch, probe):
    # How many rows a probe counts decides which index a page reads (a range read and
    # sorted, an equality's index, the table in id order); the answer must not change.
    monkeypatch.setattr(sqlite_queries, "_PROBE", probe)
    router = make_router(console_config_data())
    fill_console_log(router, 48)
    for query in CONSOLE_QUERIES:
        expected = newest_first(router.store, query)
        assert every_page(router.store, query, limit=4) == expected
        assert [f.id for f in router.store.facts(query)] == expected[::-1]


def test_a_row_leadrelay_did_not_write_is_left_out_of_the_table_not_fatal(tmp_path, caplog):
    path = tmp_path / "old.sqlite"
    write_v1_rows(path)
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO leadrelay (key, value) VALUES (?, ?)",
            [("log:000000000009", '{"junk": 1}'), ("sla:000000000002", '"not a state"'),
             ("log:000000000010", '{"decided_at": "yesterday", "decision": {}}')],
        )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="leadrelay.store"):
        store = SqliteStore(path)
    try:
        assert "log:000000000009" in caplog.text and "sla:000000000002" in caplog.text
        assert [r.id for r in store.assignments(AssignmentQuery())] == [5, 4, 3, 2, 1]
    finally:
        store.close()


def test_a_table_made_before_the_writer_flag_gets_it_on_open(tmp_path, monkeypatch):
    # The first layout of the table noted every writer's keys, this code's own included.
    path = tmp_path / "store.sqlite"
    SqliteStore(path).close()
    with sqlite3.connect(path) as conn:
        for event, row in (("insert", "new"), ("update", "new"), ("delete", "old")):
            conn.execute(f"DROP TRIGGER assignments_stale_on_{event}")
            conn.execute(
                f'CREATE TRIGGER assignments_stale_on_{event} AFTER {event} ON "leadrelay" '
                f"WHEN {row}.key GLOB 'log:*' BEGIN INSERT INTO assignments_stale (key) "
                f"SELECT {row}.key WHERE NOT EXISTS (SELECT 1 FROM assignments_stale "
                f"WHERE key = {row}.key); END"
            )
        conn.execute("DROP TABLE assignments_writer")
    config = build_config(sla_config_data(), source=tmp_path / "app.yaml")
    store = SqliteStore(path)
    try:
        Router(config, store).route(Lead(id="A", crm="hubspot"), TUESDAY_10AM)
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM assignments_stale").fetchone() == (0,)
            assert conn.execute("SELECT projecting FROM assignments_writer").fetchall() == [(0,)]
        with monkeypatch.context() as patched:
            as_older_leadrelay(patched)
            Router(config, store).route(Lead(id="B", crm="hubspot"), TUESDAY_10AM)
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT key FROM assignments_stale").fetchall() == [
                ("log:000000000002",), ("sla:000000000002",), ("wb:000000000002",),
            ]  # fmt: skip
        assert [f.lead_id for f in store.facts(AssignmentQuery())] == ["A", "B"]
    finally:
        store.close()
