"""The store contract: every store in ``workflows.store_registry.STORES`` passes this suite.

One suite for every store, the way APScheduler tests every job store: a new store (PostgreSQL)
runs it by registering its kind. Each test gets a fresh store from a URL: a file in tmp_path
for sqlite; for a store that needs a server, ``$LEADRELAY_TEST_STORE_<SCHEME>`` names the
server and database, and each test runs on a new schema there, dropped after (the tests of
that store are skipped without it, and fail in CI). Behaviour only: no test here knows how a
store keeps its rows (tests/test_store.py holds the SQLite-only ones).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from conftest import TUESDAY_10AM, config_data, lead, owners, rep
from postgres_helpers import fresh_schema, server_url
from sweep_helpers import sla_config_data

from workflows.config_builder import build_config
from workflows.model import Lead
from workflows.ops_distribution import period_starts
from workflows.router import Router, RouteRequest
from workflows.sla_clock import to_key
from workflows.stats_tally import tally_facts
from workflows.store import AssignmentFacts, AssignmentQuery, LogQuery, Store, TallyQuery
from workflows.store_registry import STORES, open_shared_values, open_snapshot, open_store

TEAM = [f"rep{i}" for i in range(7)]
LEASE = timedelta(seconds=60)


@contextmanager
def url_for(scheme: str, tmp_path: Path) -> Iterator[str]:
    if scheme == "sqlite":
        yield f"sqlite:///{tmp_path}/store.sqlite"
        return
    with fresh_schema(server_url(f"LEADRELAY_TEST_STORE_{scheme.upper()}")) as url:
        yield url


@pytest.fixture(params=sorted(STORES))
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with url_for(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:  # replaces conftest's: make_router uses it too
    opened = open_store(store_url)
    yield opened
    opened.close()


def team_config(tmp_path: Path):
    return build_config(
        config_data(
            reps=[rep(r) for r in TEAM],
            pools={"team": {"members": TEAM, "strategy": "round_robin"}},
            fallback={"rep": "rep0"},
        ),
        source=tmp_path / "app.yaml",
    )


def assert_exact_rotation(store: Store, total: int) -> None:
    records = list(store.log())
    assert len(records) == total
    assert sorted(r.id for r in records) == list(range(1, total + 1))
    counts = Counter(r.new_owner for r in records)
    assert set(counts) == set(TEAM)
    assert max(counts.values()) - min(counts.values()) <= 1


def assign_many(url: str, config_dir: str, prefix: str, count: int) -> None:
    """Worker: open the store in this process and route ``count`` leads."""
    store = open_store(url)
    router = Router(team_config(Path(config_dir)), store)
    for i in range(count):
        router.route(lead(f"{prefix}-{i}"), TUESDAY_10AM, idempotency_key=f"{prefix}-{i}")
    store.close()


# Rotation: exact under concurrency, and durable.


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


def finish(workers: list, seconds: float) -> None:
    """Start ``workers`` and wait for them all within one deadline; any still running then is
    killed, so a stuck child fails the test instead of holding the run at exit."""
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + seconds
    for worker in workers:
        worker.join(timeout=max(0.0, deadline - time.monotonic()))
    for worker in workers:
        if worker.is_alive():
            worker.kill()
            worker.join()


def test_four_processes_share_one_round_robin_pool_exactly(tmp_path, store_url):
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=assign_many, args=(store_url, str(tmp_path), f"p{n}", 500), daemon=True)
        for n in range(4)
    ]
    finish(workers, seconds=120)
    assert [worker.exitcode for worker in workers] == [0] * 4
    store = open_store(store_url)
    try:
        assert_exact_rotation(store, 2000)
    finally:
        store.close()


def test_assignment_survives_reopening_the_store(store_url, make_config):
    first = open_store(store_url)
    Router(make_config(), first).route(lead("L1"), TUESDAY_10AM)
    first.close()
    reopened = open_store(store_url)
    try:
        router = Router(make_config(), reopened)
        assert [r.new_owner for r in reopened.log()] == ["alice"]
        assert owners(router, 1) == ["bob"]  # the rotation carried on where it stopped
    finally:
        reopened.close()


# Idempotency: keys and aliases.


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


def test_an_alias_names_the_same_decision_as_its_key(make_router, store):
    router = make_router()
    (first,) = router.route_many(
        [RouteRequest(lead("L1"), TUESDAY_10AM, idempotency_key="n-1", aliases=("n-2",))]
    )
    again = router.route(lead("L1"), TUESDAY_10AM, idempotency_key="n-2")
    assert again.replayed and again.record is not None and first.record is not None
    assert again.record.id == first.record.id
    with store.transaction() as tx:
        assert tx.seen("n-1") == tx.seen("n-2") == first.record
        assert tx.seen("n-3") is None
    assert len(list(store.log())) == 1


def test_dry_run_writes_nothing(make_router, store):
    router = make_router()
    decision = router.route(lead("L1"), TUESDAY_10AM, dry_run=True).decision
    assert decision.rep_id == "alice"
    assert list(store.log()) == []
    assert owners(router, 1) == ["alice"]


# The log: every field, filters, order, streaming.


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


def test_log_filters_by_rep_lead_crm_and_time(make_router, store):
    router = make_router(
        reps=[rep(r, hubspot_owner_id=str(100 + i)) for i, r in enumerate(["alice", "bob", "chen"])]
    )
    for i in range(6):
        crm = "hubspot" if i % 2 else "api"
        router.route(lead(f"L{i % 3}", crm=crm), TUESDAY_10AM.replace(hour=9 + i))
    assert [r.id for r in store.log(LogQuery(rep="bob"))] == [2, 5]
    assert [r.id for r in store.log(LogQuery(lead="L2"))] == [3, 6]
    assert [r.id for r in store.log(LogQuery(lead="L2", crm="hubspot"))] == [6]
    assert [r.id for r in store.log(LogQuery(crm="hubspot"))] == [2, 4, 6]
    since = TUESDAY_10AM.replace(hour=13)
    assert [r.id for r in store.log(LogQuery(since=since))] == [5, 6]
    assert [r.id for r in store.log(LogQuery(since=since, rep="bob"))] == [5]


def test_log_streams_past_one_page_oldest_first(make_router, store):
    router = make_router()
    for i in range(1203):
        router.route(lead(f"L{i}"), TUESDAY_10AM)
    assert [r.id for r in store.log()] == list(range(1, 1204))


# The sticky-owner index and the lead history.


def test_the_last_assigned_owner_is_remembered_by_email_and_domain(make_router, store):
    router = make_router()
    router.route(lead("L1", email="Pat@Acme.io"), TUESDAY_10AM)
    router.route(lead("L2", email="kim@beta.io"), TUESDAY_10AM)
    router.route(lead("L1", email="Pat@Acme.io"), TUESDAY_10AM)
    with store.transaction() as tx:
        assert tx.previous_owner("pat@acme.io", None) == "chen"
        assert tx.previous_owner("someone@else.io", "acme.io") == "chen"
        assert tx.previous_owner(None, "beta.io") == "bob"
        assert tx.previous_owner("nobody@nowhere.io", "nowhere.io") is None
        assert tx.lead_owners("none", "L1") == ["alice", "chen"]
        assert tx.lead_owners("none", "L9") == []


def test_an_unassigned_decision_changes_no_owner(make_router, store):
    router = make_router()  # nobody has a HubSpot owner id: nobody can take a HubSpot lead
    result = router.route(lead("L1", crm="hubspot", email="pat@acme.io"), TUESDAY_10AM)
    assert result.decision.outcome != "assigned" and result.record is not None
    with store.transaction() as tx:
        assert tx.previous_owner("pat@acme.io", "acme.io") is None
        assert tx.lead_owners("hubspot", "L1") == []


# Write-backs: status beside the log row, attempts, claims and leases (``now`` passed in).


def test_writeback_status_is_kept_beside_the_log_row(make_router, store):
    record = make_router().route(lead(), TUESDAY_10AM).record
    assert record is not None
    assert store.writeback(record.id)["status"] == "not_needed"
    store.set_writebacks({record.id: ("failed", "HubSpot answered 503")}, TUESDAY_10AM)
    later = TUESDAY_10AM + timedelta(minutes=1)
    store.set_writebacks({record.id: ("written", "")}, later)
    status = store.writeback(record.id)
    assert status is not None
    assert (status["status"], status["attempts"], status["detail"]) == ("written", 2, "")
    assert status["at"] == later.astimezone(UTC).isoformat()  # the time passed in, not the clock
    assert "final" not in status
    assert [r.id for r in store.log()] == [record.id]
    assert store.writeback(record.id + 1) is None


def test_a_failure_no_retry_can_fix_is_marked_final(make_router, store):
    router = make_router()
    a = router.route(lead("A"), TUESDAY_10AM).record
    b = router.route(lead("B"), TUESDAY_10AM).record
    assert a is not None and b is not None
    store.set_writebacks(
        {a.id: ("failed", "owner inactive"), b.id: ("failed", "timeout")}, TUESDAY_10AM,
        final={a.id},
    )  # fmt: skip
    assert store.writeback(a.id)["final"] is True
    assert "final" not in store.writeback(b.id)


def pending(router: Router, lead_id: str = "L1") -> int:
    (result,) = router.route_many(
        [RouteRequest(lead(lead_id, owner="someone"), TUESDAY_10AM, writes_back=True)]
    )
    assert result.record is not None and result.writeback is not None
    assert result.writeback["status"] == "pending"
    return result.record.id


def test_a_write_back_claim_holds_for_its_lease_then_lapses(make_router, store):
    router = make_router()
    router.clock = lambda: TUESDAY_10AM  # the routing delivery claims it at 10:00
    record_id = pending(router)
    with store.transaction() as tx:
        assert not tx.claim_writeback(record_id, LEASE, TUESDAY_10AM + LEASE / 2)
        assert tx.claim_writeback(record_id, LEASE, TUESDAY_10AM + LEASE * 2)
        assert not tx.claim_writeback(record_id, LEASE, TUESDAY_10AM + LEASE * 2)
    with store.transaction() as tx:  # the claim was committed with the transaction
        assert not tx.claim_writeback(record_id, LEASE, TUESDAY_10AM + LEASE * 2)
        assert tx.claim_writeback(record_id, LEASE, TUESDAY_10AM + LEASE * 4)


def test_only_a_write_still_to_do_can_be_claimed(make_router, store):
    router = make_router()
    router.clock = lambda: TUESDAY_10AM
    unneeded = router.route(lead("N"), TUESDAY_10AM).record
    record_id = pending(router)
    assert unneeded is not None
    later = TUESDAY_10AM + LEASE * 2
    store.set_writebacks({record_id: ("failed", "503")}, later)
    with store.transaction() as tx:
        assert not tx.claim_writeback(unneeded.id, LEASE, later)  # not_needed
        assert not tx.claim_writeback(record_id + 100, LEASE, later)  # no such record
        assert tx.claim_writeback(record_id, LEASE, later)  # failed: a retry may write it
    store.set_writebacks({record_id: ("written", "")}, later)
    with store.transaction() as tx:
        assert not tx.claim_writeback(record_id, LEASE, later + LEASE * 10)


# The SLA: deadline index, settling, superseding, rotations and escalation.


def test_assignments_with_an_sla_are_streamed_by_deadline_in_pages(make_router):
    router = make_router(sla_config_data())
    for minute in (30, 0, 20, 10):  # recorded out of deadline order
        router.route(Lead(id=f"L{minute}", crm="hubspot"), TUESDAY_10AM + timedelta(minutes=minute))
    now = TUESDAY_10AM + timedelta(hours=1)
    first = router.store.due(now, 3)
    rest = router.store.due(now, 3, after=first[-1].key)
    assert [d.record.lead_id for d in first + rest] == ["L0", "L10", "L20", "L30"]
    assert router.store.due(TUESDAY_10AM + timedelta(minutes=25), 10)[-1].record.lead_id == "L10"
    assert first[0].owners == (first[0].record.new_owner,)
    assert first[0].sla["status"] == "open" and first[0].sla["rotations"] == 0
    assert first[0].writeback is not None and first[0].writeback["status"] == "not_needed"


def test_settled_assignments_leave_the_index_and_rescheduled_ones_move(make_router):
    router = make_router(sla_config_data())
    a = router.route(Lead(id="A", crm="hubspot"), TUESDAY_10AM).record
    b = router.route(Lead(id="B", crm="hubspot"), TUESDAY_10AM).record
    assert a is not None and b is not None
    later = TUESDAY_10AM + timedelta(hours=2)
    router.store.settle(
        {a.id: {"status": "settled", "outcome": "contacted", "ttft_s": 60},
         b.id: {"due_key": to_key(later)}}
    )  # fmt: skip
    assert router.store.due(TUESDAY_10AM + timedelta(hours=1), 10) == []
    (due,) = router.store.due(later, 10)
    assert due.record.id == b.id
    assert router.store.sla(a.id)["outcome"] == "contacted"
    logged = {r.id: r.extra.get("sla") for r in router.store.log()}
    assert logged[a.id]["ttft_s"] == 60
    router.store.settle({a.id + b.id + 1: {"status": "settled"}})  # no SLA there: left alone


def test_no_sla_configured_records_no_deadline(make_router):
    router = make_router()
    record = router.route(Lead(id="A", crm="hubspot"), TUESDAY_10AM).record
    assert record is not None
    assert router.store.sla(record.id) is None
    assert router.store.due(TUESDAY_10AM + timedelta(days=30), 10) == []


def test_dry_runs_record_no_deadline(make_router):
    router = make_router(sla_config_data())
    router.route(Lead(id="A", crm="hubspot"), TUESDAY_10AM, dry_run=True)
    assert router.store.due(TUESDAY_10AM + timedelta(days=1), 10) == []


def test_a_new_owner_supersedes_the_open_sla_of_the_lead(make_router):
    router = make_router(sla_config_data())
    first = router.route(Lead(id="A", crm="hubspot"), TUESDAY_10AM).record
    second = router.route(Lead(id="A", crm="hubspot"), TUESDAY_10AM, source="hubspot").record
    assert first is not None and second is not None
    old = router.store.sla(first.id)
    assert old is not None
    assert (old["status"], old["outcome"], old.get("next_record")) == (
        "superseded", "superseded", second.id,
    )  # fmt: skip
    assert old.get("settled_at") == TUESDAY_10AM.isoformat()
    assert "reassigned by #2 (hubspot)" in old.get("detail", "")
    due = router.store.due(TUESDAY_10AM + timedelta(hours=1), 10)
    assert [d.record.id for d in due] == [second.id]
    assert due[0].owners == (first.new_owner, second.new_owner)


def test_sweep_rotations_count_up_and_escalate_past_the_cap(make_router):
    router = make_router(sla_config_data(max_reassignments=2))
    made = [router.route(Lead(id="A", crm="hubspot"), TUESDAY_10AM).record]
    made += [
        router.route(Lead(id="A", crm="hubspot"), TUESDAY_10AM, source="sweep").record
        for _ in range(3)
    ]
    states = [router.store.sla(r.id) for r in made if r is not None]
    assert [(s["rotations"], s["status"]) for s in states if s] == [
        (0, "open"), (1, "open"), (2, "open"), (3, "escalated"),
    ]  # fmt: skip
    # The sweep settles what it rotates away from itself: nothing was superseded.
    due = router.store.due(TUESDAY_10AM + timedelta(hours=1), 10)
    assert [d.record.id for d in due] == [1, 2, 3]
    # Any other assignment starts the count again.
    again = router.route(Lead(id="A", crm="hubspot"), TUESDAY_10AM).record
    assert again is not None
    assert router.store.sla(again.id)["rotations"] == 0


def test_an_escalation_is_never_due(make_router):
    router = make_router(sla_config_data())
    result = router.route(Lead(id="A", crm="hubspot"), TUESDAY_10AM, entry="sla-escalate:everyone")
    assert result.record is not None
    assert router.store.sla(result.record.id)["status"] == "escalated"
    assert router.store.due(TUESDAY_10AM + timedelta(days=1), 10) == []


# What callers used to build from the store's file: a named lock, a snapshot, a shared value.


def hold(url: str, name: str, answer) -> None:
    """Worker: try the lock ``name`` of the store at ``url`` from another process."""
    store = open_store(url)
    with store.lock(name) as held:
        answer.put(held)
    store.close()


def test_a_named_lock_has_one_holder_at_a_time_across_processes(store, store_url):
    ctx = multiprocessing.get_context("spawn")
    answers = ctx.Queue()
    with store.lock("sweep") as held:
        assert held is True
        other = open_store(store_url)
        try:
            with other.lock("sweep") as second, other.lock("another") as third:
                assert (second, third) == (False, True)
        finally:
            other.close()
        worker = ctx.Process(target=hold, args=(store_url, "sweep", answers), daemon=True)
        finish([worker], seconds=60)
        assert answers.get(timeout=5) is False
    worker = ctx.Process(target=hold, args=(store_url, "sweep", answers), daemon=True)
    finish([worker], seconds=60)
    assert answers.get(timeout=5) is True  # released when its holder was done
    with store.lock("sweep") as again:
        assert again is True


def test_a_snapshot_leaves_the_live_store_untouched(make_router, store):
    router = make_router()
    owners(router, 2)
    scratch = store.snapshot()
    try:
        assert [r.id for r in scratch.log()] == [1, 2]
        assert owners(Router(router.config, scratch), 3) == ["chen", "alice", "bob"]
    finally:
        scratch.close()
    assert len(list(store.log())) == 2
    assert owners(router, 1) == ["chen"]


def test_a_snapshot_by_url_copies_the_store_and_of_nothing_is_empty(tmp_path, store_url):
    empty = open_snapshot(store_url)
    try:
        assert list(empty.log()) == []
    finally:
        empty.close()
    live = open_store(store_url)
    Router(team_config(tmp_path), live).route(lead("L1"), TUESDAY_10AM)
    live.close()
    copy = open_snapshot(store_url)
    try:
        Router(team_config(tmp_path), copy).route(lead("L2"), TUESDAY_10AM)
        assert [r.lead_id for r in copy.log()] == ["L1", "L2"]
    finally:
        copy.close()
    live = open_store(store_url)
    try:
        assert [r.lead_id for r in live.log()] == ["L1"]
    finally:
        live.close()


def test_a_shared_value_is_read_modified_and_written_by_one_holder_at_a_time(store, store_url):
    with store.shared_value("counter") as value:
        assert value.read() == b""
    others = [open_store(store_url) for _ in range(3)]

    def add(target: Store) -> None:
        for _ in range(50):
            with target.shared_value("counter") as shared:
                shared.write(str(int(shared.read() or b"0") + 1).encode())

    threads = [threading.Thread(target=add, args=(s,)) for s in [store, *others] for _ in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for other in others:
        other.close()
    with store.shared_value("counter") as value:
        assert value.read() == b"400"
        value.write(b"7")
    with store.shared_value("counter") as value:
        assert value.read() == b"7"  # a shorter value replaces a longer one whole
    with store.shared_value("other.1") as value:
        value.write(b"x")
    assert store.shared_names("other.") == ["other.1"]
    assert store.shared_names("counter") == ["counter"]
    assert store.shared_names("missing") == []


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden"])
def test_a_lock_or_value_name_that_could_name_another_file_is_refused(store, name):
    from workflows.errors import StoreError

    with pytest.raises(StoreError, match="not a usable"), store.lock(name):
        pass
    with pytest.raises(StoreError, match="not a usable"), store.shared_value(name):
        pass


def test_shared_values_are_reachable_without_opening_the_store(store, store_url):
    with store.shared_value("hubspot-budget") as value:
        value.write(b"paused")
    alone = open_shared_values(store_url)  # what `leadrelay hubspot resume` uses
    try:
        assert alone.shared_names("hubspot-") == ["hubspot-budget"]
        with alone.shared_value("hubspot-budget") as value:
            assert value.read() == b"paused"
            value.write(b"resumed")
    finally:
        alone.close()
    with store.shared_value("hubspot-budget") as value:
        assert value.read() == b"resumed"


# The console's queries: assignments (filters, cursor pages), one record, facts, outcomes.

CONSOLE_REPS = {"alice": "101", "bob": "102", "chen": "103", "dana": "104"}
SOURCES = ["hubspot", "salesforce", "sweep", "reassign", "salesforce-flow"]


def console_config_data() -> dict:
    """Nested rules (``enterprise/na``, ``enterprise/emea``), a look-alike sibling
    (``enterprise-x``) and a catch-all, over four reps known to both CRMs."""
    return config_data(
        reps=[
            rep(name, hubspot_owner_id=owner, salesforce_user_id=f"005000000000{owner}AAA")
            for name, owner in CONSOLE_REPS.items()
        ],
        pools={"team": {"members": list(CONSOLE_REPS), "strategy": "round_robin"}},
        flow=[
            {"name": "enterprise", "when": {"employees": {"gte": 1000}},
             "flow": [{"name": "na", "when": {"country": {"in": ["US", "CA"]}},
                       "assign": {"pool": "team"}},
                      {"name": "emea", "assign": {"pool": "team"}}]},
            {"name": "enterprise-x", "when": {"employees": {"gte": 500}},
             "assign": {"pool": "team"}},
            {"name": "everyone", "assign": {"pool": "team"}},
        ],
        fallback={"rep": "bob"},
    )  # fmt: skip


def console_lead(i: int) -> Lead:
    return Lead(
        id=f"L{i}",
        crm="salesforce" if i % 6 == 5 else "hubspot",
        object_type="contact" if i % 3 else "company",
        employees=[2000, 2000, 700, 10][i % 4],
        country="US" if i % 8 < 4 else "DE",
        owner=list(CONSOLE_REPS.values())[i % 5] if i % 5 < 4 else None,
    )


def fill_console_log(router: Router, count: int, start: int = 0) -> list[int]:
    """``count`` records an hour apart from TUESDAY_10AM, every source, rule and owner mix;
    every fifth decided 20 hours before its neighbours (ids need not follow time)."""
    ids = []
    for i in range(start, start + count):
        hours = i - 20 if i % 5 == 4 else i
        result = router.route(
            console_lead(i), TUESDAY_10AM + timedelta(hours=hours), source=SOURCES[i % len(SOURCES)]
        )
        assert result.record is not None
        ids.append(result.record.id)
    return ids


def newest_first(store: Store, query: AssignmentQuery) -> list[int]:
    """The reference answer: the whole log filtered by ``AssignmentQuery.matches``."""
    return [r.id for r in reversed(list(store.log())) if query.matches(r)]


def every_page(store: Store, query: AssignmentQuery, limit: int) -> list[int]:
    ids: list[int] = []
    before = None
    while True:
        page = store.assignments(query, before=before, limit=limit)
        ids += [r.id for r in page]
        if len(page) < limit:
            return ids
        before = page[-1].id


CONSOLE_QUERIES = [
    AssignmentQuery(),
    AssignmentQuery(rep="alice"),
    AssignmentQuery(rule="enterprise"),
    AssignmentQuery(rule="enterprise/na"),
    AssignmentQuery(rule="enterprise-x"),
    AssignmentQuery(rule="nobody-has-this"),
    AssignmentQuery(source="sweep"),
    AssignmentQuery(crm="hubspot"),
    AssignmentQuery(crm="salesforce"),
    AssignmentQuery(object_type="company"),
    AssignmentQuery(outcome="assigned"),
    AssignmentQuery(since=TUESDAY_10AM + timedelta(hours=10)),
    AssignmentQuery(until=TUESDAY_10AM + timedelta(hours=10)),
    AssignmentQuery(
        since=TUESDAY_10AM + timedelta(hours=5), until=TUESDAY_10AM + timedelta(hours=30)
    ),
    AssignmentQuery(rep="bob", rule="enterprise"),
    AssignmentQuery(rep="chen", source="hubspot", object_type="contact"),
    AssignmentQuery(
        rep="dana", rule="enterprise", since=TUESDAY_10AM + timedelta(hours=3),
        until=TUESDAY_10AM + timedelta(hours=40), crm="hubspot", outcome="assigned",
    ),
]  # fmt: skip


@pytest.mark.parametrize("query", CONSOLE_QUERIES, ids=repr)
def test_each_filter_alone_and_combined_answers_as_its_reference_meaning(make_router, query):
    router = make_router(console_config_data())
    fill_console_log(router, 48)
    expected = newest_first(router.store, query)
    assert [r.id for r in router.store.assignments(query, limit=100)] == expected
    assert every_page(router.store, query, limit=4) == expected


def test_the_scenario_exercises_every_filter(make_router):
    router = make_router(console_config_data())
    fill_console_log(router, 48)
    for query in CONSOLE_QUERIES[:5] + CONSOLE_QUERIES[6:]:
        assert newest_first(router.store, query), f"{query} matches nothing: a weak test"


def test_a_rule_matches_the_rules_under_it_but_not_a_look_alike(make_router):
    router = make_router(console_config_data())
    fill_console_log(router, 8)
    rules = {r.id: r.rule for r in router.store.log()}
    assert set(rules.values()) == {"enterprise/na", "enterprise/emea", "enterprise-x", "everyone"}
    found = router.store.assignments(AssignmentQuery(rule="enterprise"))
    assert {r.rule for r in found} == {"enterprise/na", "enterprise/emea"}
    assert [r.id for r in found] == sorted(
        (i for i, rule in rules.items() if rule.startswith("enterprise/")), reverse=True
    )
    assert {r.rule for r in router.store.assignments(AssignmentQuery(rule="enterprise-x"))} == {
        "enterprise-x"
    }
    assert router.store.assignments(AssignmentQuery(rule="enterprise/n")) == []


def test_rep_matches_the_previous_owner_too(make_router):
    router = make_router(console_config_data())
    taken = router.route(Lead(id="A", crm="hubspot", owner="104"), TUESDAY_10AM).record
    given = router.route(Lead(id="B", crm="hubspot"), TUESDAY_10AM).record
    assert taken is not None and given is not None
    assert (taken.previous_owner, taken.new_owner) == ("dana", "alice")
    assert [r.id for r in router.store.assignments(AssignmentQuery(rep="dana"))] == [taken.id]
    assert [r.id for r in router.store.assignments(AssignmentQuery(rep="alice"))] == [taken.id]
    assert [r.id for r in router.store.assignments(AssignmentQuery(rep="bob"))] == [given.id]


def test_since_is_inclusive_and_until_exclusive(make_router):
    router = make_router(console_config_data())
    fill_console_log(router, 5)  # ids 1..5 at 10:00, 11:00, ... 14:00 New York time
    eleven, one_pm = TUESDAY_10AM + timedelta(hours=1), TUESDAY_10AM + timedelta(hours=3)
    page = router.store.assignments(AssignmentQuery(since=eleven, until=one_pm))
    assert [r.id for r in page] == [3, 2]
    in_utc = AssignmentQuery(since=eleven.astimezone(UTC), until=one_pm.astimezone(UTC))
    assert [r.id for r in router.store.assignments(in_utc)] == [3, 2]


def test_cursor_pages_have_no_gap_or_repeat_while_records_are_appended(make_router):
    router = make_router(console_config_data())
    fill_console_log(router, 30)
    seen: list[int] = []
    page = router.store.assignments(AssignmentQuery(), limit=7)
    while page:
        seen += [r.id for r in page]
        fill_console_log(router, 3, start=1000 + len(seen))  # newer records keep coming
        page = router.store.assignments(AssignmentQuery(), before=page[-1].id, limit=7)
    assert seen == list(range(30, 0, -1))


def test_a_page_carries_each_record_whole_with_its_sla(make_router):
    router = make_router(sla_config_data())
    made = router.route(Lead(id="A", crm="hubspot", email="pat@acme.io"), TUESDAY_10AM).record
    assert made is not None
    (record,) = router.store.assignments(AssignmentQuery())
    assert record.to_dict() | {"extra": {}} == made.to_dict() | {"extra": {}}
    assert record.extra["sla"]["status"] == "open"
    one = router.store.assignment(made.id)
    assert one is not None and one.extra["sla"] == record.extra["sla"]
    assert router.store.assignment(made.id + 1) is None


def test_facts_stream_oldest_first_past_a_page_with_the_same_filters(make_router):
    router = make_router(console_config_data())
    fill_console_log(router, 48)
    for query in CONSOLE_QUERIES:
        assert [f.id for f in router.store.facts(query)] == newest_first(router.store, query)[::-1]
    plain = make_router()
    for i in range(2105):  # past a page of facts
        plain.route(lead(f"M{i}"), TUESDAY_10AM)
    assert [f.id for f in plain.store.facts(AssignmentQuery(source="api"))] == list(
        range(49, 49 + 2105)
    )


def test_facts_flatten_a_record(make_router):
    router = make_router(console_config_data())
    made = router.route(
        Lead(id="A", crm="hubspot", object_type="contact", owner="104", employees=5),
        TUESDAY_10AM, source="salesforce-flow",
    ).record  # fmt: skip
    assert made is not None
    (facts,) = router.store.facts(AssignmentQuery())
    assert facts == AssignmentFacts(
        id=made.id, decided_at=TUESDAY_10AM, crm="hubspot", object_type="contact",
        lead_id="A", source="salesforce-flow", rule="everyone", outcome="assigned",
        previous_owner="dana", new_owner="alice", writeback_status="not_needed",
    )  # fmt: skip


def test_facts_follow_sla_settlement_and_escalation(make_router):
    router = make_router(sla_config_data(max_reassignments=1))
    first = router.route(Lead(id="A", crm="hubspot"), TUESDAY_10AM).record
    assert first is not None
    (facts,) = router.store.facts(AssignmentQuery())
    assert (facts.sla_status, facts.rotations, facts.sla_outcome) == ("open", 0, None)
    assert facts.sla_deadline == TUESDAY_10AM + timedelta(minutes=15)
    router.store.settle({first.id: {"status": "settled", "outcome": "rotated", "ttft_s": None}})
    for _ in range(2):
        router.route(Lead(id="A", crm="hubspot"), TUESDAY_10AM, source="sweep")
    router.store.settle({2: {"status": "settled", "outcome": "contacted", "ttft_s": 61.5}})
    found = [(f.sla_status, f.sla_outcome, f.rotations, f.ttft_s)
             for f in router.store.facts(AssignmentQuery())]  # fmt: skip
    assert found == [
        ("settled", "rotated", 0, None),
        ("settled", "contacted", 1, 61.5),
        ("escalated", None, 2, None),
    ]


def test_facts_show_a_superseded_sla_and_write_back_status(make_router):
    router = make_router(sla_config_data())
    first = router.route(Lead(id="A", crm="hubspot"), TUESDAY_10AM).record
    assert first is not None
    router.route(Lead(id="A", crm="hubspot"), TUESDAY_10AM, source="hubspot")
    router.store.set_writebacks({first.id: ("failed", "503")}, TUESDAY_10AM)
    statuses = [(f.sla_status, f.writeback_status) for f in router.store.facts(AssignmentQuery())]
    assert statuses == [("superseded", "failed"), ("open", "not_needed")]


def test_outcomes_keep_the_first_time_of_each_and_the_newest_check(make_router):
    router = make_router(console_config_data())
    (record_id,) = fill_console_log(router, 1)
    assert router.store.outcomes(record_id) is None
    t = TUESDAY_10AM.astimezone(UTC)
    iso = lambda minutes: (t + timedelta(minutes=minutes)).isoformat()  # noqa: E731
    router.store.record_outcomes({record_id: {"contacted_at": iso(5), "checked_at": iso(6)}})
    router.store.record_outcomes(
        {record_id: {"contacted_at": iso(50), "converted_at": iso(60), "checked_at": iso(61)}}
    )
    router.store.record_outcomes({record_id: {"checked_at": iso(30)}})  # an older read
    assert router.store.outcomes(record_id) == {
        "contacted_at": iso(5), "converted_at": iso(60), "checked_at": iso(61),
    }  # fmt: skip
    (facts,) = router.store.facts(AssignmentQuery())
    assert (facts.contacted_at, facts.converted_at, facts.disqualified_at) == (
        t + timedelta(minutes=5), t + timedelta(minutes=60), None,
    )  # fmt: skip


def test_outcomes_of_records_not_in_the_log_are_ignored(make_router):
    router = make_router(console_config_data())
    (record_id,) = fill_console_log(router, 1)
    when = TUESDAY_10AM.astimezone(UTC).isoformat()
    router.store.record_outcomes(
        {record_id: {"disqualified_at": when}, record_id + 1: {"contacted_at": when},
         0: {"contacted_at": when}, -5: {"contacted_at": when}}
    )  # fmt: skip
    assert router.store.outcomes(record_id) == {"disqualified_at": when}
    assert router.store.outcomes(record_id + 1) is None
    assert router.store.outcomes(0) is None
    assert [f.id for f in router.store.facts(AssignmentQuery())] == [record_id]
    router.route(Lead(id="Z", crm="hubspot"), TUESDAY_10AM)  # the id now exists: nothing known
    assert router.store.outcomes(record_id + 1) is None


def test_a_snapshot_answers_the_console_queries_as_the_live_store(make_router, store):
    router = make_router(console_config_data())
    fill_console_log(router, 20)
    router.store.record_outcomes({3: {"contacted_at": TUESDAY_10AM.isoformat()}})
    scratch = store.snapshot()
    try:
        for query in CONSOLE_QUERIES:
            assert [r.id for r in scratch.assignments(query)] == [
                r.id for r in store.assignments(query)
            ]
            assert list(scratch.facts(query)) == list(store.facts(query))
        assert scratch.outcomes(3) == store.outcomes(3)
    finally:
        scratch.close()


def test_filter_values_are_compared_whole_never_as_patterns(make_router):
    router = make_router(console_config_data())
    fill_console_log(router, 10)
    router.route(Lead(id="D\ud800", crm="hubspot", owner="x\ud800\x00%"), TUESDAY_10AM)
    for hostile in ["%", "_", "*", "every%", "everyone/", "", "\x00", "' OR 1=1 --", "é" * 5000]:
        assert router.store.assignments(AssignmentQuery(rule=hostile)) == []
        assert router.store.assignments(AssignmentQuery(rep=hostile, source=hostile)) == []
        assert list(router.store.facts(AssignmentQuery(object_type=hostile))) == []
    (odd,) = router.store.assignments(AssignmentQuery(rep="x\ud800\x00%"))
    assert (odd.lead_id, odd.previous_owner) == ("D\ud800", "x\ud800\x00%")
    assert router.store.assignments(AssignmentQuery(), limit=0) == []
    assert router.store.assignments(AssignmentQuery(), before=1) == []
    assert router.store.assignments(AssignmentQuery(), before=-7) == []


# The console's statistics counted by the store: ``fact_tallies`` against the reference meaning
# (``stats_tally.tally_facts`` over the same store's facts).


def fill_statistics_log(router: Router) -> None:
    """Forty leads over 40 hours (every seventh decided a day early, so ids do not follow
    time) from three sources; SLAs settled, rotated, escalated or left open (some past their
    deadline); failed write-backs; contacts, and conversions either side of a 30-day window
    down to the microsecond; and a kept decision."""
    made = []
    for i in range(40):
        when = TUESDAY_10AM + timedelta(hours=i - (24 if i % 7 == 6 else 0), microseconds=i)
        source = ("hubspot", "api", "sweep")[i % 3]
        entry = "sla-escalate:everyone" if i % 11 == 10 else None
        result = router.route(Lead(id=f"S{i % 30}", crm="hubspot"), when, source=source,
                              entry=entry)  # fmt: skip
        assert result.record is not None
        made.append((result.record.id, when))
    kept = router.route(Lead(id="K", crm="hubspot", owner="101"), TUESDAY_10AM).record
    assert kept is not None and kept.decision.outcome == "kept"
    made.append((kept.id, TUESDAY_10AM))
    router.store.settle(
        {record_id: (
            {"status": "settled", "outcome": "contacted", "ttft_s": 0.1 + n * 37.3}
            if n % 4 == 0 else
            {"status": "settled", "outcome": ("rotated", "escalated")[n % 2], "ttft_s": None}
            if n % 4 == 1 else
            {"status": "settled", "outcome": "contacted", "ttft_s": 90.0}  # equal values
            if n % 4 == 2 else {}
        ) for n, (record_id, _) in enumerate(made[:40]) if n % 4 != 3 and n % 11 != 10}
    )  # fmt: skip
    window = timedelta(days=30)
    router.store.set_writebacks(
        {record_id: ("failed", "503") for n, (record_id, _) in enumerate(made) if n % 6 == 1},
        TUESDAY_10AM,
    )
    router.store.record_outcomes(
        {record_id: {
            "contacted_at": (when + timedelta(minutes=5)).isoformat(),
            **({"converted_at": (when + window + timedelta(microseconds=n % 3 - 1)).isoformat()}
               if n % 2 else {}),
        } for n, (record_id, when) in enumerate(made) if n % 3 != 2}
    )  # fmt: skip


def statistics_config_data() -> dict:
    """The SLA team, and a rule that keeps a lead's owner (a decision that assigns nothing)."""
    data = sla_config_data()
    owned = {"name": "owned", "when": {"owner": {"exists": True}}, "assign": {"keep": True}}
    data["flow"] = [owned, *data["flow"]]
    return data


