"""The log's projection alone: which columns each ledger row sets. Pure."""

from __future__ import annotations

from datetime import UTC, timedelta

from conftest import TUESDAY_10AM

from workflows import ledger
from workflows.log_projection import COLUMNS, facts_of, project, projected_key
from workflows.model import AssignmentRecord, Decision
from workflows.store import SlaState

DEADLINE = TUESDAY_10AM + timedelta(minutes=15)
SLA: SlaState = {
    "deadline": DEADLINE.isoformat(),
    "due_key": "2026-11-24T15:15:00.000000",
    "clock": "wall",
    "first_touch_s": 900,
    "max_reassignments": 1,
    "rotations": 1,
    "status": "open",
    "assigned_at": TUESDAY_10AM.isoformat(),
}


def record(log_id: int, lead_id: str = "L1") -> AssignmentRecord:
    decision = Decision(lead_id, "bob", "assigned", "enterprise/na", "round robin")
    return AssignmentRecord(log_id, TUESDAY_10AM, "hubspot", "contact", lead_id, "alice", "bob",
                            decision, "sweep")  # fmt: skip


def test_a_log_row_inserts_every_column_with_what_the_same_commit_sets():
    projection = project(
        {
            "meta:seq": 7,
            ledger.log_key(7): record(7).to_dict(),
            ledger.sla_key(7): SLA,
            ledger.writeback_key(7): ledger.writeback_status("pending", "", 0, TUESDAY_10AM),
            ledger.due_key(SLA["due_key"], 7): 7,
            "lead:hubspot:L1": {"log_ids": [7], "owners": ["bob"]},
        }
    )
    assert projection.updates == {} and projection.removals == []
    assert projection.inserts == {
        7: {
            "id": 7, "decided_at": "2026-11-24T15:00:00.000000", "crm": "hubspot",
            "object_type": "contact", "lead_id": "L1", "source": "sweep",
            "rule": "enterprise/na", "outcome": "assigned", "previous_owner": "alice",
            "new_owner": "bob", "sla_status": "open", "sla_outcome": None,
            "sla_deadline": "2026-11-24T15:15:00.000000", "ttft_s": None, "rotations": 1,
            "writeback_status": "pending", "contacted_at": None, "converted_at": None,
            "disqualified_at": None,
        }
    }  # fmt: skip
    assert list(projection.inserts[7]) == list(COLUMNS)


def test_rows_of_earlier_records_update_only_their_columns():
    settled: SlaState = {**SLA, "status": "settled", "outcome": "contacted", "ttft_s": 42}
    projection = project(
        {
            ledger.sla_key(3): settled,
            ledger.writeback_key(4): ledger.writeback_status("failed", "503", 1, TUESDAY_10AM),
            ledger.outcome_key(3): {"converted_at": TUESDAY_10AM.isoformat()},
        },
        deletes=[ledger.due_key(SLA["due_key"], 3)],
    )
    assert projection.inserts == {} and projection.removals == []
    assert projection.updates == {
        3: {"sla_status": "settled", "sla_outcome": "contacted",
            "sla_deadline": "2026-11-24T15:15:00.000000", "ttft_s": 42.0, "rotations": 1,
            "contacted_at": None, "converted_at": "2026-11-24T15:00:00.000000",
            "disqualified_at": None},
        4: {"writeback_status": "failed"},
    }  # fmt: skip


def test_keys_outside_the_log_change_nothing():
    assert not project({"due:2026-11-24T15:15:00.000000:000000000003": 3, "pool:team": {},
                        "count:bob": ["2026-11-24", 3], "owner:email:x@y.io": "bob",
                        "idem:log:000000000001": 1, "log:12": {}})  # fmt: skip
    assert projected_key("wb:000000000012") == ("wb", 12)
    assert projected_key("owner:domain:x.io") is None


def test_a_deleted_log_row_removes_its_record():
    assert project({}, deletes=[ledger.log_key(5), ledger.sla_key(6)]).removals == [5]


def test_text_a_column_cannot_store_is_made_key_safe_and_times_are_utc():
    odd = record(1, lead_id="D\ud800")
    (row,) = project({ledger.log_key(1): odd.to_dict()}).inserts.values()
    assert row["lead_id"] == "D\\ud800"
    row["lead_id"].encode("utf-8")  # storable
    facts = facts_of([row[column] for column in COLUMNS])
    assert facts.decided_at == TUESDAY_10AM and facts.decided_at.tzinfo == UTC
    assert (facts.rule, facts.new_owner, facts.rotations) == ("enterprise/na", "bob", 0)


def test_a_value_with_no_columns_is_named_and_left_out():
    projection = project(
        {ledger.log_key(1): {"junk": 1}, ledger.sla_key(2): "not a state",
         ledger.writeback_key(3): ledger.writeback_status("written", "", 1, TUESDAY_10AM)}
    )  # fmt: skip
    assert projection.unreadable == ["log:000000000001", "sla:000000000002"]
    assert projection.inserts == {}
    assert projection.updates == {3: {"writeback_status": "written"}}


def test_times_are_the_same_text_as_the_deadline_index_keys():
    from zoneinfo import ZoneInfo

    from workflows.log_projection import time_key
    from workflows.sla_clock import to_key

    for zone in ("UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"):
        for step in range(0, 400 * 86_400, 7 * 86_400 + 3_607):
            moment = TUESDAY_10AM + timedelta(seconds=step, microseconds=step % 999_999)
            local = moment.astimezone(ZoneInfo(zone))
            assert time_key(local) == time_key(local.isoformat()) == to_key(local)
    assert time_key("2026-11-24T15:00:00") == "2026-11-24T15:00:00.000000"  # no zone: UTC
