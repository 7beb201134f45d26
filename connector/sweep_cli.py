"""``leadrelay sweep --once``: run the SLA sweep now (or preview it), and what ``serve``
shares with it: a sweep under the sweep lock. The CRM readers come from ``connector.services``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import click

from connector.cli_time import TIME_HELP
from connector.services import build_services
from workflows.config import Config
from workflows.notify import Notifier
from workflows.router import Router
from workflows.sweep import LeadReader, SweepAction, SweepSummary
from workflows.sweep import sweep as run_sweep
from workflows.sweep_lock import sweep_lock

log = logging.getLogger("leadrelay.sweep")


def locked_sweep(
    router: Router,
    readers: Mapping[str, LeadReader],
    now: datetime,
    notifier: Notifier,
    on_action: Callable[[SweepAction], None] | None = None,
) -> SweepSummary | None:
    """Sweep unless another sweep (any process) runs: then None, at once."""
    with sweep_lock(router.store) as held:
        if not held:
            log.info("another process is sweeping; skipping this run")
            return None
        return run_sweep(router, readers, now, notify=notifier.deliveries, on_action=on_action)


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
            found = locked_sweep(router, readers, now, services.notifier, on_action=show)
            if found is None:
                click.echo("error: another sweep is running; try again later", err=True)
                sys.exit(EXIT_NOT_RUN)
            summary = found
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
