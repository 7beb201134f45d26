"""The HubSpot API calls: batches, budgets, retries and the shared limiter."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
from budget_helpers import budget_at
from conftest import lead
from fakes.hubspot_api import TOKEN, fake_hubspot  # noqa: F401 (fixture)
from hubspot import HubSpot
from hubspot.crm.contacts import PublicObjectSearchRequest

from adapters.hubspot.client import HubSpotApi
from adapters.hubspot.limits import RateLimiter, RetryPolicy, _message
from workflows.errors import CrmError
from workflows.model import Decision


def api_for(fake, **policy):
    return HubSpotApi(access_token=TOKEN, host=fake.url, policy=RetryPolicy(**policy))


def decided(lead_id, owner):
    decision = Decision(lead_id, "r", "assigned", "x", "", owner_crm_id=owner)
    return lead(lead_id, crm="hubspot"), decision


def test_several_owners_are_written_in_one_batch_call(fake_hubspot):
    for contact_id in ("1", "2", "3"):
        fake_hubspot.add_contact(contact_id)
    api = api_for(fake_hubspot)
    batch = [decided("1", "101"), decided("2", "102"), decided("3", "103")]
    assert api.write_owners(batch, api.deadline()) == {"1": None, "2": None, "3": None}
    (call,) = fake_hubspot.requests
    assert call.path == "/crm/v3/objects/contacts/batch/update"
    assert fake_hubspot.contacts["2"]["hubspot_owner_id"] == "102"


def test_batch_reports_each_contact_hubspot_refused(fake_hubspot):
    fake_hubspot.add_contact("1")
    api = api_for(fake_hubspot)
    result = api.write_owners([decided("1", "101"), decided("404", "102")], api.deadline())
    assert result["1"] is None
    assert isinstance(result["404"], CrmError) and not result["404"].retryable


def test_batches_are_split_at_100(fake_hubspot):
    for number in range(150):
        fake_hubspot.add_contact(str(number))
    api = api_for(fake_hubspot)
    result = api.write_owners([decided(str(n), "101") for n in range(150)], api.deadline())
    assert set(result.values()) == {None}
    assert [len(r.body["inputs"]) for r in fake_hubspot.requests] == [100, 50]


def test_timeouts_are_retried_and_give_up_before_the_deadline(fake_hubspot):
    fake_hubspot.add_contact("1")
    fake_hubspot.fail_next(0, times=5, delay=0.6)  # slower than the read timeout
    api = api_for(fake_hubspot, read_timeout=0.3, budget=1.5, first_backoff=0.05)
    started = time.monotonic()
    with pytest.raises(CrmError) as failed:
        api.read_contact("1", ["email"], api.deadline())
    assert failed.value.retryable
    assert "did not answer" in str(failed.value)
    assert time.monotonic() - started < 2.0


def test_persistent_5xx_stops_after_the_attempts_allowed(fake_hubspot):
    fake_hubspot.add_contact("1")
    fake_hubspot.fail_next(500, times=10)
    api = api_for(fake_hubspot, attempts=3, first_backoff=0.01)
    with pytest.raises(CrmError) as failed:
        api.read_contact("1", ["email"], api.deadline())
    assert (failed.value.retryable, failed.value.status) == (True, 500)
    assert len(fake_hubspot.requests) == 3


def test_not_found_is_not_retried(fake_hubspot):
    api = api_for(fake_hubspot)
    with pytest.raises(CrmError) as failed:
        api.read_contact("404", ["email"], api.deadline())
    assert (failed.value.retryable, failed.value.status) == (False, 404)
    assert len(fake_hubspot.requests) == 1


def test_limiter_spaces_calls_from_many_threads_to_its_rate():
    limiter = RateLimiter(per_second=20, burst=2)
    stamps: list[float] = []

    def take():
        limiter.acquire(time.monotonic() + 5)
        stamps.append(time.monotonic())

    threads = [threading.Thread(target=take) for _ in range(10)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 2 at once, then 8 more at 20 per second: at least 0.4 s.
    assert max(stamps) - started >= 0.35


def test_limiter_refuses_at_once_when_the_wait_would_pass_the_deadline():
    now = [100.0]
    limiter = RateLimiter(per_second=1, burst=1, clock=lambda: now[0], sleep=lambda s: None)
    limiter.acquire(deadline=101)
    limiter.pause(30)
    with pytest.raises(CrmError) as refused:
        limiter.acquire(deadline=110)
    assert refused.value.retryable
    now[0] += 31
    limiter.acquire(deadline=140)


def test_fake_search_pages_like_hubspot(fake_hubspot):
    # The sweeper will page owners' contacts through search; the fake answers in that shape.
    for number in range(5):
        fake_hubspot.add_contact(str(number), hubspot_owner_id="101" if number % 2 else "102")
    search = HubSpot(access_token=TOKEN, host=fake_hubspot.url).crm.contacts.search_api
    request = PublicObjectSearchRequest(
        filter_groups=[
            {"filters": [{"propertyName": "hubspot_owner_id", "operator": "EQ", "value": "102"}]}
        ],  # noqa: E501
        properties=["hubspot_owner_id"],
        limit=2,
    )
    first = search.do_search(request)
    assert (first.total, [r.id for r in first.results]) == (3, ["0", "2"])
    request.after = first.paging.next.after
    assert [r.id for r in search.do_search(request).results] == ["4"]


def test_error_messages_never_carry_the_developer_key():
    class Failure(Exception):
        body = None
        reason = "HTTPSConnectionPool: Max retries exceeded with url: /x?hapikey=dev-secret-1"

    assert "dev-secret-1" not in _message(Failure())


def _take_tokens(path: str, count: int, done) -> None:
    """Worker process: spend ``count`` tokens of the bucket in ``path``, report the last time."""
    limiter = RateLimiter(per_second=20, burst=2, shared=budget_at(path))
    for _ in range(count):
        limiter.acquire(time.monotonic() + 10)
    done.put(time.monotonic())


def test_processes_sharing_a_bucket_file_stay_inside_one_budget(tmp_path):
    ctx = multiprocessing.get_context("fork")
    done = ctx.Queue()
    path = str(tmp_path / "portal.budget")
    started = time.monotonic()
    workers = [
        ctx.Process(target=_take_tokens, args=(path, 10, done), daemon=True) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    finished = max(done.get(timeout=30) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
    # 20 calls in all: 2 at once, then 18 at 20 per second, at least 0.9 s. Two separate
    # buckets would let both processes finish in 0.4 s.
    assert finished - started >= 0.85


def _wait_for_token(path: str, done) -> None:
    RateLimiter(per_second=20, burst=2, shared=budget_at(path)).acquire(time.monotonic() + 10)
    done.put(time.monotonic())


def test_retry_after_seen_by_one_process_holds_back_the_others(tmp_path):
    path = tmp_path / "portal.budget"
    paused_at = time.monotonic()
    RateLimiter(per_second=20, burst=2, shared=budget_at(path)).pause(1.0)
    ctx = multiprocessing.get_context("fork")
    done = ctx.Queue()
    worker = ctx.Process(target=_wait_for_token, args=(str(path), done), daemon=True)
    worker.start()
    got_token_at = done.get(timeout=30)
    worker.join(timeout=30)
    assert got_token_at - paused_at >= 1.0  # (time.monotonic is one clock for all processes)


def test_a_bucket_file_from_an_earlier_boot_starts_full(tmp_path):
    path = tmp_path / "portal.budget"
    clock = [1_000_000.0]
    spent = RateLimiter(per_second=1, burst=1, shared=budget_at(path), clock=lambda: clock[0])
    spent.acquire(clock[0] + 1)
    spent.pause(3600)
    # After a reboot the monotonic clock starts near zero again, far below the stored times.
    rebooted = RateLimiter(per_second=1, burst=1, shared=budget_at(path), clock=lambda: 5.0)
    rebooted.acquire(deadline=5.5)  # a full bucket, no pause: no wait, no refusal


def test_a_missing_company_is_no_account_owner_but_a_failing_read_stays_an_error(fake_hubspot):
    api = api_for(fake_hubspot, attempts=1)
    fake_hubspot.companies["78"] = {"name": "Initech"}  # a company without an owner
    assert api.find_account_owner({"associatedcompanyid": "77"}, api.deadline()).missing == (
        "company 77 not found"
    )
    assert api.find_account_owner({"associatedcompanyid": "78"}, api.deadline()).missing == (
        "company 78 has no owner"
    )
    fake_hubspot.fail_next(500, path="/crm/v3/objects/companies")
    with pytest.raises(CrmError) as failed:
        api.find_account_owner({"associatedcompanyid": "77"}, api.deadline())
    assert (failed.value.retryable, failed.value.status) == (True, 500)