def tally_queries() -> list[TallyQuery]:
    """Periods before, across and after the log; now inside it (records after now); windows
    that make some records mature; the console's own period starts; no times to first touch."""
    late = TUESDAY_10AM + timedelta(days=30, hours=30)  # the last 10 hours not mature
    inside = TUESDAY_10AM + timedelta(hours=20)
    day = timedelta(days=1)
    return [
        TallyQuery(TUESDAY_10AM - day, late, timedelta(days=30)),
        TallyQuery(
            TUESDAY_10AM + timedelta(hours=5),
            inside,
            timedelta(hours=3),
            tuple(period_starts(inside, "America/New_York").values()),
        ),  # fmt: skip
        TallyQuery(
            TUESDAY_10AM - 2 * day,
            late + 40 * day,
            timedelta(days=30),
            (TUESDAY_10AM + timedelta(hours=30), TUESDAY_10AM - 5 * day),
        ),  # fmt: skip
        TallyQuery(TUESDAY_10AM + timedelta(hours=10), late, timedelta(days=30), ttfts=False),
        TallyQuery(late + day, late + 2 * day, timedelta(days=1)),  # nothing in the period
        # now at an open SLA's deadline (lead 11's: decided at 10:00 + 11h + 11 µs): not breached
        TallyQuery(
            TUESDAY_10AM,
            TUESDAY_10AM + timedelta(hours=11, minutes=15, microseconds=11),
            timedelta(hours=1),
        ),  # fmt: skip
    ]


