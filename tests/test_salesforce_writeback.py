"""Writing owners back with real simple-salesforce against the fake REST API: batching,
per-record results, outages, and Sforce-Auto-Assign on every write, re-login included."""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs, urlparse

import pytest
from fakes import salesforce_api
from fakes.salesforce_api import (
    REP_USERS,
)

from adapters.salesforce.api import list_users, owner_writer, write_owners
from adapters.salesforce.auth import SalesforceConnection, connect
from workflows.errors import CrmError
from workflows.model import Decision, Lead

fake_salesforce = salesforce_api.fake_salesforce  # the fixture, requested by name below

ALICE = REP_USERS["alice"]


def lead_id(n: int) -> str:
    return f"00Q5g0000{n:06d}"  # 15-character form: Salesforce takes both


def batch(count: int, owner: str = ALICE) -> list[tuple[Lead, Decision]]:
    return [
        (
            Lead(id=lead_id(n), crm="salesforce"),
            Decision(lead_id(n), "alice", "assigned", "everyone", "test", owner_crm_id=owner),
        )
        for n in range(count)
    ]


@pytest.fixture
def sf(fake_salesforce):
    return connect(os.environ, "59.0")  # the fake's access token, set by its fixture


def test_one_owner_is_one_sobject_update_carrying_auto_assign_false(sf, fake_salesforce):
    assert write_owners(sf, batch(1)) == {lead_id(0): None}
    (request,) = fake_salesforce.requests
    assert request.method == "PATCH"
    assert request.url.endswith(f"/services/data/v59.0/sobjects/Lead/{lead_id(0)}")
    assert request.headers["Sforce-Auto-Assign"] == "FALSE"


def test_many_owners_go_through_sobject_collections_200_at_a_time(sf, fake_salesforce):
    results = write_owners(sf, batch(450))
    assert set(results.values()) == {None} and len(results) == 450
    sizes = [len(json.loads(r.body)["records"]) for r in fake_salesforce.requests]
    assert sizes == [200, 200, 50]
    assert all(r.headers["Sforce-Auto-Assign"] == "FALSE" for r in fake_salesforce.requests)


def test_one_refused_record_does_not_fail_the_others(sf, fake_salesforce):
    fake_salesforce.refused[lead_id(1)] = ("ENTITY_IS_DELETED", "entity is deleted")
    fake_salesforce.refused[lead_id(2)] = ("UNABLE_TO_LOCK_ROW", "unable to obtain lock")
    results = write_owners(sf, batch(4))
    assert results[lead_id(0)] is None and results[lead_id(3)] is None
    deleted, locked = results[lead_id(1)], results[lead_id(2)]
    assert isinstance(deleted, CrmError) and "ENTITY_IS_DELETED" in str(deleted)
    assert not deleted.retryable
    assert isinstance(locked, CrmError) and locked.retryable
    assert sorted(fake_salesforce.owners) == [lead_id(0), lead_id(3)]


def test_a_refused_single_update_is_a_per_lead_error(sf, fake_salesforce):
    fake_salesforce.refused[lead_id(0)] = ("INVALID_CROSS_REFERENCE_KEY", "owner is inactive")
    error = write_owners(sf, batch(1))[lead_id(0)]
    assert isinstance(error, CrmError) and error.status == 400 and not error.retryable
    assert "owner is inactive" in str(error)


def test_an_outage_fails_the_rest_without_sending_it(sf, fake_salesforce):
    fake_salesforce.outage_after_writes = 1
    results = write_owners(sf, batch(100), chunk_size=40)
    assert [results[lead_id(n)] for n in range(40)] == [None] * 40
    failed = [results[lead_id(n)] for n in range(40, 100)]
    assert all(isinstance(e, CrmError) and e.retryable and e.status == 503 for e in failed)
    assert fake_salesforce.write_calls == 2


def test_an_owner_that_is_not_a_salesforce_user_is_never_sent(sf, fake_salesforce):
    results = write_owners(sf, batch(2, owner="alice"))
    assert all("salesforce_user_id" in str(e) for e in results.values())
    assert fake_salesforce.requests == []


def test_an_unreachable_salesforce_is_a_retryable_error(sf, fake_salesforce):
    fake_salesforce.mock.reset()  # nothing answers: responses raises ConnectionError
    error = write_owners(sf, batch(1))[lead_id(0)]
    assert isinstance(error, CrmError) and error.retryable


def test_chunk_size_is_bounded_by_salesforce_limit(sf):
    with pytest.raises(ValueError):
        write_owners(sf, batch(2), chunk_size=201)


# -- signing in again after expiry keeps the header ------------------------------------------
def test_relogin_after_expiry_signs_in_once_and_the_retried_write_keeps_the_header(
    fake_salesforce, monkeypatch
):

    for name in fake_salesforce.direct_env():
        monkeypatch.delenv(name)
    connection = SalesforceConnection("59.0", env=fake_salesforce.client_credentials_env())
    write = owner_writer(connection)
    assert write(batch(1)) == {lead_id(0): None}
    assert len(fake_salesforce.token_requests) == 1

    fake_salesforce.expire_tokens()
    assert write(batch(3)) == {lead_id(n): None for n in range(3)}
    assert len(fake_salesforce.token_requests) == 2  # one sign-in again, no more
    expired, retried = fake_salesforce.requests[-2:]
    assert expired.headers["Authorization"] != retried.headers["Authorization"]
    assert retried.headers["Sforce-Auto-Assign"] == "FALSE"
    assert all(w.headers["Sforce-Auto-Assign"] == "FALSE" for w in fake_salesforce.writes)


def test_a_bare_access_token_cannot_be_renewed(sf, fake_salesforce):
    fake_salesforce.expire_tokens()
    error = write_owners(sf, batch(2))[lead_id(0)]
    assert isinstance(error, CrmError) and error.status == 401 and not error.retryable
    assert "SALESFORCE_ACCESS_TOKEN" in str(error)
    assert "fake-direct-token" not in str(error)
    assert fake_salesforce.token_requests == []


# -- users ------------------------------------------------------------------------------------
def test_list_users_reads_every_page(sf, fake_salesforce):
    fake_salesforce.users = [
        {"Id": f"0055g00000User{n}AAA", "Name": f"User {n}", "Email": f"u{n}@acme.example",
         "Username": f"u{n}@acme.example"}
        for n in range(5)
    ]  # fmt: skip
    users = list_users(sf)
    assert [u.name for u in users] == [f"User {n}" for n in range(5)]
    assert len(fake_salesforce.requests) == 3  # pages of 2, following nextRecordsUrl
    (soql,) = parse_qs(urlparse(fake_salesforce.requests[0].url).query)["q"]
    assert "WHERE IsActive = true" in soql


def test_list_users_turns_failures_into_crm_errors(sf, fake_salesforce):
    fake_salesforce.down = True
    with pytest.raises(CrmError) as raised:
        list_users(sf)
    assert raised.value.retryable
