"""The ledger alone: pure functions of the values a store read and the time it was given."""

from __future__ import annotations

import copy
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

from conftest import TUESDAY_10AM

from workflows import ledger
from workflows.model import AssignmentRecord, Decision
from workflows.store import LeadHistory, SlaState, SlaTerms

LEASE = timedelta(seconds=60)
TERMS: SlaTerms = {
    "deadline": "2026-11-24T15:15:00+00:00",
    "due_key": "2026-11-24T15:15:00.000000",
    "clock": "wall",
    "first_touch_s": 900,
    "max_reassignments": 1,
}


def record(log_id: int, source: str = "hubspot", owner: str = "bob") -> AssignmentRecord:
    decision = Decision("L1", owner, "assigned", "everyone", "round robin")
    return AssignmentRecord(log_id, TUESDAY_10AM, "hubspot", "contact", "L1", None, owner,
                            decision, source, lead_email="Pat@Acme.io")  # fmt: skip


def test_a_lease_is_compared_in_utc_whatever_the_zone_of_now():
    claimed = ledger.claim(
        ledger.writeback_status("pending", "", 0, TUESDAY_10AM), LEASE, TUESDAY_10AM
    )
    assert claimed is not None
    assert claimed["claimed_until"] == (TUESDAY_10AM + LEASE).astimezone(UTC).isoformat()
    tokyo = ZoneInfo("Asia/Tokyo")  # its local text sorts after New York's for the same instant
    assert ledger.claim(claimed, LEASE, (TUESDAY_10AM + LEASE / 2).astimezone(tokyo)) is None
    assert ledger.claim(claimed, LEASE, (TUESDAY_10AM + LEASE * 2).astimezone(tokyo))


def test_recording_changes_none_of_the_values_it_was_given():
    history: LeadHistory = {"log_ids": [1], "owners": ["alice"], "sla_open": 1}
    previous: SlaState = {**TERMS, "rotations": 0, "status": "open", "assigned_at": "x"}
    given = copy.deepcopy((history, previous))
    rows = ledger.record_rows(
        record(2), history=history, previous_sla=previous, pool_states={}, daily_counts={},
        writeback="pending", terms=TERMS, aliases=("k2",), now=TUESDAY_10AM,
    )  # fmt: skip
    assert (history, previous) == given
    assert rows.writes["lead:hubspot:L1"] == {
        "log_ids": [1, 2], "owners": ["alice", "bob"], "sla_open": 2, "sla_rotations": 0,
    }  # fmt: skip
    assert rows.writes["sla:000000000001"]["status"] == "superseded"
    assert rows.deletes == ["due:2026-11-24T15:15:00.000000:000000000001"]
    assert rows.writes["owner:email:pat@acme.io"] == "bob"
    assert rows.writes["idem:k2"] == 2


def test_an_open_sla_settled_to_the_same_deadline_stays_on_the_index():
    state: SlaState = {**TERMS, "rotations": 0, "status": "open", "assigned_at": "x"}
    rows = ledger.settle_rows({7: {"detail": "noted"}}, {7: state})
    key = "due:2026-11-24T15:15:00.000000:000000000007"
    assert rows.deletes == [key] and rows.writes[key] == 7  # deletes apply first
    assert rows.writes["sla:000000000007"]["detail"] == "noted"


def test_outcome_times_keep_the_first_of_each_and_the_newest_check_in_utc():
    tokyo = TUESDAY_10AM.astimezone(ZoneInfo("Asia/Tokyo"))
    first = ledger.merge_outcomes(None, {"contacted_at": tokyo.isoformat(),
                                         "checked_at": tokyo.isoformat()})  # fmt: skip
    utc = TUESDAY_10AM.astimezone(UTC)
    assert first == {"contacted_at": utc.isoformat(), "checked_at": utc.isoformat()}
    later = (TUESDAY_10AM + timedelta(hours=1)).isoformat()
    earlier = (TUESDAY_10AM - timedelta(hours=1)).isoformat()
    merged = ledger.merge_outcomes(first, {"contacted_at": later, "converted_at": later,
                                           "checked_at": earlier})  # fmt: skip
    assert merged["contacted_at"] == utc.isoformat()  # heard first, kept
    assert merged["converted_at"] == (utc + timedelta(hours=1)).isoformat()
    assert merged["checked_at"] == utc.isoformat()  # an older read does not move it back
    assert first == {"contacted_at": utc.isoformat(), "checked_at": utc.isoformat()}


def test_outcome_rows_skip_unknown_ids_and_unchanged_times():
    when = TUESDAY_10AM.astimezone(UTC).isoformat()
    rows = ledger.outcome_rows(
        {1: {"contacted_at": when}, 2: {"contacted_at": when}, 3: {"checked_at": when}},
        {1: None, 3: {"checked_at": when}},
        known={1, 3},
    )
    assert rows.writes == {"outcome:000000000001": {"contacted_at": when}}
    assert rows.deletes == []


def test_an_outcome_time_that_is_not_iso_is_refused_by_name():
    import pytest

    with pytest.raises(ValueError, match="not an ISO time: 'yesterday'"):
        ledger.merge_outcomes(None, {"contacted_at": "yesterday"})