@pytest.mark.parametrize("query", tally_queries(), ids=repr)
def test_fact_tallies_count_as_the_reference_over_the_facts(make_router, query):
    router = make_router(statistics_config_data())
    fill_statistics_log(router)
    expected = tally_facts(router.store.facts(AssignmentQuery()), query)
    assert router.store.fact_tallies(query) == expected


def test_the_statistics_scenario_exercises_every_count(make_router):
    router = make_router(statistics_config_data())
    fill_statistics_log(router)
    tallies = [t for query in tally_queries() for t in router.store.fact_tallies(query)]
    assert any(t.rep is None for t in tallies), "no kept or unassigned group"
    for name in ("leads", "up_to_now", "under_sla", "rotated_away", "escalated_away",
                 "escalations_received", "open_breaches", "contacted", "mature", "converted",
                 "converted_recently", "failed_writebacks"):  # fmt: skip
        assert sum(getattr(t, name) for t in tallies), f"{name} is 0 everywhere: a weak test"
    assert sum(sum(t.since_starts) for t in tallies)
    assert sum(len(t.ttfts_sla) for t in tallies) > 5
    # Converted exactly at the window's end counts, a microsecond after it does not.
    first = router.store.fact_tallies(tally_queries()[0])
    assert 0 < sum(t.converted for t in first) < sum(t.mature for t in first)


