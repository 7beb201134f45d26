"""What the two Salesforce endpoints share: the app's Salesforce connection and secret checks."""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Sequence

from flask import current_app

from adapters.salesforce.accounts import (
    fill_account_owners,
    needs_account_owner,
    no_account_owners,
)
from adapters.salesforce.api import owner_writer
from adapters.salesforce.tasks import SalesforceTasks
from connector.shared import leadrelay
from workflows.delivery import OwnerWriter
from workflows.errors import CrmError
from workflows.follow_up import tasks_configured
from workflows.model import Lead

log = logging.getLogger("leadrelay.salesforce")


def salesforce_writer() -> OwnerWriter:
    """The owner writer over this app's one Salesforce connection (signed in on first use)."""
    return owner_writer(leadrelay().salesforce_connection())


def salesforce_tasks() -> SalesforceTasks | None:
    """The follow-up task writer over the same connection, when app.yaml asks for tasks."""
    app = leadrelay()
    return SalesforceTasks(app.salesforce_connection()) if tasks_configured(app.config) else None


def secret_matches(given: str | None, env_name: str) -> bool:
    """True when ``given`` equals the secret in ``$env_name`` (constant time; unset: False)."""
    expected = os.environ.get(env_name, "")
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def with_account_owners(leads: Sequence[Lead]) -> None:
    """Fill each lead's account owner, in one query per batch, when app.yaml's rules read it
    (worked out once per app); CrmError when Salesforce fails."""
    app = leadrelay()
    needed = current_app.extensions.get("salesforce_account_rules")
    if needed is None:
        needed = current_app.extensions["salesforce_account_rules"] = needs_account_owner(
            app.config
        )
    if not needed or not leads:
        return
    try:
        app.salesforce_connection().call(lambda sf: fill_account_owners(sf, leads))
    except CrmError as exc:
        if not exc.is_final:
            raise  # an outage, or a sign-in problem: fixed, a retry finds the owners
        # Refused for good (no read access to Account, a field the org hides): no retry
        # would help, so the leads are routed by the account rules' else.
        log.error("reading account owners failed for good, routing by else: %s", exc)
        no_account_owners(leads, f"Salesforce refused the account query: {exc}")
