"""The common model reads loose input (JSON, CSV, CRM strings) and refuses what it cannot."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workflows.errors import LeadError
from workflows.model import Lead


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
