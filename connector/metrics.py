"""leadrelay's Prometheus metrics: what is counted, and how ``/metrics`` reads every worker.

Under ``leadrelay serve`` (gunicorn) each worker is a process, so prometheus_client runs in
its multiprocess mode: ``use_multiprocess_dir`` (called by ``serve`` before the fork) points
``PROMETHEUS_MULTIPROC_DIR`` at a private directory where each worker keeps its values in
files, and a scrape, whichever worker answers it, merges them all. Without that variable (the
Flask test client, one process) the default registry answers.

Labels are bounded by app.yaml and the code (rule, rep, crm, outcome, source, result), never
a lead id or an email. The core is told nothing of metrics: ``observe`` listens to the router
and the notifier of one app's services; the CRM clients count their own budget waits and
rate limits (``adapters/crm_metrics.py``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess, values
from prometheus_client.exposition import choose_encoder

from connector.services import Services
from workflows.errors import CrmError, LeadRelayError
from workflows.model import Lead
from workflows.router import RouteRequest, RoutingResult
from workflows.sweep import SweepSummary

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
NOBODY = "none"  # the rep label of a decision that left the lead unassigned
# Decisions take milliseconds; a slow store or a long group commit shows in the upper buckets.
DECISION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SWEEP_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
BREACHES = ("rotated", "escalated")  # the sweep actions that mean a first-touch SLA was missed
# The files prometheus_client's multiprocess mode writes (all that is emptied at start).
VALUE_FILES = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")


@dataclass(frozen=True)
class _Metrics:
    assignments: Counter
    decision_seconds: Histogram
    writeback_errors: Counter
    notifier_deliveries: Counter
    sla_breaches: Counter
    sweeps: Counter
    sweep_seconds: Histogram


_built: list[_Metrics] = []
_building = threading.Lock()


def _metrics() -> _Metrics:
    # Built on first use, in the process that counts: under gunicorn that is a worker, after
    # serve chose the multiprocess mode, so no value is ever made in the wrong mode. Once per
    # process: a metric registered twice is an error.
    with _building:
        if not _built:
            _built.append(_new_metrics())
        return _built[0]


def _new_metrics() -> _Metrics:
    return _Metrics(
        assignments=Counter(
            "leadrelay_assignments",
            "Decisions recorded (CRM retries replayed and dry runs not counted).",
            ["rule", "rep", "crm", "outcome", "source"],
        ),
        decision_seconds=Histogram(
            "leadrelay_decision_seconds",
            "Seconds from handing a lead to the router to its decision being on disk.",
            ["crm", "source"],
            buckets=DECISION_BUCKETS,
        ),
        writeback_errors=Counter(
            "leadrelay_writeback_errors",
            "Owner write-backs the CRM did not take (each failed attempt).",
            ["crm"],
        ),
        notifier_deliveries=Counter(
            "leadrelay_notifier_deliveries",
            "Outgoing webhook deliveries: sent, retried (an attempt repeated), failed (given up).",
            ["result"],
        ),
        sla_breaches=Counter(
            "leadrelay_sla_breaches",
            "Leads whose first-touch SLA ran out, by what the sweep did (rotated, escalated).",
            ["action"],
        ),
        sweeps=Counter(
            "leadrelay_sweeps",
            "Scheduled SLA sweeps: swept, skipped (another worker was sweeping), failed.",
            ["result"],
        ),
        sweep_seconds=Histogram(
            "leadrelay_sweep_seconds", "Seconds each SLA sweep took.", buckets=SWEEP_BUCKETS
        ),
    )


def observe(services: Services) -> None:
    """Count what the router and the notifier of ``services`` do, from now on."""
    metrics = _metrics()
    config = services.config

    def decided(request: RouteRequest, result: RoutingResult, seconds: float) -> None:
        decision, lead = result.decision, request.lead
        rep = decision.rep_id if decision.rep_id in config.reps else NOBODY
        metrics.assignments.labels(
            rule=decision.rule,
            rep=rep,
            crm=lead.crm,
            outcome=decision.outcome,
            source=request.source,
        ).inc()
        metrics.decision_seconds.labels(crm=lead.crm, source=request.source).observe(seconds)

    def written(lead: Lead, error: CrmError | None) -> None:
        if error is not None:
            metrics.writeback_errors.labels(crm=lead.crm).inc()

    def notified(result: str, amount: int) -> None:
        if result in ("sent", "retried", "failed"):
            metrics.notifier_deliveries.labels(result=result).inc(amount)

    services.router.decision_listeners.append(decided)
    services.router.write_listeners.append(written)
    services.notifier.stats_listeners.append(notified)


def sweep_done(summary: SweepSummary, seconds: float) -> None:
    """Count one scheduled sweep that ran: its breaches and how long it took."""
    metrics = _metrics()
    metrics.sweeps.labels(result="swept").inc()
    metrics.sweep_seconds.observe(seconds)
    for action in BREACHES:
        if summary.counts[action]:
            metrics.sla_breaches.labels(action=action).inc(summary.counts[action])


def sweep_not_done(result: str) -> None:
    """Count one scheduled sweep that did not run: ``skipped`` or ``failed``."""
    _metrics().sweeps.labels(result=result).inc()


def exposition(accept: str | None) -> tuple[bytes, str]:
    """Every metric, and its content type, in the format the scraper's ``Accept`` header asks
    for: Prometheus' text format (the version it names), or OpenMetrics."""
    _metrics()  # so that a scrape before any event still lists leadrelay's metrics
    encode, content_type = choose_encoder(accept or "")
    return encode(_registry()), content_type


