"""``leadrelay hubspot``: write the app's project or register the action of an existing public
app, list owners, lift a 429's pause."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from adapters.hubspot.client import api_base, resume_budgets
from adapters.hubspot.contact import ACCESS_TOKEN_ENV, CLIENT_SECRET_ENV, DEVELOPER_KEY_ENV
from adapters.hubspot.definition import action_definition, register_action
from adapters.hubspot.limits import RateLimiter
from adapters.hubspot.project import (
    ACTION_FILE,
    APP_FILE,
    ProjectDirNotEmpty,
    project_files,
    write_project,
)
from connector.hubspot_signature import PUBLIC_URL_ENV
from connector.services import build_services
from workflows.errors import CrmError, LeadRelayError

ACTION_PATH = "/hubspot/action"


def _env(name: str, purpose: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise click.ClickException(f"{name} is not set: it is needed to {purpose}")
    return value


def _action_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(
            f"expected https://host{ACTION_PATH}, got {url!r}", param_hint="--url"
        )
    if parts.path in ("", "/"):  # the admin gave the server's address
        url = url.rstrip("/") + ACTION_PATH
    if parts.scheme != "https":
        click.echo("warning: HubSpot only calls https:// action URLs", err=True)
    public = os.environ.get(PUBLIC_URL_ENV)
    if public and not url.startswith(public.rstrip("/")):
        click.echo(
            f"warning: {PUBLIC_URL_ENV}={public} does not prefix {url}; signatures will not "
            "verify unless it names the host HubSpot calls",
            err=True,
        )
    return url


@click.group("hubspot")
def hubspot() -> None:
    """HubSpot: write the app's project, list owners, lift a 429's pause."""


@hubspot.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--url", required=True, help=f"Public URL of {ACTION_PATH} (https).")
@click.option("--name", default="leadrelay", show_default=True, help="The app's name in HubSpot.")
@click.option("--force", is_flag=True, help="Overwrite the project's files in a non-empty DIR.")
@click.pass_obj
def project(state: Any, directory: Path, url: str, name: str, force: bool) -> None:
    """Write a HubSpot project (platform 2025.2) with the app and its workflow action."""
    config = state.config
    if not name.strip() or not name.isprintable():
        raise click.BadParameter(
            "the app needs a name of printable characters, on one line", param_hint="--name"
        )
    files = project_files(config, _action_url(url), name.strip())
    try:
        written = write_project(directory, files, force=force)
    except ProjectDirNotEmpty as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write the project into {directory}: {exc}") from None
    for path in written:
        click.echo(f"wrote {path}")
    scopes = files[APP_FILE]["config"]["auth"]["requiredScopes"]
    properties = files[ACTION_FILE]["config"]["objectRequestOptions"]["properties"]
    mode = config.hubspot.write_owner
    click.echo(f"scopes for write_owner: {mode}: {', '.join(scopes)}")
    click.echo(_sends(config, properties))
    records = _records(config)
    click.echo(
        "next steps:\n"
        f"  1. cd {shlex.quote(str(directory))} && hs project upload\n"
        "     (HubSpot's CLI: npm install -g @hubspot/cli; `hs account auth` first)\n"
        "  2. In HubSpot, Development > Projects > your project > the app > Auth: copy the\n"
        f"     client secret into {CLIENT_SECRET_ENV} and the static access token into\n"
        f"     {ACCESS_TOKEN_ENV} (leadrelay's environment, never app.yaml); install the app in\n"
        f"     the account whose {records} you route.\n"
        '  3. leadrelay check; then add "Rotate to owner via leadrelay" to a workflow of\n'
        f"     {records} (hubspot.objects).\n"
        "  Run this command and `hs project upload` again after changing rules, write_owner,\n"
        "  hubspot.objects or task: (the properties and scopes the app needs follow them)."
    )


@hubspot.command()
@click.option("--app-id", required=True, type=int, help="Your HubSpot app's id.")
@click.option("--url", required=True, help=f"Public URL of {ACTION_PATH} (https).")
@click.option("--dry-run", is_flag=True, help="Print the definition JSON; change nothing.")
@click.pass_obj
def register(state: Any, app_id: int, url: str, dry_run: bool) -> None:
    """Create or update the action of an existing public app (the definitions API)."""
    config = state.config
    definition = action_definition(config, _action_url(url))
    if dry_run:
        click.echo(json.dumps(definition, indent=2))
        return
    key = _env(DEVELOPER_KEY_ENV, "register actions (developer account > Keys > Developer API key)")
    try:
        how, definition_id = register_action(
            app_id, definition, developer_key=key, host=api_base(config)
        )
    except CrmError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{how} action {definition_id} for app {app_id}: {definition['actionUrl']}")
    click.echo(_sends(config, definition["objectRequestOptions"]["properties"]))


def _records(config: Any) -> str:
    """The records the action is offered on, for a person: "contacts, deals and tickets"."""
    names = ["companies" if kind == "company" else f"{kind}s" for kind in config.hubspot.objects]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _sends(config: Any, properties: list[str]) -> str:
    # One list for every object type: HubSpot sends each record those of its own type it has.
    return f"HubSpot will send these properties of the {_records(config)}: {', '.join(properties)}"


@hubspot.command()
@click.pass_obj
def owners(state: Any) -> None:
    """List HubSpot owners (id, email, name) to fill reps' hubspot_owner_id."""
    config = state.config
    token = _env(ACCESS_TOKEN_ENV, "list owners")
    try:
        # Its own pace, as ever: a listing spends nothing of the serving processes' budget.
        api = build_services(config).hubspot_api(token, limiter=RateLimiter())
        found = api.owners()
    except CrmError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{'id':<12} {'email':<32} {'name':<28} rep in app.yaml")
    for owner in found:
        rep = config.rep_by_crm_id("hubspot", owner.id)
        email, name = owner.email or "-", owner.name[:28]
        click.echo(f"{owner.id:<12} {email:<32} {name:<28} {rep.id if rep else '-'}")
    click.echo(f"{len(found)} owners; use the id (not the user id) as hubspot_owner_id")


@hubspot.command()
@click.pass_obj
def resume(state: Any) -> None:
    """Lift the pause a HubSpot 429 put on every leadrelay process's HubSpot calls."""
    try:
        lifted = resume_budgets(state.config)
    except OSError as exc:
        raise click.ClickException(
            f"cannot change the HubSpot budget file {exc.filename}: {exc.strerror}"
        ) from None
    except LeadRelayError as exc:  # a value name or store URL it cannot use
        raise click.ClickException(str(exc)) from None
    for where, pause in lifted:
        click.echo(f"lifted: {pause.describe()} [{where}]")
    if not lifted:
        click.echo("HubSpot calls were not paused; nothing to lift")
