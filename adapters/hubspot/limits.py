"""Stay inside HubSpot's API budget and HubSpot's patience.

A portal's private app gets roughly 100-250 requests per 10 s, shared with every other
integration, while workflows may call us 20 times a second. So every call takes a token from
one bucket (the threads of a process share it, and with a bucket file every process on the
machine does), a 429's ``Retry-After`` pauses the bucket for all of them, and retries back
off but always end before ``deadline``: HubSpot waits about 30 s for an action's answer,
and we answer in well under 10 s, leaving HubSpot to retry later. How long a 429 may pause
everything, and how the pause reads, is ``hubspot_pause``'s business.
"""

from __future__ import annotations

import logging
import math
import random
import re
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import urllib3
from hubspot.automation.actions import ApiException as ActionsApiError
from hubspot.crm.companies import ApiException as CompaniesApiError
from hubspot.crm.contacts import ApiException as ContactsApiError
from hubspot.crm.objects import ApiException as ObjectsApiError
from hubspot.crm.objects.tasks import ApiException as TasksApiError
from hubspot.crm.owners import ApiException as OwnersApiError

from adapters.crm_metrics import budget_waited, rate_limited
from adapters.hubspot.pause import (
    DAILY_PAUSE,
    MAX_PAUSE,
    Pause,
    PausedError,
    error_body,
    is_daily_limit,
    pause_length,
    retry_after,
)
from workflows.errors import CrmError
from workflows.store import SharedValue

log = logging.getLogger("leadrelay.hubspot")

# Each generated API package has its own ApiException class.
# crm/v3/objects (companies, deals and tickets as objects) raises its own: without it, a 404,
# 429 or 5xx from those calls escaped every handler as a 500 with a stack trace.
API_ERRORS = (
    ActionsApiError,
    CompaniesApiError,
    ContactsApiError,
    ObjectsApiError,
    OwnersApiError,
    TasksApiError,
)
_HAPIKEY = re.compile(r"hapikey=[^&\s)'\"]+")
T = TypeVar("T")
# Opens the store's shared value that holds a budget: ``lambda: store.shared_value(name)``.
SharedBudget = Callable[[], AbstractContextManager[SharedValue]]


@dataclass
class _Bucket:
    tokens: float
    updated: float  # clock time of the last refill
    paused_until: float = 0.0
    asked: float = -1.0  # the Retry-After behind the pause (-1: none was sent)
    daily: bool = False  # the pause is for HubSpot's daily limit

    def pause(self, now: float, wall: float) -> Pause | None:
        """The pause in force at ``now`` (clock time; ``wall`` is the same moment in epoch s)."""
        if self.paused_until <= now:
            return None
        until = datetime.fromtimestamp(wall + self.paused_until - now, UTC)
        return Pause(until, self.asked if self.asked >= 0 else None, self.daily)


class _SharedBucket:
    """A bucket kept in a small value the store shares (``Store.shared_value``), read and
    written back under the value's cross-process lock: shared by every process of the store.

    gunicorn runs several workers and each runs an SLA sweeper; without this each process
    would spend the whole budget on its own. time.monotonic() is one clock for every process
    of a machine (CLOCK_MONOTONIC), so the times stored here mean the same to all of them.
    """

    _FORMAT = struct.Struct("<4d?")  # a value in an older, shorter format reads as none

    def __init__(self, open_value: SharedBudget) -> None:
        self._open_value = open_value

    @contextmanager
    def locked(self, clock: Callable[[], float], burst: int) -> Iterator[tuple[_Bucket, float]]:
        """The stored bucket (a full one when there is none yet) and the time, read once the
        lock is held; the bucket is written back on exit."""
        with self._open_value() as value:
            now = clock()  # after the lock: no other process can have stored a later time
            bucket = self.unpack(value.read(), now, value.where)
            if bucket is None:
                bucket = _Bucket(tokens=float(burst), updated=now)
            yield bucket, now
            value.write(self.pack(bucket))

    @classmethod
    def pack(cls, bucket: _Bucket) -> bytes:
        return cls._FORMAT.pack(
            bucket.tokens, bucket.updated, bucket.paused_until, bucket.asked, bucket.daily
        )

    @classmethod
    def unpack(cls, data: bytes, now: float, where: str) -> _Bucket | None:
        """The stored bucket; None when there is none yet, it predates a reboot, or it holds
        a value leadrelay never writes (then it is read as a fresh bucket, and said so)."""
        if len(data) != cls._FORMAT.size:
            return None
        bucket = _Bucket(*cls._FORMAT.unpack(data))
        # (A time later than now was stored before a reboot: the clock started over.)
        if math.isfinite(bucket.updated) and bucket.updated > now:
            return None
        problem = _out_of_range(bucket, now)
        if problem is not None:
            # Rewritten by the first call that takes a token, so said once, not per call.
            log.warning(
                "the HubSpot budget file %s holds %s; reading it as a fresh bucket", where, problem
            )
            return None
        return bucket


