"""What the two Salesforce endpoints share: the app's Salesforce connection and secret checks."""

from __future__ import annotations

import hmac
import os

from adapters.salesforce.api import owner_writer
from adapters.salesforce.tasks import SalesforceTasks
from connector.shared import leadrelay
from workflows.delivery import OwnerWriter
from workflows.follow_up import tasks_configured


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
