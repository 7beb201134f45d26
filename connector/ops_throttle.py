"""How many failed sign-ins the console takes: ``PER_ADDRESS`` a minute from one client
address, ``OVERALL`` a minute from everyone together.

The count lives in the store's shared value ``ops.sign-in-failures`` (JSON: each address's
recent attempt times), so every gunicorn worker, and every server on one PostgreSQL store,
counts the same failures. Chosen over flask-limiter, whose shared counters need a Redis or a
memcached the project does not run; its in-memory counter would give each worker its own
allowance.

An attempt is counted before its credentials are checked, under the value's lock, and taken
back once they prove right: two workers never both let through the tenth guess, a hash is
never computed for a throttled guess, and a right sign-in costs nobody anything. Only other
addresses' failures can hold up a right one, and only through the overall cap. The value stays
small: attempts older than a minute are dropped, and once ``OVERALL`` are counted no more are
added, so it never holds more than ``OVERALL`` times.

IPv6 clients are counted by their /64 network, which one household or one server is usually
given whole: counted one by one, its 2^64 addresses would never reach ``PER_ADDRESS``.
"""

from __future__ import annotations

import ipaddress
import json
import math
import time
from dataclasses import dataclass

from workflows.store import SharedValue, Store

PER_ADDRESS = 10
OVERALL = 100
WINDOW_SECONDS = 60.0
FAILURES = "ops.sign-in-failures"


@dataclass(frozen=True)
class Throttled:
    """Why a sign-in is not tried now, and in how many whole seconds it may be."""

    retry_after: int
    message: str


@dataclass(frozen=True)
class Attempt:
    """A counted attempt: ``address`` (as counted) at ``at``."""

    address: str
    at: float


def client_key(address: str | None) -> str:
    """What an address is counted as: itself for IPv4, its /64 network for IPv6."""
    text = address or "unknown"
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def admit(store: Store, address: str | None) -> Attempt | Throttled:
    """Count an attempt from ``address``, or say why it must wait."""
    now, key = clock(), client_key(address)
    with store.shared_value(FAILURES) as value:
        attempts = _recent(value, now)
        mine = attempts.get(key, [])
        everyone = sorted(t for times in attempts.values() for t in times)
        if len(mine) >= PER_ADDRESS:
            wait = min(mine) + WINDOW_SECONDS - now
            return Throttled(
                _seconds(wait),
                f"Too many failed sign-ins from your address: try again in {_seconds(wait)} s.",
            )
        if len(everyone) >= OVERALL:
            wait = everyone[len(everyone) - OVERALL] + WINDOW_SECONDS - now
            return Throttled(
                _seconds(wait),
                "Too many failed sign-ins to this console from everywhere: "
                f"try again in {_seconds(wait)} s.",
            )
        attempts[key] = [*mine, now]
        value.write(json.dumps(attempts).encode())
    return Attempt(key, now)


def succeeded(store: Store, attempt: Attempt) -> None:
    """Take back a counted attempt whose credentials were right."""
    with store.shared_value(FAILURES) as value:
        attempts = _recent(value, clock())
        times = attempts.get(attempt.address, [])
        if attempt.at in times:
            times.remove(attempt.at)
        if not times:
            attempts.pop(attempt.address, None)
        value.write(json.dumps(attempts).encode())


def _recent(value: SharedValue, now: float) -> dict[str, list[float]]:
    """The stored attempts still inside the window (a value that does not read as attempts
    counts as none: it is only a throttle's memory, rebuilt within a minute)."""
    try:
        stored = json.loads(value.read() or b"{}")
    except ValueError:
        stored = {}
    recent: dict[str, list[float]] = {}
    for key, times in stored.items() if isinstance(stored, dict) else ():
        stamps = times if isinstance(times, list) else []
        since = now - WINDOW_SECONDS
        kept = [float(t) for t in stamps if isinstance(t, (int, float)) and t > since]
        if kept:
            recent[str(key)] = kept
    return recent


def _seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


def clock() -> float:
    """Now, in seconds since the epoch: the same for every process on the machine."""
    return time.time()
