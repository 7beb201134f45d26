"""The PostgreSQL store beyond the contract suite: its schema and migrations, the move of an
embedded store into it, and what one database shared by many processes must survive (a
killed lock holder, a restarted connection, two processes routing at once). Each test runs
on a new schema of the server ``$LEADRELAY_TEST_POSTGRES_URL`` names (tests/postgres_helpers)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import yaml
from click.testing import CliRunner
from conftest import TUESDAY_10AM, config_data, lead, rep
from fakes import salesforce_api
from fakes.salesforce_api import QUEUE_ID, salesforce_config_data
from postgres_helpers import fresh_schema, server_url
from psycopg.pq import Trace
from sweep_helpers import sla_config_data

from connector.app import create_app
from connector.cli import main
from workflows import ledger, postgres_schema
from workflows.config_builder import build_config
from workflows.errors import ConfigErrors, StoreError
from workflows.postgres_rows import safe
from workflows.postgres_schema import Migration
from workflows.router import Router
from workflows.sqlite_store import SqliteStore
from workflows.store import AssignmentQuery, LogQuery
from workflows.store_registry import open_store

TEAM = [f"rep{i}" for i in range(5)]
fake_salesforce = salesforce_api.fake_salesforce  # the fixture, requested by name below


@pytest.fixture
def server() -> str:
    return server_url()


@pytest.fixture
def url(server: str) -> Iterator[str]:
    with fresh_schema(server) as scoped:
        yield scoped


@pytest.fixture
def bare_url(server: str) -> Iterator[str]:
    """A new schema with no leadrelay tables in it."""
    with fresh_schema(server, migrate=False) as scoped:
        yield scoped


def team_data() -> dict:
    return config_data(
        reps=[rep(r) for r in TEAM],
        pools={"team": {"members": TEAM, "strategy": "round_robin"}},
        fallback={"rep": TEAM[0]},
    )


def team_router(store, tmp_path: Path, data: dict | None = None) -> Router:
    return Router(build_config(data or team_data(), source=tmp_path / "app.yaml"), store)


def leadrelay(tmp_path: Path, store_url: str, *args: str):
    """Run the ``leadrelay`` command line on a small app.yaml and the store at ``store_url``."""
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(team_data()))
    env = {"LEADRELAY_STORE": store_url}
    return CliRunner().invoke(main, ["--config", str(config), *args], env=env)


# Schema and migrations.


def test_db_upgrade_creates_the_schema_once_and_says_its_version(tmp_path, bare_url):
    with pytest.raises(StoreError, match="no leadrelay schema yet: run `leadrelay db upgrade`"):
        open_store(bare_url)
    first = leadrelay(tmp_path, bare_url, "db", "upgrade")
    assert first.exit_code == 0, first.output
    assert "applied 0001_initial" in first.output
    assert "schema at version 1" in first.output
    again = leadrelay(tmp_path, bare_url, "db", "upgrade")
    assert again.exit_code == 0 and "applied" not in again.output
    open_store(bare_url).close()


def test_a_server_refuses_to_start_on_a_missing_schema_naming_the_command(tmp_path, bare_url):
    result = leadrelay(tmp_path, bare_url, "serve", "--port", "1")
    assert result.exit_code == 1
    assert "run `leadrelay db upgrade`" in result.output


def test_an_older_schema_is_refused_until_db_upgrade_applies_the_new_migration(
    tmp_path, url, monkeypatch
):
    shipped = postgres_schema.migrations()
    newer = Migration(2, "routing_notes", "CREATE TABLE routing_notes (id bigint PRIMARY KEY);")
    monkeypatch.setattr(postgres_schema, "migrations", lambda: (*shipped, newer))
    with pytest.raises(StoreError, match="at version 1, this release needs 2: run `leadrelay db"):
        open_store(url)
    assert leadrelay(tmp_path, url, "check").exit_code == 1
    upgraded = leadrelay(tmp_path, url, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "applied 0002_routing_notes" in upgraded.output
    store = open_store(url)
    store.close()
    with psycopg.connect(url) as conn:
        versions = conn.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
    assert versions == [(1,), (2,)]


def test_db_commands_refuse_an_embedded_store(tmp_path):
    result = leadrelay(tmp_path, f"sqlite:///{tmp_path}/s.sqlite", "db", "upgrade")
    assert result.exit_code == 2
    assert "works on a postgresql:// store" in result.output


def test_a_password_in_the_url_never_appears_in_an_error(tmp_path, server):
    unreachable = "postgresql://leadrelay:s3cret-pw@127.0.0.1:1/nowhere"
    result = leadrelay(tmp_path, unreachable, "check")
    assert result.exit_code == 1
    assert "cannot connect to postgresql://leadrelay:***@127.0.0.1:1/nowhere" in result.output
    assert "s3cret-pw" not in result.output


def test_app_yaml_accepts_a_postgresql_store_url_as_given(tmp_path):
    url = "postgresql://leadrelay@db.internal:6432/leads?sslmode=require"
    config = build_config({**team_data(), "store": url}, source=tmp_path / "app.yaml")
    assert config.store_url == url


def test_an_unsupported_store_url_is_refused_without_its_password(tmp_path):
    with pytest.raises(ConfigErrors) as refused:
        build_config({**team_data(), "store": "mysql://u:s3cret-pw@db/x"}, source=tmp_path / "a")
    (error,) = refused.value.errors
    assert "mysql://u:***@db/x" in str(error) and "s3cret-pw" not in str(error)
    assert "postgresql://" in str(error)


# Moving an embedded store into PostgreSQL.


def embedded_store_with_history(path: Path, tmp_path: Path) -> list:
    store = SqliteStore(path)
    router = team_router(store, tmp_path, sla_config_data())
    for i in range(30):
        router.route(lead(f"L{i % 12}", email=f"p{i}@acme{i % 4}.io"), TUESDAY_10AM,
                     idempotency_key=f"k{i}", source="hubspot")  # fmt: skip
    store.set_writebacks({3: ("failed", "HubSpot answered 503")}, TUESDAY_10AM)
    store.settle({1: {"status": "settled", "outcome": "contacted", "ttft_s": 60}})
    records = list(store.log())
    store.close()
    return records


def test_import_sqlite_copies_every_row_and_prints_matching_counts_and_checksums(tmp_path, url):
    path = tmp_path / "old.sqlite"
    records = embedded_store_with_history(path, tmp_path)
    result = leadrelay(tmp_path, url, "db", "import-sqlite", str(path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    embedded = next(line for line in lines if line.startswith("embedded"))
    postgres = next(line for line in lines if line.startswith("postgresql"))
    assert "assignment_log 30," in embedded and "assignment_log 30," in postgres
    assert embedded.split(": ", 1)[1] == postgres.split(": ", 1)[1]  # counts and checksum
    assert "imported: counts and checksums match" in result.output

    moved = open_store(url)
    try:
        assert [r.to_dict() for r in moved.log()] == [r.to_dict() for r in records]
        assert moved.writeback(3)["status"] == "failed"
        assert moved.sla(1)["outcome"] == "contacted"
        with moved.transaction() as tx:
            seen = tx.seen("k7")
        assert seen is not None and seen.lead_id == records[7].lead_id and seen.id == 8
        # The rotation carries on where the embedded store left it.
        sqlite_copy = SqliteStore(path)
        expected = team_router(sqlite_copy, tmp_path).route(lead("N"), TUESDAY_10AM)
        sqlite_copy.close()
        got = team_router(moved, tmp_path).route(lead("N"), TUESDAY_10AM)
        assert got.decision.rep_id == expected.decision.rep_id
    finally:
        moved.close()

    again = leadrelay(tmp_path, url, "db", "import-sqlite", str(path))
    assert again.exit_code == 1 and "not empty" in again.output


def test_import_sqlite_of_a_missing_file_says_so(tmp_path, url):
    result = leadrelay(tmp_path, url, "db", "import-sqlite", str(tmp_path / "none.sqlite"))
    assert result.exit_code == 1
    assert "no embedded store at" in result.output


# Hostile input a CRM may let through.


@pytest.mark.parametrize(
    ("lead_id", "email", "key"),
    [
        ("a\x00b", "pat\x00@acme.io", "key\x00"),  # PostgreSQL text cannot hold a NUL
        ("\ud800z", "\udfff@acme.io", "key\ud800"),  # nor a lone surrogate
        ("'; DROP TABLE assignment_log; --", "o'brien@acme.io", "k'\\"),
        ("x" * 100_000, None, "y" * 10_000),
    ],
)
def test_hostile_ids_are_logged_replayed_and_found(tmp_path, url, lead_id, email, key):
    store = open_store(url)
    try:
        router = team_router(store, tmp_path)
        first = router.route(lead(lead_id, email=email), TUESDAY_10AM, idempotency_key=key)
        again = router.route(lead(lead_id, email=email), TUESDAY_10AM, idempotency_key=key)
        assert again.replayed and again.record == first.record
        assert [r.lead_id for r in store.log(LogQuery(lead=lead_id))] == [lead_id]
        (found,) = store.assignments(AssignmentQuery(rep=first.decision.rep_id))
        assert found.lead_id == lead_id
        # Statistics see the key-safe text (a NUL as \u0000, a surrogate as \ud800).
        assert [f.lead_id for f in store.facts(AssignmentQuery())] == [safe(lead_id)]
        with store.transaction() as tx:
            if email:
                assert tx.previous_owner(email, None) == first.decision.rep_id
            assert tx.lead_owners("none", lead_id) == [first.decision.rep_id]
    finally:
        store.close()


# Locks, connection faults, concurrency.


def hold_lock(store_url: str, held) -> None:
    """Worker: take the lock ``sweep`` and keep it until killed."""
    store = open_store(store_url)
    with store.lock("sweep") as got:
        held.put(got)
        time.sleep(120)


def test_a_lock_is_released_when_its_holder_process_is_killed(url):
    ctx = multiprocessing.get_context("spawn")
    held = ctx.Queue()
    holder = ctx.Process(target=hold_lock, args=(url, held), daemon=True)
    holder.start()
    try:
        assert held.get(timeout=60) is True
        store = open_store(url)
        with store.lock("sweep") as got:
            assert got is False
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(timeout=10)
        deadline = time.monotonic() + 10
        while True:
            with store.lock("sweep") as got:
                if got:
                    break
            assert time.monotonic() < deadline, "the dead holder's lock was never released"
            time.sleep(0.05)
        store.close()
    finally:
        if holder.is_alive():
            holder.kill()


def terminate_backends(server: str, application: str) -> int:
    with psycopg.connect(server, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application,),
        ).fetchall()
    return len(rows)


def test_a_restarted_connection_fails_with_store_error_then_the_pool_recovers(
    tmp_path, server, url
):
    application = f"lr-fault-{uuid.uuid4().hex[:8]}"
    store = open_store(f"{url}&application_name={application}&pool_size=2")
    router = team_router(store, tmp_path)
    try:
        assert router.route(lead("before"), TUESDAY_10AM, idempotency_key="before").record
        assert terminate_backends(server, application) >= 1
        failures, routed = 0, []
        for i in range(10):
            try:
                result = router.route(lead(f"L{i}"), TUESDAY_10AM, idempotency_key=f"k{i}")
            except StoreError as exc:
                assert "PostgreSQL" in str(exc)
                failures += 1
                continue
            routed.append(result.record.id)
        assert failures >= 1  # the dead connection's request failed, retryably
        assert len(routed) == 10 - failures  # and every later one went through
        # Nothing half-done: the log holds exactly the decisions that were answered.
        assert [r.lead_id for r in store.log()] == ["before", *[
            f"L{i}" for i in range(10) if f"L{i}" in {r.lead_id for r in store.log()}
        ]]  # fmt: skip
        assert len(list(store.log())) == 1 + len(routed)
        assert [r.id for r in store.log()] == list(range(1, 2 + len(routed)))
    finally:
        store.close()


def test_a_flow_call_during_a_connection_fault_gets_a_retryable_503_then_routes(
    tmp_path, server, url, fake_salesforce, monkeypatch
):
    monkeypatch.setenv("LEADRELAY_FLOW_TOKEN", "flow-token")
    application = f"lr-http-{uuid.uuid4().hex[:8]}"
    store = open_store(f"{url}&application_name={application}&pool_size=1")
    config = build_config(salesforce_config_data(), source=tmp_path / "app.yaml")
    client = create_app(config=config, store=store).test_client()
    body = {"Id": "00Q5g0000000001EAA", "OwnerId": QUEUE_ID, "Company": "Acme", "Country": "US"}
    headers = {"Authorization": "Bearer flow-token"}
    try:
        assert list(store.log()) == []  # the pool's one connection is open
        assert terminate_backends(server, application) == 1
        failed = client.post("/salesforce/route", json=body, headers=headers)
        assert failed.status_code == 503
        assert "PostgreSQL" in failed.get_json()["error"]
        assert list(store.log()) == []  # nothing half-done
        retried = client.post("/salesforce/route", json=body, headers=headers)
        assert retried.status_code == 200 and retried.get_json()["rep"] == "alice"
        assert len(list(store.log())) == 1
    finally:
        store.close()


def route_many_leads(store_url: str, config_dir: str, prefix: str, count: int) -> None:
    store = open_store(store_url)
    router = team_router(store, Path(config_dir))
    for i in range(count):
        router.route(lead(f"{prefix}-{i}"), TUESDAY_10AM, idempotency_key=f"{prefix}-{i}")
        router.route(lead(f"{prefix}-{i}"), TUESDAY_10AM, idempotency_key=f"{prefix}-{i}")
    store.close()


def test_two_processes_routing_at_once_never_give_the_same_turn_twice(tmp_path, url):
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=route_many_leads, args=(url, str(tmp_path), f"p{n}", 300))
        for n in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    store = open_store(url)
    try:
        records = list(store.log())
    finally:
        store.close()
    assert [r.id for r in records] == list(range(1, 601))  # every retry answered, not logged
    assert len({r.lead_id for r in records}) == 600  # no lead assigned twice
    # Each rotation turn went to exactly one lead: the owners cycle through the team in order.
    assert [r.new_owner for r in records] == [TEAM[i % len(TEAM)] for i in range(600)]
    assert set(Counter(r.new_owner for r in records).values()) == {120}


# The cost of one routed lead.


def round_trips(store, trace: Path, action) -> int:
    """Round trips ``action()`` makes on the store's one connection, from a libpq trace:
    each ends with the server's ReadyForQuery."""
    with open(trace, "w") as out:
        with store._pool.connection() as conn:  # the pool's only connection
            conn.pgconn.trace(out.fileno())
            conn.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        try:
            action()
        finally:
            with store._pool.connection() as conn:
                conn.pgconn.untrace()  # flushes the trace
    return sum("\tReadyForQuery\t" in line for line in trace.read_text().splitlines())


