"""How long a HubSpot 429 pauses every HubSpot call, and how that pause reads to an operator.

HubSpot's limits are counted per 10 s (``policyName`` ``TEN_SECONDLY_ROLLING``, or
``SECONDLY``) and per day (``DAILY``, reset at midnight in the portal's time zone). A short
window is over in seconds, so a longer ``Retry-After`` (a proxy's, or a mistake) is capped at
``MAX_PAUSE``: one odd answer must not stop every process for an hour. A daily limit does not
clear in a minute: ``DAILY_PAUSE`` holds back longer, and probing once an hour costs one
refused call an hour (HubSpot wants under 5% of an app's calls to fail). An operator who knows
better lifts either with ``leadrelay hubspot resume``.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workflows.errors import CrmError

MAX_PAUSE = 60.0  # six of HubSpot's 10-second windows
DAILY_PAUSE = 3600.0
DAILY_POLICY = "DAILY"


@dataclass(frozen=True)
class Pause:
    """A pause of every HubSpot call of every process sharing one budget file."""

    until: datetime  # aware, UTC
    asked: float | None  # HubSpot's Retry-After in seconds (None: it sent none)
    daily: bool  # HubSpot said the portal's daily limit is reached

    def describe(self) -> str:
        """``HubSpot calls paused until 12:31:05 UTC (HubSpot asked for 3600 s, ...)``."""
        cap = DAILY_PAUSE if self.daily else MAX_PAUSE
        why = ["HubSpot's daily limit is reached"] if self.daily else []
        if self.asked is None:
            why.append(f"no Retry-After; pausing {cap:.0f} s")
        else:
            capped = f", capped at {cap:.0f} s" if self.asked > cap else ""
            why.append(f"HubSpot asked for {math.ceil(self.asked)} s{capped}")
        return f"HubSpot calls paused until {self.until:%H:%M:%S} UTC ({'; '.join(why)})"

    def until_text(self) -> str:
        """The end of the pause in ISO-8601 (``2026-11-30T12:31:05Z``), for machines."""
        return self.until.strftime("%Y-%m-%dT%H:%M:%SZ")


class PausedError(CrmError):
    """A HubSpot call refused (or given up) because every call is paused after a 429."""

    def __init__(self, message: str, pause: Pause) -> None:
        super().__init__(message, retryable=True, status=429)
        self.pause = pause


def pause_length(asked: float | None, *, daily: bool) -> float:
    """Seconds to pause for a 429 that asked for ``asked`` (0: no pause, back off instead)."""
    if asked is None and not daily:
        return 0.0
    cap = DAILY_PAUSE if daily else MAX_PAUSE
    return min(cap if asked is None else asked, cap)


def retry_after(exc: Exception, wall: float | None = None) -> float | None:
    """The seconds a ``Retry-After`` header asks for (delay seconds or an HTTP date).

    None when there is none or it is unreadable, infinite or not a number.
    """
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(str(value))
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": RFC 5322's "UTC, origin unknown"
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if wall is None else wall)
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def error_body(exc: Exception) -> dict[str, Any]:
    """HubSpot's JSON error body, or {} when there is none."""
    body = getattr(exc, "body", None)
    try:
        data = json.loads(body) if body else {}
    except (TypeError, ValueError, RecursionError):
        data = {}
    return data if isinstance(data, dict) else {}


def is_daily_limit(exc: Exception) -> bool:
    """Whether a 429 says the portal's daily limit (not the 10-second one) is reached."""
    return str(error_body(exc).get("policyName") or "").upper() == DAILY_POLICY
