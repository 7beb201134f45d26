"""A HubSpot 429 pauses every process's calls: for how long, what it says, and who lifts it."""

from __future__ import annotations

import logging
import math
import multiprocessing
import struct
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from budget_helpers import budget_at, pause_at
from fakes.hubspot_api import TOKEN, fake_hubspot  # noqa: F401 (fixture)

from adapters.hubspot.client import HubSpotApi, budget_limiter, pause_warnings
from adapters.hubspot.limits import RateLimiter, RetryPolicy
from adapters.hubspot.pause import MAX_PAUSE
from workflows.errors import CrmError
from workflows.store_registry import open_store

START = 1000.0  # a monotonic clock time every process of a test agrees on


def api_for(fake, budget: Path | None = None, **policy) -> HubSpotApi:
    limiter = RateLimiter(shared=budget_at(budget)) if budget else None
    return HubSpotApi(
        access_token=TOKEN, host=fake.url, limiter=limiter, policy=RetryPolicy(**policy)
    )


def _acquire_at(path: str, at: float, done) -> None:
    """Worker process: ask for a token at clock time ``at``, ready to wait half a second."""
    limiter = RateLimiter(per_second=1, burst=1, shared=budget_at(path), clock=lambda: at,
                          sleep=lambda _: None)  # fmt: skip
    try:
        limiter.acquire(at + 0.5)
        done.put("token")
    except CrmError as exc:
        done.put(str(exc))


def in_another_process(path: Path, at: float) -> str:
    ctx = multiprocessing.get_context("fork")
    done = ctx.Queue()
    worker = ctx.Process(target=_acquire_at, args=(str(path), at, done), daemon=True)
    worker.start()
    answer = done.get(timeout=30)
    worker.join(timeout=30)
    return answer


def test_an_hour_long_retry_after_holds_other_processes_back_a_minute_at_most(tmp_path):
    path = tmp_path / "portal.budget"
    RateLimiter(per_second=1, burst=1, shared=budget_at(path), clock=lambda: START).pause(3600)
    refused = in_another_process(path, START + MAX_PAUSE - 1)
    assert "paused until" in refused and "(HubSpot asked for 3600 s, capped at 60 s)" in refused
    assert in_another_process(path, START + MAX_PAUSE) == "token"


def test_a_pause_is_logged_once_however_many_calls_it_holds_back(fake_hubspot, caplog):
    fake_hubspot.fail_next(429, retry_after="3600")
    api = api_for(fake_hubspot)
    with caplog.at_level(logging.WARNING, logger="leadrelay.hubspot"):
        for _ in range(5):
            with pytest.raises(CrmError) as failed:
                api.read_contact("1", ["email"], api.deadline())
            assert failed.value.retryable and "paused until" in str(failed.value)
    (logged,) = [r.getMessage() for r in caplog.records if "paused until" in r.getMessage()]
    assert (
        "(HubSpot asked for 3600 s, capped at 60 s) after a 429 while reading contact 1" in logged
    )
    assert len(fake_hubspot.requests) == 1


@pytest.mark.parametrize(
    ("retry_after", "why"),
    [
        ("7200", "HubSpot's daily limit is reached; HubSpot asked for 7200 s, capped at 3600 s"),
        (None, "HubSpot's daily limit is reached; no Retry-After; pausing 3600 s"),
    ],
)
def test_a_daily_limit_429_pauses_an_hour(fake_hubspot, tmp_path, retry_after, why):
    budget = tmp_path / "portal.budget"
    fake_hubspot.fail_next(429, retry_after=retry_after, policy="DAILY")
    api = api_for(fake_hubspot, budget)
    with pytest.raises(CrmError) as failed:
        api.read_contact("1", ["email"], api.deadline())
    assert why in str(failed.value)
    pause = pause_at(budget)
    assert pause is not None and pause.daily
    left = pause.until - datetime.now(UTC)
    assert timedelta(minutes=59) < left <= timedelta(hours=1)
    assert len(fake_hubspot.requests) == 1  # no retry into a limit that lasts the day


@pytest.mark.parametrize(
    "retry_after", ["nan", "inf", "1e400", "-5", "soon", "", "Wed, 21 Oct 2099 07:28:00 GMT"]
)
def test_a_hostile_retry_after_neither_crashes_nor_pauses_beyond_the_cap(fake_hubspot, retry_after):
    fake_hubspot.add_contact("1")
    fake_hubspot.fail_next(429, retry_after=retry_after, times=10)
    api = api_for(fake_hubspot, attempts=2, first_backoff=0.01)
    with pytest.raises(CrmError) as failed:
        api.read_contact("1", ["email"], api.deadline())
    assert failed.value.retryable
    pause = api.limiter.paused()
    assert pause is None or pause.until - datetime.now(UTC) <= timedelta(seconds=MAX_PAUSE)


