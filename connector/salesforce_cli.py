"""``leadrelay salesforce ...``: commands an admin runs while connecting Salesforce."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from adapters.salesforce.api import list_users
from connector.services import build_services
from workflows.errors import CrmError


@click.group("salesforce")
def salesforce() -> None:
    """Salesforce: list users to map reps, with the credentials in the environment."""


@salesforce.command("users")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per user.")
@click.pass_obj
def users(state: Any, as_json: bool) -> None:
    """List active Salesforce users (id, email, name) to fill reps' salesforce_user_id.

    The rep column names the leadrelay rep already mapped to each user, if any.
    """
    config = state.config  # the CLI's state: app.yaml, loaded and validated once
    try:
        found = build_services(config).salesforce_connection().call(list_users)
    except CrmError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    rows = []
    for user in found:
        rep = config.rep_by_crm_id("salesforce", user.id)
        rows.append({"id": user.id, "email": user.email, "name": user.name,
                     "rep": rep.id if rep else ""})  # fmt: skip
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    width = max((len(r["email"]) for r in rows), default=5)
    click.echo(f"{'id':<18}  {'email':<{width}}  {'rep':<12}  name")
    for row in rows:
        click.echo(
            f"{row['id']:<18}  {row['email']:<{width}}  {row['rep'] or '-':<12}  {row['name']}"
        )
    click.echo(f"{len(rows)} active users", err=True)
