"""``leadrelay sweep --once``: run the SLA sweep now (or preview it), and what ``serve``
shares with it: a sweep under the sweep lock, timed, its summary kept in the store's shared
value ``sweep:last`` for the console. The CRM readers come from ``connector.services``."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click
import orjson

from connector.cli_time import TIME_HELP
from connector.services import build_services
from workflows.config import Config
from workflows.errors import LeadRelayError
from workflows.follow_up import TaskWriter
from workflows.notify import Notifier
from workflows.router import Router
from workflows.store import Store
from workflows.sweep import LeadReader, SweepAction, SweepSummary
from workflows.sweep import sweep as run_sweep
from workflows.sweep_lock import sweep_lock

log = logging.getLogger("leadrelay.sweep")
LAST_SWEEP = "sweep:last"  # the store's shared value holding the last sweep's summary


@dataclass(frozen=True)
class SweepRun:
    """One sweep that ran: what it did, when it started (wall clock) and how long it took."""

    summary: SweepSummary
    started_at: datetime
    seconds: float

    def describe(self) -> str:
        """One line for the server log."""
        return f"{self.summary.describe()} in {self.seconds:.2f} s"

    def to_json(self) -> bytes:
        """What ``sweep:last`` holds (read by the console's health page)."""
        return orjson.dumps(
            {
                "started_at": self.started_at.isoformat(),
                "seconds": round(self.seconds, 3),
                "counts": dict(sorted(self.summary.counts.items())),
                "by": f"pid {os.getpid()}",
            }
        )


def locked_sweep(
    router: Router,
    readers: Mapping[str, LeadReader],
    now: datetime,
    notifier: Notifier,
    on_action: Callable[[SweepAction], None] | None = None,
    tasks: Mapping[str, TaskWriter] | None = None,
) -> SweepRun | None:
    """Sweep unless another sweep (any process) runs: then None, at once. A sweep that ran
    is recorded in ``sweep:last``."""
    with sweep_lock(router.store) as held:
        if not held:
            return None
        started_at, started = datetime.now(UTC), time.perf_counter()
        summary = run_sweep(
            router, readers, now, notify=notifier.deliveries, on_action=on_action, tasks=tasks
        )
        run = SweepRun(summary, started_at, time.perf_counter() - started)
        record_last_sweep(router.store, run)
        return run


def record_last_sweep(store: Store, run: SweepRun) -> None:
    """Keep ``run`` as the store's last sweep; a failure to is logged, never raised (the
    sweep itself is done and recorded)."""
    try:
        with store.shared_value(LAST_SWEEP) as value:
            value.write(run.to_json())
    except (OSError, LeadRelayError) as exc:
        log.warning("could not record the last sweep in %s: %s", LAST_SWEEP, exc)


EXIT_HELP = """\b
Exit status:
  0  every due assignment was handled (or nothing was due)
  1  the sweep could not run: app.yaml or the store is unusable, or another sweep is running
  2  a mistake on the command line (an unknown option, a TIME it cannot read)
  3  the sweep ran, but some leads failed or were skipped (no credentials for their CRM):
     they stay due and the next sweep tries them again; or their CRM refused an owner for
     good (write_failed: an inactive user, a deleted record): a person must look
"""
# Exit statuses, for cron and monitoring (documented in --help and docs/sla.md).
EXIT_NOT_RUN = 1  # the sweep could not run: bad app.yaml, unusable store, another sweep running
EXIT_UNFINISHED = 3  # it ran, but some leads failed, were skipped or refused by their CRM
UNFINISHED = ("failed", "skipped", "write_failed")  # the actions that need a person's look


@click.command("sweep", epilog=EXIT_HELP)
@click.option("--once", is_flag=True, help="Sweep now, once (serve sweeps on a schedule).")
@click.option("--dry-run", is_flag=True, help="Print what the sweep would do; change nothing.")
@click.option(
    "--now", "now_text", metavar="TIME",
    help=f"Sweep as if at this time (default now). TIME: {TIME_HELP}.",
)  # fmt: skip
@click.pass_obj
def sweep(state: Any, once: bool, dry_run: bool, now_text: str | None) -> None:
    """Settle or reassign every lead whose first-touch SLA ran out; print each, then a sum."""
    if not once:
        raise click.UsageError("pass --once (leadrelay serve runs the sweep on a schedule)")
    config: Config = state.config
    now = state.time(now_text, "--now")
    services = build_services(config)
    try:
        router = services.router
        readers = services.readers()

        def show(action: SweepAction) -> None:
            click.echo(action.describe(dry_run))

        if dry_run:
            summary = run_sweep(router, readers, now, dry_run=True, on_action=show)
        else:
            found = locked_sweep(
                router, readers, now, services.notifier, on_action=show,
                tasks=services.task_writers(),
            )  # fmt: skip
            if found is None:
                click.echo("error: another sweep is running; try again later", err=True)
                sys.exit(EXIT_NOT_RUN)
            summary = found.summary
    finally:
        services.close()
    prefix = "dry run, nothing changed: " if dry_run else ""
    click.echo(f"{prefix}{summary.describe()} (as of {now.isoformat()})")
    unfinished = sum(summary.counts[action] for action in UNFINISHED)
    if unfinished:
        click.echo(
            f"error: {unfinished} lead(s) need a look: failed or skipped ones stay due, a"
            " refused owner (write_failed) does not",
            err=True,
        )
        sys.exit(EXIT_UNFINISHED)