def test_resume_lifts_the_pause_for_every_process_and_says_what_it_lifted(tmp_path):
    path = tmp_path / "portal.budget"
    RateLimiter(per_second=1, burst=1, shared=budget_at(path), clock=lambda: START).pause(30)
    lifted = RateLimiter(shared=budget_at(path), clock=lambda: START + 1).resume()
    assert lifted is not None and lifted.asked == 30
    assert in_another_process(path, START + 2) == "token"
    assert RateLimiter(shared=budget_at(path), clock=lambda: START + 3).resume() is None


def test_check_reads_a_budget_without_creating_or_changing_it(tmp_path, make_config):
    config = make_config(store=f"sqlite:///{tmp_path}/state.sqlite")
    assert pause_warnings(config) == []
    assert not list(tmp_path.glob("*.budget"))
    store = open_store(config.store_url)
    try:
        budget_limiter(config, TOKEN, lambda: store).pause(30)
        (path,) = tmp_path.glob("state.sqlite.hubspot-*.budget")
        before = path.read_bytes()
        (warning,) = pause_warnings(config)
        assert "HubSpot asked for 30 s" in warning and path.read_bytes() == before
    finally:
        store.close()


def test_a_garbled_budget_file_is_read_as_a_fresh_bucket(tmp_path):
    path = tmp_path / "portal.budget"
    path.write_bytes(b"\xff" * 33)  # NaNs where the times should be
    assert pause_at(path) is None
    assert in_another_process(path, START) == "token"


# -- a budget file leadrelay did not write -----------------------------------------------------
BUDGET_FORMAT = struct.Struct("<4d?")  # tokens, updated, paused_until, asked, daily


def write_budget(
    path: Path, *, tokens=8.0, updated=START, paused_until=0.0, asked=-1.0, daily=False
):
    path.write_bytes(BUDGET_FORMAT.pack(tokens, updated, paused_until, asked, daily))


CORRUPT = {
    "tokens=-1e300": {"tokens": -1e300},
    "tokens=1e300": {"tokens": 1e300},
    "tokens=nan": {"tokens": math.nan},
    "updated=-1e300": {"updated": -1e300},
    "paused_until=1e300": {"paused_until": 1e300},
    "paused_until=-inf": {"paused_until": -math.inf},
    "asked=inf": {"paused_until": START + 30, "asked": math.inf},
    "asked=nan": {"paused_until": START + 30, "asked": math.nan},
    "asked=-5.0": {"paused_until": START + 30, "asked": -5.0},
}


@pytest.mark.parametrize("fields", list(CORRUPT.values()), ids=list(CORRUPT))
def test_a_budget_file_holding_an_impossible_value_is_read_as_a_fresh_bucket_and_said_once(
    tmp_path, caplog, fields
):
    path = tmp_path / "portal.budget"
    write_budget(path, **fields)
    limiter = RateLimiter(per_second=1, burst=1, shared=budget_at(path), clock=lambda: START)
    with caplog.at_level(logging.WARNING, logger="leadrelay.hubspot"):
        limiter.acquire(deadline=START)  # a full bucket, no pause: no wait, no refusal
        limiter.acquire(deadline=START + 1)  # the file now holds what the first call wrote
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings
    name = next(iter(fields)) if len(fields) == 1 else "asked"
    assert f"{path} holds {name}=" in warnings[0] and "fresh bucket" in warnings[0]


def test_an_infinite_retry_after_in_the_file_is_no_pause_for_check_calls_or_resume(tmp_path):
    path = tmp_path / "portal.budget"
    now = time.monotonic()
    write_budget(path, updated=now, paused_until=now + 30, asked=math.inf)
    assert pause_at(path) is None
    limiter = RateLimiter(shared=budget_at(path))
    limiter.acquire(time.monotonic() + 1)  # neither OverflowError nor a wait
    write_budget(path, updated=now, paused_until=now + 30, asked=math.inf)
    assert RateLimiter(shared=budget_at(path)).resume() is None


def test_resume_fills_the_bucket_whatever_the_file_held(tmp_path):
    path = tmp_path / "portal.budget"
    # Spent far ahead, as no leadrelay process could: without resume, no call for 30 s.
    write_budget(path, tokens=-30.0)
    limiter = RateLimiter(per_second=1, burst=1, shared=budget_at(path), clock=lambda: START)
    with pytest.raises(CrmError, match="budget exhausted"):
        limiter.acquire(START + 1)
    limiter.resume()
    tokens, updated, paused_until, asked, daily = BUDGET_FORMAT.unpack(path.read_bytes())
    assert (tokens, updated, paused_until, asked, daily) == (1.0, START, 0.0, -1.0, False)
    RateLimiter(per_second=1, burst=1, shared=budget_at(path), clock=lambda: START).acquire(START)