# What a bucket file written by leadrelay can hold. A full bucket holds at most
# 2 x 250 calls per 10 s (hubspot.max_calls_per_10s); callers reserve tokens ahead (a negative
# balance) only while they wait, and none waits an hour. A pause lasts at most its cap.
MAX_TOKENS = 50.0
MIN_TOKENS = -25.0 * DAILY_PAUSE
OLDEST = 10 * 365 * 86400.0  # an update older than ten years of uptime is not one


def _out_of_range(bucket: _Bucket, now: float) -> str | None:
    """What in ``bucket`` (read at clock time ``now``) leadrelay never writes, if anything."""
    longest = DAILY_PAUSE if bucket.daily else MAX_PAUSE
    checks = (
        ("tokens", bucket.tokens, MIN_TOKENS, MAX_TOKENS),
        ("updated", bucket.updated, now - OLDEST, now),
        # 0.0 is "never paused"; float rounding may put a fresh pause a hair past the cap.
        ("paused_until", bucket.paused_until, min(0.0, now - OLDEST), now + longest + 1.0),
    )
    for name, value, low, high in checks:
        if not (math.isfinite(value) and low <= value <= high):
            return f"{name}={value!r} (expected {low:g} to {high:g})"
    if bucket.asked != -1.0 and not (math.isfinite(bucket.asked) and bucket.asked >= 0):
        return f"asked={bucket.asked!r} (expected a finite number of seconds >= 0, or -1)"
    return None


class BudgetExhausted(CrmError):
    """No API token frees up within the wait allowed: try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("HubSpot API budget exhausted for now; try again later", retryable=True)
        self.retry_after = retry_after


class RateLimiter:
    """A token bucket shared by every thread of a process, paused by HubSpot's Retry-After.

    With ``shared`` (opens a value the store shares, ``Store.shared_value``) the bucket is
    also shared by every process of that store: all gunicorn workers and their sweepers then
    stay inside one budget together.
    """

    def __init__(
        self,
        per_second: float = 4.0,
        burst: int = 8,
        *,
        shared: SharedBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.per_second = per_second
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._wall = wall
        self._lock = threading.Lock()
        self._bucket = _Bucket(tokens=float(burst), updated=clock())
        self._file = _SharedBucket(shared) if shared is not None else None

    @contextmanager
    def _held(self) -> Iterator[tuple[_Bucket, float]]:
        with self._lock:
            if self._file is None:
                yield self._bucket, self._clock()
                return
            with self._file.locked(self._clock, self.burst) as held:
                yield held

    def acquire(self, deadline: float, max_wait: float | None = None) -> None:
        """Take one token, waiting if needed; PausedError or BudgetExhausted (retryable) if
        that would pass ``deadline`` or take longer than ``max_wait`` seconds."""
        with self._held() as (bucket, now):
            elapsed = max(now - bucket.updated, 0.0)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.per_second)
            bucket.updated = now
            paused, spent = bucket.paused_until - now, (1 - bucket.tokens) / self.per_second
            wait = max(paused, spent, 0.0)
            if now + wait > deadline or (max_wait is not None and wait > max_wait):
                pause = bucket.pause(now, self._wall()) if paused >= spent else None
                if pause is not None:
                    raise PausedError(f"{pause.describe()}; try again later", pause)
                raise BudgetExhausted(retry_after=wait)
            bucket.tokens -= 1  # reserved now, so callers waiting in parallel queue up fairly
        if wait > 0:
            budget_waited("hubspot", wait)
            self._sleep(wait)

    def pause(self, asked: float | None, *, daily: bool = False, what: str = "") -> Pause | None:
        """Hold every caller back after a 429 that asked for ``asked`` seconds (capped; see
        ``hubspot_pause``); the pause in force after it, if any.

        The pause is logged once, by the call that starts it (or lengthens it by more than a
        second), not by every call it then holds back.
        """
        length = pause_length(asked, daily=daily)
        with self._held() as (bucket, now):
            until = now + length
            if until > bucket.paused_until:
                news = bucket.paused_until <= now or until - bucket.paused_until > 1.0
                bucket.paused_until, bucket.daily = until, daily
                bucket.asked = -1.0 if asked is None else asked
            else:
                news = False
            pause = bucket.pause(now, self._wall())
        if news and pause is not None:
            log.warning("%s after a 429 while %s", pause.describe(), what or "calling HubSpot")
        return pause

    def paused(self) -> Pause | None:
        """The pause in force now, if any."""
        with self._held() as (bucket, now):
            return bucket.pause(now, self._wall())

    def resume(self) -> Pause | None:
        """Lift the pause for every process sharing the bucket, and fill the bucket (whatever
        was in the file, it starts over); the pause it lifted, if any."""
        with self._held() as (bucket, now):
            lifted = bucket.pause(now, self._wall())
            bucket.tokens, bucket.updated = float(self.burst), now
            bucket.paused_until, bucket.asked, bucket.daily = 0.0, -1.0, False
        return lifted


def read_pause(value: SharedValue) -> Pause | None:
    """The pause recorded in a budget ``value`` (held by ``Store.shared_value``), read without
    changing it (for ``leadrelay check``); None when there is no pause."""
    now = time.monotonic()  # after the lock, as in _SharedBucket.locked
    bucket = _SharedBucket.unpack(value.read(), now, value.where)
    return bucket.pause(now, time.time()) if bucket is not None else None


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one call before giving up to HubSpot's own retry."""

    attempts: int = 4
    first_backoff: float = 0.2  # doubled each attempt, with jitter
    connect_timeout: float = 2.0
    read_timeout: float = 4.0
    budget: float = 6.0  # seconds for every HubSpot call made while answering one request
    budget_wait: float | None = None  # the longest wait for an API token (None: to budget)


