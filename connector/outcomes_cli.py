"""``leadrelay outcomes watch``: one pass of the outcome watcher now (or a preview), and what
``serve`` shares with it: a pass under the watcher's lock. The CRM readers come from
``connector.services``; a CRM without credentials is skipped, saying so once."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import click

from adapters.hubspot.contact import ACCESS_TOKEN_ENV
from adapters.salesforce.auth import missing_credentials
from connector.cli_time import TIME_HELP
from connector.services import Services, build_services
from workflows.config import Config, OutcomeSettings
from workflows.outcome_watch import Found, WatchSummary, outcome_lock, watch_outcomes
from workflows.sweep_model import LeadReader

log = logging.getLogger("leadrelay.outcomes")


def no_credentials(services: Services, crm: str) -> str:
    """Why this process cannot read ``crm``, for a person."""
    if crm == "hubspot":
        return f"{ACCESS_TOKEN_ENV} is not set"
    missing = ", ".join(missing_credentials(services.env))
    return f"no Salesforce credentials (missing: {missing})"


def locked_watch(
    services: Services,
    readers: Mapping[str, LeadReader],
    settings: OutcomeSettings,
    now: datetime,
    *,
    on_found: Callable[[Found], None] | None = None,
    on_skip: Callable[[str, int], None] | None = None,
) -> WatchSummary | None:
    """One watcher pass unless another (any process) runs: then None, at once."""
    store = services.store
    with outcome_lock(store) as held:
        if not held:
            log.info("another process is watching outcomes; skipping this run")
            return None
        config = services.config
        return watch_outcomes(
            store, readers, settings, config.timezone, now, on_found=on_found, on_skip=on_skip
        )


EXIT_HELP = """\b
Exit status:
  0  every lead due a look was read (or none was due)
  1  the pass could not run: app.yaml or the store is unusable, or another pass is running
  2  a mistake on the command line
  3  the pass ran, but some leads could not be read (their CRM failed, or this process has
     no credentials for it): the next pass tries them again
"""
EXIT_NOT_RUN = 1
EXIT_UNFINISHED = 3


@click.group("outcomes")
def outcomes() -> None:
    """What became of routed leads: contacted, converted, disqualified (docs/operations.md)."""


@outcomes.command("watch", epilog=EXIT_HELP)
@click.option("--dry-run", is_flag=True, help="Print what would be recorded; change nothing.")
@click.option(
    "--now",
    "now_text",
    metavar="TIME",
    help=f"Watch as if at this time (default now). TIME: {TIME_HELP}.",
)
@click.pass_obj
def watch(state: Any, dry_run: bool, now_text: str | None) -> None:
    """Read each recently routed lead from its CRM once and record its outcomes (one pass;
    serve runs it every outcomes.every)."""
    config: Config = state.config
    now = state.time(now_text, "--now")
    settings = config.outcomes or OutcomeSettings()
    if config.outcomes is None:
        click.echo(
            f"note: no outcomes: section in app.yaml (serve does not watch); this pass uses"
            f" watch_for {settings.watch_for}, every {settings.every}",
            err=True,
        )
    services = build_services(config)
    try:
        readers = services.readers()

        def show(found: Found) -> None:
            click.echo(found.describe(dry_run))

        def skip(crm: str, leads: int) -> None:
            reason = no_credentials(services, crm)
            click.echo(f"{crm}: skipped {leads} lead(s): {reason}", err=True)

        if dry_run:  # reads only: no lock needed, nothing recorded
            summary = watch_outcomes(
                services.store, readers, settings, config.timezone, now, dry_run=True,
                on_found=show, on_skip=skip,
            )  # fmt: skip
        else:
            found = locked_watch(services, readers, settings, now, on_found=show, on_skip=skip)
            if found is None:
                click.echo("error: another outcome watch is running; try again later", err=True)
                sys.exit(EXIT_NOT_RUN)
            summary = found
    finally:
        services.close()
    prefix = "dry run, nothing changed: " if dry_run else ""
    click.echo(f"{prefix}{summary.describe()} (as of {now.isoformat()})")
    if summary.failed or summary.skipped:
        sys.exit(EXIT_UNFINISHED)