def test_fact_tallies_of_an_empty_store_are_empty(store):
    assert store.fact_tallies(tally_queries()[0]) == []


# The outbox: work a decision leaves for a background flusher, in the decision's own commit.


def enqueue(router: Router, lead_id: str, key: str | None = None) -> RouteRequest:
    request = RouteRequest(
        lead(lead_id),
        TUESDAY_10AM,
        idempotency_key=key or f"hubspot:{lead_id}",
        writes_back=True,
        outbox=lambda decision: {"contact": lead_id, "owner": decision.owner_crm_id},
    )
    router.route_many([request])
    return request


def test_a_decision_and_its_outbox_item_are_recorded_in_one_commit(make_router, store):
    router = make_router()
    enqueue(router, "L1")
    (record,) = store.log()
    assert store.outbox_size() == 1
    claimed = store.outbox_claim(10, LEASE, TUESDAY_10AM)
    assert list(claimed) == [record.id]
    item = claimed[record.id]
    assert item["payload"] == {"contact": "L1", "owner": record.decision.owner_crm_id}
    assert item["attempts"] == 0
    # The decision's write-back is pending, and no delivery claimed it: the flusher writes it.
    assert store.writeback(record.id)["status"] == "pending"
    with store.transaction() as tx:
        assert tx.claim_writeback(record.id, LEASE, TUESDAY_10AM)


