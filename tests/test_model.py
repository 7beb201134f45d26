"""The common model reads loose input (JSON, CSV, CRM strings) and refuses what it cannot."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workflows.errors import LeadError
from workflows.model import OUTCOMES, AssignmentRecord, Decision, Lead, one_of


def test_domain_is_derived_from_email():
    assert Lead.from_dict({"id": "1", "email": "Pat@Example.COM"}).domain == "example.com"


def test_numbers_arrive_as_crm_text():
    lead = Lead.from_dict({"id": "1", "employees": "1,200", "annual_revenue": "2.5e6", "score": ""})
    assert (lead.employees, lead.annual_revenue, lead.score) == (1200, 2_500_000, None)
    assert Lead.from_dict({"id": "1", "employees": "1000+"}).employees == 1000
    assert Lead.from_dict({"id": "1", "employees": "25-50"}).employees == 25


@pytest.mark.parametrize("value", ["NaN", "inf", "lots", True])
def test_a_number_that_is_not_finite_is_refused(value):
    with pytest.raises(LeadError) as bad:
        Lead.from_dict({"id": "1", "employees": value})
    assert bad.value.field == "employees"


def test_times_are_iso_8601_or_epoch_milliseconds():
    iso = Lead.from_dict({"id": "1", "created_at": "2026-12-01T10:00:00-05:00"}).created_at
    epoch = Lead.from_dict({"id": "1", "created_at": "1796137200000"}).created_at
    compact = Lead.from_dict({"id": "1", "created_at": "20261201"}).created_at
    assert iso == datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    assert epoch == datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    assert compact == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("value", ["99999999999999999999", "yesterday", float("nan")])
def test_a_time_that_cannot_be_read_is_refused(value):
    with pytest.raises(LeadError) as bad:
        Lead.from_dict({"id": "1", "created_at": value})
    assert bad.value.field == "created_at"


def test_raw_must_be_an_object_and_unknown_keys_go_to_raw():
    with pytest.raises(LeadError) as bad:
        Lead.from_dict({"id": "1", "raw": "x"})
    assert bad.value.field == "raw"
    assert Lead.from_dict({"id": "1", "hs_custom": "y"}).raw == {"hs_custom": "y"}


def test_a_lead_needs_an_id():
    with pytest.raises(LeadError) as bad:
        Lead.from_dict({"email": "a@b.com"})
    assert bad.value.field == "id"


def record_data(outcome: str) -> dict[str, object]:
    decision = Decision("1", "ana", "assigned", "fallback", "the fallback pool")
    record = AssignmentRecord(7, datetime(2026, 1, 5, tzinfo=UTC), "none", "lead", "1", None,
                              "ana", decision, "api")  # fmt: skip
    data = record.to_dict()
    data["decision"]["outcome"] = outcome
    return data


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_a_record_read_back_keeps_its_outcome(outcome):
    assert AssignmentRecord.from_dict(record_data(outcome)).decision.outcome == outcome


def test_a_stored_decision_with_an_unknown_outcome_is_refused_by_name():
    with pytest.raises(ValueError, match=r"decision.outcome: expected one of assigned, kept, "
                                         r"unassigned, queued, got 'rotated'"):  # fmt: skip
        AssignmentRecord.from_dict(record_data("rotated"))


def test_one_of_hands_back_the_choice_and_refuses_anything_else():
    assert one_of("kept", OUTCOMES, "outcome") == "kept"
    for wrong in ("Kept", "", None, 1):
        with pytest.raises(ValueError, match="outcome: expected one of"):
            one_of(wrong, OUTCOMES, "outcome")
