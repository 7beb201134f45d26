"""The store's deadline index: recorded with the assignment, streamed in order, settled."""

from __future__ import annotations

from datetime import timedelta

from conftest import TUESDAY_10AM
from sweep_helpers import sla_config_data

from workflows.model import Lead
from workflows.sla_clock import to_key


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