def test_a_replayed_decision_enqueues_nothing_twice(make_router, store):
    router = make_router()
    for _ in range(3):
        enqueue(router, "L1", key="hubspot:cb-1")
    assert store.outbox_size() == 1


def test_a_failed_decision_enqueues_nothing(make_router, store):
    router = make_router()

    def broken(decision):
        raise RuntimeError("the payload could not be made")

    request = RouteRequest(lead("L1"), TUESDAY_10AM, idempotency_key="k", outbox=broken)
    with pytest.raises(RuntimeError):
        router.route_many([request])
    assert list(store.log()) == [] and store.outbox_size() == 0


def test_an_outbox_claim_holds_for_its_lease_and_takes_the_oldest_first(make_router, store):
    router = make_router()
    for n in range(5):
        enqueue(router, f"L{n}")
    first = store.outbox_claim(3, LEASE, TUESDAY_10AM)
    assert list(first) == [1, 2, 3]
    assert list(store.outbox_claim(10, LEASE, TUESDAY_10AM + LEASE / 2)) == [4, 5]
    assert store.outbox_claim(10, LEASE, TUESDAY_10AM + LEASE / 2) == {}
    # A flusher that died: its claims lapse and the next one takes them.
    assert list(store.outbox_claim(10, LEASE, TUESDAY_10AM + LEASE * 2)) == [1, 2, 3, 4, 5]


