"""``leadrelay reassign --from REP``: move a departing rep's leads, in every CRM they own some.

Each CRM with credentials is searched for the rep's leads (``adapters/*_search.py``); each lead
is routed again without the rep (``workflows.reassign``) and written back in batches. A CRM
without credentials is skipped, saying so. Run again after an interruption, it finishes the
rest and reassigns nothing twice.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

from adapters.hubspot import search as hubspot_search
from adapters.hubspot.contact import (
    ACCESS_TOKEN_ENV,
    ContactNeeds,
    referenced_fields,
)
from adapters.hubspot.limits import RateLimiter, RetryPolicy
from adapters.hubspot.objects import lead_from_object
from adapters.salesforce import search as salesforce_search
from adapters.salesforce.api import owner_writer
from adapters.salesforce.auth import missing_credentials
from adapters.salesforce.lead import record_from_fields
from adapters.salesforce.objects import OBJECTS as SALESFORCE_TYPES
from connector.interrupts import DeferredStop
from connector.services import Services, build_services
from workflows.config import Config
from workflows.delivery import OwnerWriter
from workflows.errors import CrmError, LeadError
from workflows.model import HUBSPOT_OBJECTS, OBJECT_KINDS, SALESFORCE_OBJECTS, Rep
from workflows.reassign import WHY_LIMIT, Outcome, Owned, Reassignment
from workflows.router import Router

# A command line can wait longer than a CRM's request: retry harder, still within search's
# few requests a second (the limiter is shared by the searches and the writes).
POLICY = RetryPolicy(attempts=5, first_backoff=0.5, read_timeout=20.0, budget=60.0)
SEARCH_PER_SECOND = 4.0


EXIT_HELP = """\b
Exit status:
  0    every lead listed was handled
  1    something is left to do (a CRM failed): run the same command again
  130  stopped by Ctrl-C (143: by SIGTERM) once the batch in flight was written, printed and
       announced: run the same command again to finish
"""


@dataclass
class Book:
    """What one CRM shows the rep owning, and how to write that CRM's owners."""

    crm: str
    total: int
    owned: Iterator[Owned]
    write: OwnerWriter


@click.command("reassign", epilog=EXIT_HELP)
@click.option("--from", "from_rep", required=True, help="The rep (app.yaml id) who is leaving.")
@click.option("--to", "to", help="Route from this pool (or pool:NAME, rule:NAME) instead.")
@click.option("--flow", "whole_flow", is_flag=True, help="Route through the whole flow (default).")
@click.option("--only-open", is_flag=True, help="Leave converted and closed leads alone.")
@click.option(
    "--object",
    "objects",
    multiple=True,
    type=click.Choice(OBJECT_KINDS),
    help="Which records to move (repeatable; default: HubSpot contacts and Salesforce leads).",
)
@click.option("--dry-run", is_flag=True, help="Change nothing; print what would happen.")
@click.option(
    "--why", metavar="TEXT", help=f"Why, for each moved lead's log row (up to {WHY_LIMIT} chars)."
)
@click.pass_obj
def reassign(
    state: Any,
    from_rep: str,
    to: str | None,
    whole_flow: bool,
    only_open: bool,
    objects: tuple[str, ...],
    dry_run: bool,
    why: str | None,
) -> None:
    """Route every lead the CRMs show FROM owning again without them, and write the owners."""
    config: Config = state.config
    if to and whole_flow:
        raise click.UsageError("give --to or --flow, not both")
    if from_rep not in config.reps:
        raise click.BadParameter(f"no rep {from_rep!r} in app.yaml", param_hint="--from")
    if to and not config.accepts_entry(to):
        choices = ", ".join(config.entry_points())
        message = f"{to!r} is not a pool or top-level rule ({choices})"
        raise click.BadParameter(message, param_hint="--to")
    if why is not None and len(why) > WHY_LIMIT:
        raise click.BadParameter(
            f"at most {WHY_LIMIT} characters, got {len(why)}", param_hint="--why"
        )
    rep = config.reps[from_rep]
    if rep.active and not dry_run:
        note = f"note: {from_rep} is still active in app.yaml: new leads still reach them"
        click.echo(f"{note} (set active: false)", err=True)
    services = build_services(config)
    try:
        store = services.store
        # A dry run decides on a scratch copy: rotation advances as it would, nothing stays.
        work = store.snapshot() if dry_run else store
        try:
            router = Router(config, work) if dry_run else services.router
            status = _run(services, router, rep, to, only_open, dry_run, why, objects)
        finally:
            if work is not store:
                work.close()
    finally:
        services.close(10)
    if status:
        sys.exit(status)


