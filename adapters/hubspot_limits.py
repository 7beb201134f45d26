"""Stay inside HubSpot's API budget and HubSpot's patience.

A portal's private app gets roughly 100-250 requests per 10 s, shared with every other
integration, while workflows may call us 20 times a second. So every call takes a token from
one bucket (the threads of a process share it, and with a bucket file every process on the
machine does), a 429's ``Retry-After`` pauses the bucket for all of them, and retries back
off but always end before ``deadline``: HubSpot waits about 30 s for an action's answer,
and we answer in well under 10 s, leaving HubSpot to retry later.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import random
import re
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import urllib3
from hubspot.automation.actions import ApiException as ActionsApiError
from hubspot.crm.companies import ApiException as CompaniesApiError
from hubspot.crm.contacts import ApiException as ContactsApiError
from hubspot.crm.owners import ApiException as OwnersApiError

from workflows.errors import CrmError

log = logging.getLogger("leadrelay.hubspot")

# Each generated API package has its own ApiException class.
API_ERRORS = (ActionsApiError, CompaniesApiError, ContactsApiError, OwnersApiError)
_HAPIKEY = re.compile(r"hapikey=[^&\s)'\"]+")
T = TypeVar("T")


@dataclass
class _Bucket:
    tokens: float
    updated: float  # clock time of the last refill
    paused_until: float = 0.0


class _BucketFile:
    """A bucket kept in a small file under ``flock``: shared by every process that opens it.

    gunicorn runs several workers and each runs an SLA sweeper; without this each process
    would spend the whole budget on its own. time.monotonic() is one clock for every process
    of a machine (CLOCK_MONOTONIC), so the times stored here mean the same to all of them.
    """

    _FORMAT = struct.Struct("<3d")

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        self._pid = os.getpid()

    @contextmanager
    def locked(self, clock: Callable[[], float], burst: int) -> Iterator[tuple[_Bucket, float]]:
        """The stored bucket (a full one when there is none yet) and the time, read once the
        lock is held; the bucket is written back on exit."""
        if os.getpid() != self._pid:
            # A forked child shares the parent's open file, and with it the parent's flock.
            self._open()
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            now = clock()  # after the lock: no other process can have stored a later time
            data = os.pread(self._fd, self._FORMAT.size, 0)
            complete = len(data) == self._FORMAT.size
            bucket = _Bucket(*self._FORMAT.unpack(data)) if complete else None
            if bucket is None or bucket.updated > now:
                # (A time later than now was stored before a reboot: the clock started over.)
                bucket = _Bucket(tokens=float(burst), updated=now)
            yield bucket, now
            os.pwrite(self._fd, self._FORMAT.pack(bucket.tokens, bucket.updated,
                                                  bucket.paused_until), 0)  # fmt: skip
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


class RateLimiter:
    """A token bucket shared by every thread of a process, paused by HubSpot's Retry-After.

    With ``shared`` (a file path) the bucket is also shared by every process that names the
    same file: all gunicorn workers and their sweepers then stay inside one budget together.
    """

    def __init__(
        self,
        per_second: float = 4.0,
        burst: int = 8,
        *,
        shared: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_second = per_second
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._bucket = _Bucket(tokens=float(burst), updated=clock())
        self._file = _BucketFile(shared) if shared is not None else None

    @contextmanager
    def _held(self) -> Iterator[tuple[_Bucket, float]]:
        with self._lock:
            if self._file is None:
                yield self._bucket, self._clock()
                return
            with self._file.locked(self._clock, self.burst) as held:
                yield held

    def acquire(self, deadline: float) -> None:
        """Take one token, waiting if needed; CrmError (retryable) if that would pass deadline."""
        with self._held() as (bucket, now):
            elapsed = max(now - bucket.updated, 0.0)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.per_second)
            bucket.updated = now
            wait = max(bucket.paused_until - now, (1 - bucket.tokens) / self.per_second, 0.0)
            if now + wait > deadline:
                raise CrmError(
                    "HubSpot API budget exhausted for now; try again later", retryable=True
                )
            bucket.tokens -= 1  # reserved now, so callers waiting in parallel queue up fairly
        if wait > 0:
            self._sleep(wait)

    def pause(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (HubSpot said Retry-After)."""
        with self._held() as (bucket, now):
            bucket.paused_until = max(bucket.paused_until, now + seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one call before giving up to HubSpot's own retry."""

    attempts: int = 4
    first_backoff: float = 0.2  # doubled each attempt, with jitter
    connect_timeout: float = 2.0
    read_timeout: float = 4.0
    budget: float = 6.0  # seconds for every HubSpot call made while answering one request


def _retry_after(exc: Exception) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def _message(exc: Exception) -> str:
    # HubSpot's error bodies carry a readable "message"; never echo request URLs (they can hold
    # the developer key as ?hapikey=).
    body = getattr(exc, "body", None)
    try:
        data = json.loads(body) if body else {}
    except (TypeError, ValueError):
        data = {}
    message = data.get("message") if isinstance(data, dict) else None
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
        limiter.acquire(deadline)
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
            wait = _retry_after(exc)
            if status == 429 and wait is not None:
                limiter.pause(wait)
            problem, code = f"HubSpot answered {status}", status
        except urllib3.exceptions.HTTPError as exc:
            wait, code = None, None
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
            raise CrmError(f"{problem} while {what}", retryable=True, status=code) from None
        log.info("%s while %s; retrying in %.2f s", problem, what, wait)
        sleep(wait)