def test_done_items_leave_and_changed_ones_wait_for_their_retry_time(make_router, store):
    router = make_router()
    for n in range(3):
        enqueue(router, f"L{n}")
    now = TUESDAY_10AM
    store.outbox_claim(10, LEASE, now)
    retry_at = (now + timedelta(seconds=30)).astimezone(UTC).isoformat()
    store.outbox_update(
        [1],
        now,
        {2: {"payload": {"written": True}, "retry_at": retry_at, "error": "503"}, 3: {}},
    )
    assert store.outbox_size() == 2
    again = store.outbox_claim(10, LEASE, now + timedelta(seconds=1))
    assert list(again) == [3] and again[3]["attempts"] == 1
    later = store.outbox_claim(10, LEASE, now + timedelta(seconds=31))
    assert later[2]["payload"] == {"written": True}
    assert (later[2]["attempts"], later[2]["error"]) == (1, "503")
    store.outbox_update([2, 3, 99], now)  # an id no longer there is no error
    assert store.outbox_size() == 0


def claim_all(url: str, out: str, rounds: int) -> None:
    """Worker: claim outbox items a few at a time and write down which it got."""
    store = open_store(url)
    got = []
    for _ in range(rounds):
        got.extend(store.outbox_claim(7, LEASE, TUESDAY_10AM))
    Path(out).write_text(",".join(map(str, got)))
    store.close()