def _message(exc: Exception) -> str:
    # HubSpot's error bodies carry a readable "message"; never echo request URLs (they can hold
    # the developer key as ?hapikey=).
    message = error_body(exc).get("message")
    text = str(message or getattr(exc, "reason", None) or "no details")[:300]
    return _HAPIKEY.sub("hapikey=***", text)


def call(
    do: Callable[[tuple[float, float]], T],
    what: str,
    *,
    limiter: RateLimiter,
    deadline: float,
    policy: RetryPolicy,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``do(timeout)`` under the limiter, retrying 429/5xx/timeouts until ``deadline``."""
    attempt = 0
    while True:
        limiter.acquire(deadline, policy.budget_wait)
        remaining = deadline - clock()
        timeout = (min(policy.connect_timeout, remaining), min(policy.read_timeout, remaining))
        try:
            return do(timeout)
        except API_ERRORS as exc:
            status = exc.status or 0
            if status == 401:
                log.error(
                    "HubSpot refused the access token (401) while %s: check %s. Nothing is "
                    "written to HubSpot until this is fixed.",
                    what,
                    "HUBSPOT_ACCESS_TOKEN or HUBSPOT_DEVELOPER_API_KEY",
                )
                raise CrmError(
                    f"HubSpot refused the credentials (401) while {what}",
                    retryable=False,
                    status=401,
                    setup=True,
                ) from None
            if status != 429 and status < 500:
                # 403: the token lacks a scope, which the admin fixes; anything else is about
                # the record itself and will not change on a retry.
                raise CrmError(
                    f"HubSpot answered {status} while {what}: {_message(exc)}",
                    retryable=False,
                    status=status,
                    setup=status == 403,
                ) from None
            wait, pause = retry_after(exc), None
            if status == 429:
                rate_limited("hubspot")
                daily = is_daily_limit(exc)
                pause = limiter.pause(wait, daily=daily, what=what)
                wait = pause_length(wait, daily=daily) or None
            problem, code = f"HubSpot answered {status}", status
        except urllib3.exceptions.HTTPError as exc:
            wait, pause, code = None, None, None
            problem = f"HubSpot did not answer ({type(exc).__name__})"
        except ValueError:
            # The generated client validates answers; a shape it cannot read will not improve.
            raise CrmError(
                f"HubSpot answered in an unexpected shape while {what}", retryable=False
            ) from None
        attempt += 1
        if wait is None:
            wait = policy.first_backoff * 2 ** (attempt - 1) * random.uniform(0.8, 1.2)
        if attempt >= policy.attempts or clock() + wait >= deadline:
            log.warning("%s while %s; giving up after %d attempt(s)", problem, what, attempt)
            if pause is not None:
                raise PausedError(f"{problem} while {what}; {pause.describe()}", pause) from None
            raise CrmError(f"{problem} while {what}", retryable=True, status=code) from None
        log.info("%s while %s; retrying in %.2f s", problem, what, wait)
        sleep(wait)
