"""Deliveries from a CRM: decide once, write once, retry only what failed."""

from __future__ import annotations

from conftest import TUESDAY_10AM, lead, owners

from workflows.delivery import Inbound, deliver
from workflows.errors import CrmError


class FakeWriter:
    """Stands in for an adapter's owner write-back; can fail chosen leads."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, str]]] = []
        self.failing: set[str] = set()

    def __call__(self, batch):
        self.calls.append([(lead.id, decision.owner_crm_id) for lead, decision in batch])
        return {
            lead.id: CrmError("503 from CRM", retryable=True) if lead.id in self.failing else None
            for lead, _ in batch
        }


def test_retried_delivery_writes_nothing_twice_and_rotates_nothing(make_router, store):
    router, writer = make_router(), FakeWriter()
    batch = [Inbound(lead(f"L{i}", crm="api"), f"msg-{i}") for i in range(3)]
    first = deliver(router, batch, TUESDAY_10AM, source="test", write=writer)
    again = deliver(router, batch, TUESDAY_10AM, source="test", write=writer)
    assert [d.status for d in first] == ["written"] * 3
    assert [d.status for d in again] == ["written"] * 3
    assert writer.calls == [[("L0", "alice"), ("L1", "bob"), ("L2", "chen")]]
    assert len(list(store.log())) == 3
    assert owners(router, 1) == ["alice"]


def test_failed_write_is_retried_on_redelivery_without_deciding_again(make_router, store):
    router, writer = make_router(), FakeWriter()
    batch = [Inbound(lead(f"L{i}"), f"msg-{i}") for i in range(3)]
    writer.failing = {"L1"}
    first = deliver(router, batch, TUESDAY_10AM, source="test", write=writer)
    assert [d.done for d in first] == [True, False, True]
    writer.failing = set()
    again = deliver(router, batch, TUESDAY_10AM, source="test", write=writer)
    assert [d.status for d in again] == ["written"] * 3
    assert writer.calls[1] == [("L1", "bob")]  # only what was left, to the same owner
    record = again[1].result.record
    assert record is not None
    assert store.writeback(record.id)["attempts"] == 2


def test_whole_batch_failure_marks_every_lead_for_retry(make_router):
    router = make_router()

    def down(batch):
        raise CrmError("CRM unreachable", retryable=True)

    results = deliver(router, [Inbound(lead("L1"), "k1")], TUESDAY_10AM, source="t", write=down)
    assert results[0].status == "failed" and "unreachable" in str(results[0].error)


def test_output_mode_writes_nothing(make_router, store):
    results = deliver(make_router(), [Inbound(lead(), "k")], TUESDAY_10AM, source="t", write=None)
    assert results[0].status == "not_needed"
    assert results[0].result.decision.rep_id == "alice"


def test_kept_owner_is_logged_and_not_written(make_router, store):
    writer = FakeWriter()
    item = Inbound(lead(owner="005USER"), "k", keep_reason="owned by a user; not reassigned")
    (result,) = deliver(make_router(), [item], TUESDAY_10AM, source="t", write=writer)
    assert (result.status, result.result.decision.outcome) == ("not_needed", "kept")
    assert writer.calls == []
    assert [r.decision.reason for r in store.log()] == ["owned by a user; not reassigned"]


def test_same_lead_twice_in_one_delivery_is_decided_once(make_router, store):
    writer = FakeWriter()
    batch = [Inbound(lead("L1"), "n1"), Inbound(lead("L1"), "n2")]
    results = deliver(make_router(), batch, TUESDAY_10AM, source="t", write=writer)
    assert results[0].result is results[1].result
    assert writer.calls == [[("L1", "alice")]]
    assert len(list(store.log())) == 1


def test_entry_routes_from_a_pool_instead_of_the_flow(make_router):
    router = make_router(
        pools={
            "team": {"members": ["alice", "bob", "chen"], "strategy": "round_robin"},
            "night": {"members": ["chen"], "strategy": "round_robin"},
        }
    )
    item = Inbound(lead(), "k", entry="night")
    (result,) = deliver(router, [item], TUESDAY_10AM, source="t", write=None)
    assert (result.result.decision.rep_id, result.result.decision.rule) == ("chen", "pool:night")


def test_failure_retrying_cannot_fix_is_done_and_recorded_as_failed(make_router, store):
    def refuse(batch):
        return {lead.id: CrmError("ENTITY_IS_DELETED", retryable=False) for lead, _ in batch}

    (result,) = deliver(
        make_router(), [Inbound(lead(), "k")], TUESDAY_10AM, source="t", write=refuse
    )
    assert (result.status, result.done) == ("failed", True)
    assert result.result.record is not None
    assert store.writeback(result.result.record.id)["detail"] == "ENTITY_IS_DELETED"


def test_a_retry_arriving_while_the_first_delivery_writes_does_not_write_again(make_router):
    router = make_router()
    item = Inbound(lead("L1"), "cb-1")
    seen: list = []

    def slow_write(batch):
        # HubSpot retries while our first write is still under way.
        seen.extend(deliver(router, [item], TUESDAY_10AM, source="t", write=slow_write))
        return {lead.id: None for lead, _ in batch}

    (first,) = deliver(router, [item], TUESDAY_10AM, source="t", write=slow_write)
    (retry,) = seen
    assert (first.status, retry.status, retry.done) == ("written", "in_progress", False)
    (later,) = deliver(router, [item], TUESDAY_10AM, source="t", write=slow_write)
    assert (later.status, later.done) == ("written", True)
    assert len(seen) == 1  # the later retry found the owner written and wrote nothing
