"""What the console's health view shows besides the write-back backlog: notifier deliveries
across every worker, the last sweep, HubSpot's batch outbox, the config version, the store
without its secrets."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from adapters.hubspot.flush_state import read_stop
from workflows.errors import LeadRelayError
from workflows.store import Store

# The summary a sweep leaves for the console (written by ``serve``'s scheduled sweep and by
# ``leadrelay sweep``): {"started_at", "seconds", "counts": {action: n}, "by"}.
SWEEP_LAST = "sweep:last"
NOTIFIER_DELIVERIES = "leadrelay_notifier_deliveries_total"
DELIVERY_RESULTS = ("sent", "retried", "failed")
HIDDEN = "***"
_SECRET_WORDS = ("pass", "secret", "token", "key", "auth")

# As ``connector.metrics.current``: every sample of one metric summed across the server's
# workers, keyed by its labels.
MetricSamples = Mapping[frozenset[tuple[str, str]], float]
MetricsReader = Callable[[str], MetricSamples]


@dataclass(frozen=True)
class SweepRun:
    """The last sweep's summary as it recorded it."""

    started_at: datetime | None
    seconds: float | None
    counts: dict[str, int]
    by: str | None


@dataclass(frozen=True)
class LastSweep:
    run: SweepRun | None  # None: no sweep has recorded one (or it could not be read)
    problem: str | None = None  # why it could not be read


@dataclass(frozen=True)
class HubSpotOutbox:
    """HubSpot executions decided in batch mode whose owner write or completion still waits."""

    waiting: int | None  # None: the store could not say
    stopped: str | None = None  # why the flusher stopped (a refused token), None while it runs


@dataclass(frozen=True)
class Health:
    """The health view's figures (the write-back backlog comes from the facts, beside it)."""

    notifier: dict[str, float]  # webhook deliveries by result, across every worker
    last_sweep: LastSweep
    hubspot_outbox: HubSpotOutbox | None  # None: not in batch mode and nothing waiting
    config_version: str
    store: str  # its URL, secrets hidden


def hubspot_outbox(store: Store, batch_mode: bool) -> HubSpotOutbox | None:
    """The outbox's size and the flusher's stop, shown in batch mode or while items wait
    (left from batch mode after a switch to another mode: the flusher still drains them)."""
    try:
        waiting: int | None = store.outbox_size()
    except LeadRelayError:
        waiting = None
    if not batch_mode and not waiting:
        return None
    try:
        stop = read_stop(store)
    except (OSError, LeadRelayError):
        stop = None
    return HubSpotOutbox(waiting, stop.get("reason") if stop else None)


def notifier_deliveries(read: MetricsReader) -> dict[str, float]:
    """Webhook deliveries sent, retried and failed (``read``: ``connector.metrics.current``),
    summed over every other label."""
    totals = dict.fromkeys(DELIVERY_RESULTS, 0.0)
    for labels, value in read(NOTIFIER_DELIVERIES).items():
        result = dict(labels).get("result")
        if result is not None:
            totals[result] = totals.get(result, 0.0) + value
    return totals


def last_sweep(store: Store) -> LastSweep:
    """The summary the last sweep recorded in the store's shared value ``sweep:last``."""
    try:
        with store.shared_value(SWEEP_LAST) as value:
            data = value.read()
    except (LeadRelayError, OSError) as exc:
        return LastSweep(None, f"cannot read {SWEEP_LAST}: {exc}")
    if not data:
        return LastSweep(None)
    try:
        return LastSweep(_sweep_run(json.loads(data)))
    except (ValueError, TypeError) as exc:
        return LastSweep(None, f"{SWEEP_LAST} is not a sweep summary: {exc}")


def _sweep_run(data: Any) -> SweepRun:
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    counts = data.get("counts") or {}
    if not isinstance(counts, dict):
        raise ValueError("counts: expected an object")
    seconds = data.get("seconds")
    return SweepRun(
        started_at=_time(data.get("started_at")),
        seconds=float(seconds) if seconds is not None else None,
        counts={str(action): int(n) for action, n in counts.items()},
        by=str(data["by"]) if data.get("by") else None,
    )


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def without_secrets(url: str) -> str:
    """A store URL fit to show: the password and secret-looking query values replaced."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{HIDDEN}@{host}" if has_password else f"{user}@{host}"
    query = urlencode(
        [
            (name, HIDDEN if any(word in name.lower() for word in _SECRET_WORDS) else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*/",
    )
    # By hand, not urlunsplit: it drops the empty host of sqlite:////absolute/path.
    shown = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else parts.path
    return shown + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
