"""What the two Salesforce endpoints share: the app's Salesforce connection and secret checks."""

from __future__ import annotations

import hmac
import os

from flask import current_app

from adapters.salesforce.api import owner_writer
from adapters.salesforce.auth import SalesforceConnection
from connector.shared import leadrelay
from workflows.delivery import OwnerWriter

# Key in ``app.extensions``; tests may place their own SalesforceConnection there.
EXTENSION = "leadrelay.salesforce"


def salesforce_writer() -> OwnerWriter:
    """The owner writer over this app's one Salesforce connection (signed in on first use)."""
    extensions = current_app.extensions
    connection = extensions.get(EXTENSION)
    if connection is None:
        api_version = leadrelay().config.salesforce.api_version
        # setdefault: two threads racing here end up sharing one connection.
        connection = extensions.setdefault(EXTENSION, SalesforceConnection(api_version))
    return owner_writer(connection)


def secret_matches(given: str | None, env_name: str) -> bool:
    """True when ``given`` equals the secret in ``$env_name`` (constant time; unset: False)."""
    expected = os.environ.get(env_name, "")
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
