"""HubSpot's batch mode in the background: every serving process runs a flusher thread.

Each wakes when 100 executions wait (its own endpoint counts them, and it reads the outbox's
size as it waits, so another process's hundred count too) or ``hubspot.batch.flush_every``
after its last flush, whichever comes first. One flushes at a time across processes (the
store's ``hubspot-flush`` lock); the others skip that round. A flusher started after a crash
finds what the crashed process left in the outbox, since everything lives in the store.
A 401/403 stops the flusher loudly: logged, recorded for ``leadrelay check``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from adapters.hubspot.client import BATCH_LIMIT, HubSpotApi
from adapters.hubspot.flush_state import clear_stop, record_stop
from adapters.hubspot.outbox_flush import FlushResult, FollowUp, flush_once
from adapters.hubspot.tasks import HubSpotTasks
from connector.services import Services
from connector.shared import services_of
from workflows.delivery import Delivery
from workflows.errors import CrmError, LeadRelayError
from workflows.follow_up import TaskOutcome, follow_up, tasks_configured
from workflows.model import Lead, parse_datetime
from workflows.router import RoutingResult
from workflows.store import Store

log = logging.getLogger("leadrelay.hubspot.flush")

ENQUEUED = "leadrelay.hubspot_enqueued"  # app.extensions: told of each new outbox item
FLUSHER = "leadrelay.hubspot_flusher"
FLUSH_LOCK = "hubspot-flush"
LAST_FLUSH = "hubspot-flush.last"  # shared value: when any process last flushed (epoch s)
_LOOK = 0.2  # seconds between looks at the outbox's size while waiting


class Flusher:
    """One process's flusher: ``start()`` its thread, ``enqueued()`` from the endpoint."""

    def __init__(
        self,
        store: Callable[[], Store],
        api: Callable[[], HubSpotApi],
        every: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_written: Callable[[dict[int, CrmError | None]], None] | None = None,
        follow_up: FollowUp | None = None,
    ) -> None:
        self._store = store
        self._follow_up = follow_up
        self._on_written = on_written
        self._api = api
        self.every = every
        self._clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._waiting = 0
        self.stopped: str | None = None  # why it stopped (401/403), None while it runs
        self._thread: threading.Thread | None = None

    def enqueued(self) -> None:
        """A new item is in the outbox: flush at once once this process saw 100."""
        with self._lock:
            self._waiting += 1
            if self._waiting >= BATCH_LIMIT:
                self._wake.set()

    def start(self) -> Flusher:
        self._thread = threading.Thread(target=self._run, name="hubspot-flusher", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set() and self.stopped is None:
            self._wait()
            if self._stop.is_set():
                return
            try:
                flushed = self.flush()
            except Exception:  # a failed round is logged; the next one tries again
                log.exception("HubSpot outbox flush failed")
                flushed = []
            if flushed is None:
                # Another process flushes, and may for longer than ``every`` (a full outbox
                # under load): look again later instead of asking for its lock in a tight loop
                # (measured: that spin took a third of a worker's CPU at full load).
                self._stop.wait(_LOOK)

    def _wait(self) -> None:
        """Until ``every`` passed since any process last flushed, 100 wait, or ``enqueued``
        saw 100. (Each worker has a timer; were they not set by the shared time, they would
        flush in turn, ``every`` / workers apart, spending more API calls on smaller batches.)"""
        mine = time.monotonic() + self.every
        while not self._stop.is_set():
            left = self._left(mine - time.monotonic())
            if left <= 0 or self._wake.wait(min(left, _LOOK)):
                break
            try:
                if self._store().outbox_size() >= BATCH_LIMIT:
                    break
            except LeadRelayError:
                log.exception("could not read the HubSpot outbox's size")
        self._wake.clear()
        with self._lock:
            self._waiting = 0

    def _left(self, mine: float) -> float:
        """Seconds to the next flush: ``every`` after any process's last one, else ``mine``."""
        try:
            with self._store().shared_value(LAST_FLUSH) as value:
                data = value.read()
        except (OSError, LeadRelayError):
            return mine
        try:
            return float(data) + self.every - time.time() if data else mine
        except ValueError:
            return mine

    def _flushed(self, store: Store) -> None:
        try:
            with store.shared_value(LAST_FLUSH) as value:
                value.write(repr(time.time()).encode())
        except (OSError, LeadRelayError):
            log.exception("could not record the HubSpot flush time")

    def flush(self) -> list[FlushResult] | None:
        """Flush until fewer than 100 are free to take; None when another process flushes."""
        store = self._store()
        with store.lock(FLUSH_LOCK) as held:
            if not held:
                return None
            self._flushed(store)
            results = []
            while True:
                result = flush_once(store, self._api(), self._clock, self._follow_up)
                results.append(result)
                if result.claimed:
                    log.info("HubSpot outbox flush: %s", result.describe())
                if result.owners and self._on_written is not None:
                    try:
                        self._on_written(result.owners)
                    except Exception:  # telling others must never stop the flusher
                        log.exception("announcing %d owner writes failed", len(result.owners))
                if result.stopped is not None:
                    self._halt(store, result.stopped)
                    return results
                if result.calls and not result.retry:
                    clear_stop(store)
                more = result.claimed >= BATCH_LIMIT or result.deferred > 0
                if not more or result.completed == 0:
                    return results

    def _halt(self, store: Store, reason: str) -> None:
        self.stopped = reason
        log.error(
            "HubSpot batch flusher STOPPED: %s. Owners are not written and executions not "
            "completed until HUBSPOT_ACCESS_TOKEN is fixed and leadrelay restarted; they wait "
            "in the outbox (`leadrelay check` says so too).",
            reason,
        )
        try:
            record_stop(store, reason, self._clock())
        except (OSError, LeadRelayError):
            log.exception("could not record that the HubSpot flusher stopped")


def announce_written(services: Services, owners: dict[int, CrmError | None]) -> None:
    """Tell what api mode tells once owners are written: the write listeners (metrics) of
    each write, and the notifier (webhooks) of each new owner."""
    router, notifier = services.router, services.notifier
    if not router.write_listeners and not notifier.hooks:
        return
    deliveries = []
    for record_id, error in owners.items():
        record = services.store.assignment(record_id)
        if record is None:
            continue
        lead = Lead(record.lead_id, record.crm, record.object_type, email=record.lead_email)
        router.written(lead, error)
        if error is None:
            result = RoutingResult(record.decision, record)
            deliveries.append(Delivery(lead, result, "written"))
    notifier.deliveries("assigned", deliveries)


def batch_follow_up(services: Services) -> FollowUp:
    """The flusher's follow-up tasks: each item's decision read back from the log, its lead
    from the payload, through the same ``follow_up`` (and task claims) as api mode."""

    def run(api: HubSpotApi, items: Mapping[int, dict[str, Any]]) -> dict[int, TaskOutcome]:
        written = []
        for item_id, payload in items.items():
            record = services.store.assignment(item_id)
            if record is not None:
                written.append((_lead(payload["task_lead"]), record))
        router = services.router
        return follow_up(router.store, router.config, written, HubSpotTasks(api), router.clock)

    return run


def _lead(data: dict[str, Any]) -> Lead:
    return Lead(**{**data, "created_at": parse_datetime("created_at", data.get("created_at"))})


def start_flusher(app: Flask) -> Flusher | None:
    """Start this process's flusher when ``hubspot.write_owner`` is ``batch``, or while the
    outbox still holds what batch mode decided before a switch to another mode (nothing in it
    is dropped); None else, or without a token (``leadrelay check`` says that is missing)."""
    services = services_of(app)
    config = services.config
    token = services.hubspot_token()
    if not token or (config.hubspot.write_owner != "batch" and not _leftovers(services)):
        return None
    flusher = Flusher(
        lambda: services.store,
        lambda: services.hubspot_api(token),
        config.hubspot.batch.flush_every.total_seconds(),
        on_written=lambda owners: announce_written(services, owners),
        follow_up=batch_follow_up(services) if tasks_configured(config) else None,
    )
    app.extensions[ENQUEUED] = flusher.enqueued
    app.extensions[FLUSHER] = flusher
    return flusher.start()


def _leftovers(services: Services) -> int:
    try:
        return services.store.outbox_size()
    except LeadRelayError:
        log.exception("could not read the HubSpot outbox's size")
        return 0