def _run(
    services: Services,
    router: Router,
    rep: Rep,
    to: str | None,
    only_open: bool,
    dry: bool,
    why: str | None = None,
    objects: tuple[str, ...] = (),
) -> int:
    """Reassign every CRM's book of ``rep`` through ``router``; the exit status."""
    notifier = services.notifier
    stop = DeferredStop(
        "stopping once the batch in flight is written, printed and announced; "
        "press Ctrl-C again to stop at once (that batch would then go unannounced)"
    )
    job = Reassignment(
        router,
        rep.id,
        datetime.now(UTC),
        entry=to,
        only_open=only_open,
        dry_run=dry,
        notify=lambda ds: notifier.deliveries("reassigned", ds),
        stopping=lambda: stop.requested,
        why=why,
        tasks=services.task_writers(),
    )
    counts: Counter[str] = Counter()
    complete = True
    with stop:  # also while the last webhooks go out
        try:
            for crm, kind, open_book in _books(objects):
                if stop.requested:
                    break
                try:
                    book = open_book(services, rep, kind)
                    if isinstance(book, str):
                        click.echo(f"{crm}: skipped: {book}", err=True)
                        continue
                    label = f"{crm}: {book.total} {kind}(s) of {rep.id}"
                    with click.progressbar(length=book.total, label=label, file=sys.stderr) as bar:
                        for batch in job.batches(book.owned, book.write):
                            for outcome in batch:
                                counts[outcome.status] += 1
                                click.echo(_line(crm, rep.id, outcome))
                            bar.update(len(batch))
                except CrmError as exc:
                    complete = False
                    click.echo(f"{crm}: stopped: {exc}", err=True)
        finally:
            notifier.close(10)
    summary = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(counts.items()))
    click.echo(f"{'dry run: ' if dry else ''}{summary or 'nothing to do'}", err=True)
    again = "run the same command again to finish (nothing is reassigned twice)"
    if stop.requested:
        done = sum(counts.values())
        click.echo(f"interrupted: stopped after {done} lead(s), each printed above; {again}",
                   err=True)  # fmt: skip
        return stop.exit_status
    if counts["failed"] or not complete:
        click.echo(f"not finished: {again}", err=True)
        return 1
    return 0


def _line(crm: str, from_rep: str, outcome: Outcome) -> str:
    decision = outcome.decision
    to = decision.rep_id if decision and decision.rep_id else "-"
    rule = f" by {decision.rule}" if decision else ""
    verb = {"would_reassign": "would move", "already_done": "already moved"}
    status = verb.get(outcome.status, outcome.status)
    return f"{crm} {outcome.lead.id}: {status} {from_rep} -> {to}{rule}: {outcome.detail}"


def _books(objects: tuple[str, ...]) -> list[tuple[str, str, Any]]:
    """(crm, object kind, book opener) for each kind asked for that the CRM has; without
    ``--object``, HubSpot contacts and Salesforce leads."""
    hubspot = [k for k in HUBSPOT_OBJECTS if k in objects] if objects else ["contact"]
    salesforce = [k for k in SALESFORCE_OBJECTS if k in objects] if objects else ["lead"]
    return [("hubspot", kind, _hubspot_book) for kind in hubspot] + [
        ("salesforce", kind, _salesforce_book) for kind in salesforce
    ]


def _hubspot_book(services: Services, rep: Rep, kind: str = "contact") -> Book | str:
    config = services.config
    if not rep.hubspot_owner_id:
        return f"{rep.id} has no hubspot_owner_id in app.yaml"
    token = services.hubspot_token()
    if not token:
        return f"{ACCESS_TOKEN_ENV} is not set"
    limiter = RateLimiter(per_second=SEARCH_PER_SECOND, burst=4)
    api = services.hubspot_api(token, limiter=limiter, policy=POLICY)
    search = hubspot_search.HubSpotSearch(api, kind)
    needs = ContactNeeds.of(config, kind)
    total, contacts = search.owned_by(rep.hubspot_owner_id, needs.properties)

    def owned() -> Iterator[Owned]:
        for contact_id, props in contacts:
            company_owner = (
                api.account_owner(props, api.deadline()) if needs.account_owner else None
            )
            yield Owned(
                lead_from_object(search.object, contact_id, props, company_owner),
                hubspot_search.closed_reason(props, config),
                hubspot_search.owner_marker(props),
            )

    return Book("hubspot", total, owned(), lambda batch: api.write_owners(batch, api.deadline()))


def _salesforce_book(services: Services, rep: Rep, kind: str = "lead") -> Book | str:
    config = services.config
    if not rep.salesforce_user_id:
        return f"{rep.id} has no salesforce_user_id in app.yaml"
    if not services.has_salesforce_credentials():
        missing = ", ".join(missing_credentials(services.env))
        return f"no Salesforce credentials (missing: {missing})"
    connection = services.salesforce_connection()
    extra = [name[4:] for name in referenced_fields(config) if name.startswith("raw.")]
    total, rows = salesforce_search.owned_by(connection, rep.salesforce_user_id, extra, kind)
    obj = SALESFORCE_TYPES[kind]

    def owned() -> Iterator[Owned]:
        for row in rows:
            try:
                lead = record_from_fields(row, obj)
            except LeadError as exc:
                click.echo(f"salesforce {row.get('Id')}: skipped, unreadable: {exc}", err=True)
                continue
            yield Owned(lead, salesforce_search.closed_reason(row, config))

    return Book("salesforce", total, owned(), owner_writer(connection))