def test_two_processes_never_claim_the_same_outbox_item(tmp_path, make_router, store_url):
    make_router().route_many(
        [
            RouteRequest(
                lead(f"L{n}"),
                TUESDAY_10AM,
                idempotency_key=f"k{n}",
                outbox=lambda decision: {"n": 1},
            )  # fmt: skip
            for n in range(200)
        ]
    )
    ctx = multiprocessing.get_context("spawn")
    outs = [tmp_path / f"claimed{n}" for n in range(2)]
    workers = [
        ctx.Process(target=claim_all, args=(store_url, str(out), 40), daemon=True) for out in outs
    ]
    finish(workers, seconds=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    claimed = [int(x) for out in outs for x in out.read_text().split(",") if x]
    assert sorted(claimed) == list(range(1, 201))


# -- follow-up tasks (task:<id> beside wb:<id>) -------------------------------------------------


def wanted(record, owner: str = "005A", create: bool = True):
    return {record.id: {"crm": record.crm, "lead_id": record.lead_id, "owner": owner,
                        "create": create}}  # fmt: skip


def test_a_task_claim_holds_for_its_lease_and_a_made_task_is_never_claimed_again(
    make_router, store
):
    record = make_router().route(lead(), TUESDAY_10AM).record
    assert record is not None
    (claim,) = store.claim_tasks(wanted(record), LEASE, TUESDAY_10AM).values()
    assert claim["action"] == "create" and claim["row"]["status"] == "pending"
    # A concurrent delivery of the same decision finds the claim held.
    (busy,) = store.claim_tasks(wanted(record), LEASE, TUESDAY_10AM + LEASE / 2).values()
    assert busy["action"] == "busy"
    store.set_tasks({record.id: {"status": "created", "task_id": "T1"}}, TUESDAY_10AM)
    row = store.task(record.id)
    assert row is not None
    assert (row["status"], row["task_id"], row["attempts"], row["claimed_until"]) == (
        "created", "T1", 1, "",
    )  # fmt: skip
    (done,) = store.claim_tasks(wanted(record), LEASE, TUESDAY_10AM + LEASE * 9).values()
    assert done["action"] == "done" and done["row"]["task_id"] == "T1"


def test_a_failed_task_is_claimed_again_once_and_a_final_failure_never(make_router, store):
    router = make_router()
    a = router.route(lead("A"), TUESDAY_10AM).record
    b = router.route(lead("B"), TUESDAY_10AM).record
    assert a is not None and b is not None
    store.claim_tasks({**wanted(a), **wanted(b)}, LEASE, TUESDAY_10AM)
    store.set_tasks(
        {a.id: {"status": "failed", "detail": "503"},
         b.id: {"status": "failed", "detail": "no such record", "final": True}},
        TUESDAY_10AM,
    )  # fmt: skip
    claims = store.claim_tasks({**wanted(a), **wanted(b)}, LEASE, TUESDAY_10AM)
    assert (claims[a.id]["action"], claims[b.id]["action"]) == ("create", "done")
    again = store.claim_tasks(wanted(a), LEASE, TUESDAY_10AM)
    assert again[a.id]["action"] == "busy"


def test_a_later_decision_moves_the_leads_task_instead_of_making_another(make_router, store):
    router = make_router()
    first = router.route(lead("L1"), TUESDAY_10AM, idempotency_key="one").record
    assert first is not None
    store.claim_tasks(wanted(first, "005A"), LEASE, TUESDAY_10AM)
    store.set_tasks({first.id: {"status": "created", "task_id": "T1"}}, TUESDAY_10AM)
    second = router.route(lead("L1"), TUESDAY_10AM, idempotency_key="two").record
    assert second is not None
    (claim,) = store.claim_tasks(wanted(second, "005B"), LEASE, TUESDAY_10AM).values()
    assert (claim["action"], claim.get("task_id")) == ("move", "T1")
    assert claim["row"]["moved_from"] == first.id
    store.set_tasks({second.id: {"status": "moved", "task_id": "T1"}}, TUESDAY_10AM)
    # The first decision's redelivery now creates nothing: its moment has passed.
    (late,) = store.claim_tasks(wanted(first), LEASE, TUESDAY_10AM + LEASE * 2).values()
    assert late["action"] == "done"


def test_no_task_wanted_and_none_to_move_writes_nothing(make_router, store):
    record = make_router().route(lead(), TUESDAY_10AM).record
    assert record is not None
    (claim,) = store.claim_tasks(wanted(record, create=False), LEASE, TUESDAY_10AM).values()
    assert claim["action"] == "none"
    assert store.task(record.id) is None