def test_a_routed_lead_costs_at_most_two_round_trips(tmp_path, url):
    store = open_store(f"{url}&pool_size=1")  # one connection: every call goes through it
    router = team_router(store, tmp_path, sla_config_data())
    trace = tmp_path / "libpq.trace"

    def route(i: int, key: str) -> None:
        when = TUESDAY_10AM + timedelta(minutes=i)
        router.route(lead(f"L{i}", email=f"p{i}@acme.io"), when, idempotency_key=key)

    try:
        route(0, "warm-up")
        fresh = [round_trips(store, trace, lambda i=i: route(i, f"k{i}")) for i in range(1, 6)]
        replays = [round_trips(store, trace, lambda i=i: route(i, f"k{i}")) for i in range(1, 3)]
        assert [r.idempotency_key for r in store.log()] == ["warm-up", "k1", "k2", "k3", "k4", "k5"]
    finally:
        store.close()
    assert fresh == [2] * 5  # the lock and every read; every write and the commit
    assert replays == [2] * 2  # the key, its decision and its write-back; the end


def test_a_decision_frees_the_routing_lock_before_its_flush_and_answers_after_it(tmp_path, url):
    store = open_store(f"{url}&pool_size=1")  # one connection: every call goes through it
    router = team_router(store, tmp_path)
    trace = tmp_path / "libpq.trace"
    try:
        router.route(lead("warm-up"), TUESDAY_10AM, idempotency_key="warm-up")
        trips = round_trips(store, trace, lambda: router.route(lead("L1"), TUESDAY_10AM))
    finally:
        store.close()
    sent = [line.split('"')[-2] for line in trace.read_text().splitlines() if "\tParse\t" in line]
    writes = next(n for n, sql in enumerate(sent) if "INSERT INTO assignment_log" in sql)
    lock = next(sql for sql in sent if "pg_try_advisory_xact_lock" in sql)
    # The decision commits without waiting for the disk (freeing the lock at once); a
    # transaction that writes WAL commits behind it, durably, in the same round trip: its
    # flush covers the decision's commit before the answer.
    assert "set_config('synchronous_commit', 'off', true)" in lock
    assert sent[writes + 1 :] == ["COMMIT", "SELECT pg_current_xact_id()"]
    assert trips == 2


def test_after_waiting_for_another_holder_a_process_takes_the_lock_first_then_goes_back(
    tmp_path, url
):
    holder = open_store(url)
    store = open_store(f"{url}&pool_size=1")
    router = team_router(store, tmp_path)
    trace = tmp_path / "libpq.trace"
    try:
        router.route(lead("warm-up"), TUESDAY_10AM, idempotency_key="warm-up")
        with holder.transaction() as tx:
            tx.get(ledger.SEQ)  # the read takes the routing lock
            waiting = threading.Thread(target=lambda: router.route(lead("L1"), TUESDAY_10AM))
            waiting.start()
            waiting.join(timeout=0.5)
            assert waiting.is_alive()  # it waits for the holder's commit
        waiting.join(timeout=30)
        # Contended last time: the lock first (so requests queued meanwhile join the batch),
        # then the reads, then the writes; uncontended again, back to two round trips.
        assert round_trips(store, trace, lambda: router.route(lead("L2"), TUESDAY_10AM)) == 3
        assert round_trips(store, trace, lambda: router.route(lead("L3"), TUESDAY_10AM)) == 2
        assert [r.lead_id for r in store.log()] == ["warm-up", "L1", "L2", "L3"]
    finally:
        store.close()
        holder.close()