def current(name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every sample named ``name`` (``leadrelay_notifier_deliveries_total``), summed across
    the server's workers, keyed by its labels."""
    totals: dict[frozenset[tuple[str, str]], float] = {}
    for family in _registry().collect():
        for sample in family.samples:
            if sample.name == name:
                labels = frozenset((k, v) for k, v in sample.labels.items() if k != "pid")
                totals[labels] = totals.get(labels, 0.0) + sample.value
    return totals


# A value file starts with an 8-byte count of the bytes it uses (prometheus_client's mmap_dict).
_HEADER_BYTES = 8


def _registry() -> CollectorRegistry:
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    # A fresh registry per scrape, as prometheus_client's multiprocess mode requires.
    registry = CollectorRegistry()
    _SettledFilesCollector(registry)  # type: ignore[no-untyped-call]
    return registry


class _SettledFilesCollector(multiprocess.MultiProcessCollector):
    """prometheus_client's multiprocess collector, minus value files still being created.

    A worker creates its file empty and only then sizes it: a scrape that reads it in between
    fails on the empty header (``struct.error``), and the whole scrape answers 500. Such a
    file holds no value yet, so leaving it out loses nothing.
    """

    def collect(self) -> Iterable[Any]:
        files = []
        for path in Path(self._path).glob("*.db"):
            try:
                if path.stat().st_size >= _HEADER_BYTES:
                    files.append(str(path))
            except FileNotFoundError:  # a dead worker's file, removed meanwhile
                continue
        return self.merge(files, accumulate=True)  # type: ignore[no-untyped-call,no-any-return]


def use_multiprocess_dir(env: dict[str, str] | os._Environ[str] = os.environ) -> Path | None:
    """Put this process (and the workers it will fork) in multiprocess mode, before forking.

    The operator's ``PROMETHEUS_MULTIPROC_DIR`` is used when set (created if missing);
    otherwise a new private (0700) directory, returned so that the caller removes it at exit.
    Either way it is emptied first: values of an earlier run would be added to this one's.
    """
    given = env.get(MULTIPROC_ENV)
    if given:
        directory, made = Path(given), None
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            for pattern in VALUE_FILES:
                _empty(directory.glob(pattern))
        except OSError as exc:
            raise LeadRelayError(f"{MULTIPROC_ENV}: cannot use {given}: {exc.strerror}") from None
    else:
        directory = made = Path(tempfile.mkdtemp(prefix="leadrelay-metrics-"))
        env[MULTIPROC_ENV] = str(directory)
    # prometheus_client picks its value class when first imported, which the CLI did before
    # reading this setting (the CRM clients count with it): pick again, in the new mode. No
    # value exists yet to keep (every series is labelled or built on first use).
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return made


def _empty(files: Iterable[Path]) -> None:
    for file in files:
        file.unlink(missing_ok=True)


def worker_exited(pid: int) -> None:
    """gunicorn's ``child_exit``: a dead worker's live gauges must not be read any more."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def remove_dir(directory: Path) -> None:
    """Remove the private metrics directory ``use_multiprocess_dir`` made."""
    shutil.rmtree(directory, ignore_errors=True)
