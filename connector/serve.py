"""Serve the app with gunicorn, a production WSGI server (never Flask's development server),
and run the SLA sweep on APScheduler inside each worker (one sweeps at a time, each run leaving
one line in the log). The workers share their metrics through prometheus_client's
multiprocess directory (``connector.metrics``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from gunicorn.app.base import BaseApplication

from connector import metrics
from connector.hubspot_flusher import start_flusher
from connector.log_redaction import redacting_logger
from connector.sandbox import SANDBOX_ENV
from connector.shared import services_of

log = logging.getLogger("leadrelay.serve")


class LeadRelayServer(BaseApplication):
    """gunicorn with leadrelay's app factory; each worker builds its own app after forking.

    Building the app after the fork matters: the embedded store's writer thread would not
    survive it.
    """

    def __init__(self, config_path: Path, options: dict[str, Any], *, sweep: bool = True) -> None:
        self.config_path = config_path
        self.options = options
        self.sweep = sweep
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from connector.app import create_app

        app = create_app(config_path=self.config_path)
        start_flusher(app)  # HubSpot's batch mode: every worker, one flushing at a time
        if self.sweep:
            start_sweeper(app)  # here, in the worker, after the fork
            start_outcome_watcher(app)
        return app


def start_sweeper(app: Flask) -> BackgroundScheduler | None:
    """Start this process's SLA sweep schedule (every ``sla.sweep_every``); None if no SLA.

    Every worker schedules it; the sweep lock lets one sweep at a time, the others skip.
    ``max_instances=1`` and ``coalesce`` keep a slow sweep from piling up runs.
    """
    # Looked up when called, so that a test can replace locked_sweep.
    from connector.sweep_cli import locked_sweep

    services = services_of(app)
    config = services.config
    if config.sla is None and not _any_rule_sla(config.flow.rules):
        return None
    # The app's own HubSpot client and Salesforce connection: one budget, one sign-in.
    readers = services.readers()

    def run() -> None:
        try:
            done = locked_sweep(
                services.router, readers, datetime.now(UTC), services.notifier,
                tasks=services.task_writers(),
            )  # fmt: skip
        except Exception:  # a failed sweep is logged; the next run tries again
            log.exception("SLA sweep failed")
            metrics.sweep_not_done("failed")
            return
        if done is None:
            log.info("SLA sweep skipped: another worker is sweeping")
            metrics.sweep_not_done("skipped")
            return
        log.info("SLA sweep: %s", done.describe())
        metrics.sweep_done(done.summary, done.seconds)

    return _every(app, run, config.sweep_every.total_seconds(), "sla-sweep", "leadrelay.scheduler")


def start_outcome_watcher(app: Flask) -> BackgroundScheduler | None:
    """Start this process's outcome watcher (every ``outcomes.every``); None without an
    ``outcomes:`` section. Like the sweep: every worker schedules it, the watcher's lock lets
    one pass run at a time, and it runs on the scheduler's thread, never a request's."""
    from connector.outcomes_cli import locked_watch, no_credentials

    services = services_of(app)
    settings = services.config.outcomes
    if settings is None:
        return None
    readers = services.readers()
    told: set[str] = set()  # CRMs without credentials, said once per process

    def skipped(crm: str, leads: int) -> None:
        if crm not in told:
            told.add(crm)
            reason = no_credentials(services, crm)
            log.warning("outcome watch: skipping %s leads (%d now): %s", crm, leads, reason)

    def run() -> None:
        try:
            summary = locked_watch(services, readers, settings, datetime.now(UTC), on_skip=skipped)
        except Exception:  # a failed pass is logged; the next one tries again
            log.exception("outcome watch failed")
            return
        if summary is not None and (summary.read or summary.failed):
            log.info("outcome watch: %s", summary.describe())

    seconds = settings.every.total_seconds()
    return _every(app, run, seconds, "outcome-watch", "leadrelay.outcome_scheduler")


def _every(
    app: Flask, run: Callable[[], None], seconds: float, job: str, extension: str
) -> BackgroundScheduler:
    """Run ``run`` now and then every ``seconds`` on a scheduler thread of this process (kept
    on ``app.extensions[extension]``); a slow run never piles up (``max_instances=1``,
    ``coalesce``)."""
    scheduler = BackgroundScheduler(daemon=True, timezone=UTC)
    scheduler.add_job(
        run,
        "interval",
        seconds=seconds,
        id=job,
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
    scheduler.start()
    app.extensions[extension] = scheduler
    return scheduler


def _any_rule_sla(rules: list[Any]) -> bool:
    return any(r.sla is not None or (r.flow and _any_rule_sla(r.flow.rules)) for r in rules)


def serve(
    config_path: Path,
    host: str,
    port: int,
    workers: int,
    threads: int,
    *,
    secret_envs: Iterable[str] = (),
) -> None:
    """Run until stopped. Every log line is redacted of leadrelay's secrets and of
    ``secret_envs`` (the variables holding webhook URLs): see log_redaction.py."""
    # Before the fork: every worker inherits the multiprocess mode and the directory.
    private_dir = metrics.use_multiprocess_dir()

    def child_exit(server: Any, worker: Any) -> None:
        metrics.worker_exited(worker.pid)

    def on_exit(server: Any) -> None:
        if private_dir is not None:
            metrics.remove_dir(private_dir)

    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        # A worker takes no more connections than it has threads: the rest wait in the
        # listen queue for whichever worker frees a thread first, never behind one busy
        # worker's requests (each may wait hubspot.budget_wait for the API budget), so every
        # answer leaves within 5 s. No slot is then left for idle keep-alive connections:
        # each is closed after its answer (a proxy in front keeps its own to clients).
        "worker_connections": threads,
        "keepalive": 0,
        # HubSpot gives an action about 30 s; never hold a worker longer than that.
        "timeout": 30,
        "accesslog": "-",
        "logger_class": redacting_logger(secret_envs),
        "preload_app": False,
        "child_exit": child_exit,
        "on_exit": on_exit,
    }
    if os.environ.get(SANDBOX_ENV):
        log.warning("SANDBOX: the CRMs are local stand-ins started by `leadrelay demo`")
    LeadRelayServer(config_path, options).run()
