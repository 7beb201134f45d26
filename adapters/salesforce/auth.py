"""Sign in to Salesforce from the environment, and share one signed-in client per process.

Credentials are read in this order; the first complete set wins:

1. ``SALESFORCE_INSTANCE_URL`` + ``SALESFORCE_ACCESS_TOKEN``: a token obtained elsewhere. It
   cannot be renewed here; when it expires, writes fail until it is replaced.
2. OAuth 2.0 JWT bearer: ``SALESFORCE_USERNAME``, ``SALESFORCE_CONSUMER_KEY``,
   ``SALESFORCE_PRIVATE_KEY_FILE`` (``SALESFORCE_DOMAIN``: login, test or ``acme.my``).
3. OAuth 2.0 client credentials: ``SALESFORCE_CONSUMER_KEY``, ``SALESFORCE_CONSUMER_SECRET``,
   ``SALESFORCE_DOMAIN`` (a My Domain such as ``acme.my``).
4. Legacy: ``SALESFORCE_USERNAME``, ``SALESFORCE_PASSWORD``, ``SALESFORCE_SECURITY_TOKEN``
   (SOAP login: off by default in new orgs, unavailable from API v65.0, retired in Summer '27).

Modes 2 to 4 sign in again by themselves when Salesforce answers 401 INVALID_SESSION_ID
(simple-salesforce refreshes the session and repeats the call).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import jwt
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

from adapters.salesforce.errors import crm_error
from workflows.errors import CrmError

log = logging.getLogger("leadrelay.salesforce")
T = TypeVar("T")

# Without it the REST API runs the org's active assignment rule on every update, which can
# silently replace the owner leadrelay just wrote.
AUTO_ASSIGN_HEADER = {"Sforce-Auto-Assign": "FALSE"}


@dataclass(frozen=True)
class AuthMode:
    """One way to sign in: ``Salesforce()`` keyword -> the environment variable that fills it."""

    name: str
    keywords: dict[str, str]
    legacy: bool = False

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.keywords.values())

    def options(self, env: Mapping[str, str]) -> dict[str, Any]:
        """Keyword arguments for ``Salesforce()``; login modes take the optional domain."""
        options: dict[str, Any] = {key: env[name] for key, name in self.keywords.items()}
        if "session_id" not in options:
            options["domain"] = env.get("SALESFORCE_DOMAIN") or None  # None: login
        return options


ENV_MODES = (
    AuthMode(
        "access token",
        {"instance_url": "SALESFORCE_INSTANCE_URL", "session_id": "SALESFORCE_ACCESS_TOKEN"},
    ),
    AuthMode(
        "JWT bearer",
        {
            "username": "SALESFORCE_USERNAME",
            "consumer_key": "SALESFORCE_CONSUMER_KEY",
            "privatekey_file": "SALESFORCE_PRIVATE_KEY_FILE",
        },
    ),
    AuthMode(
        "client credentials",
        {
            "consumer_key": "SALESFORCE_CONSUMER_KEY",
            "consumer_secret": "SALESFORCE_CONSUMER_SECRET",
            "domain": "SALESFORCE_DOMAIN",
        },
    ),
    AuthMode(
        "username and password (legacy)",
        {
            "username": "SALESFORCE_USERNAME",
            "password": "SALESFORCE_PASSWORD",
            "security_token": "SALESFORCE_SECURITY_TOKEN",
        },
        legacy=True,
    ),
)


def auth_mode(env: Mapping[str, str]) -> AuthMode | None:
    """The first sign-in mode whose variables are all set, or None."""
    for mode in ENV_MODES:
        if all(env.get(name) for name in mode.required):
            return mode
    return None


def missing_credentials(env: Mapping[str, str]) -> list[str]:
    """The variables the nearest-complete modern mode still needs (for an admin's message)."""
    modern = [m for m in ENV_MODES if not m.legacy]
    nearest = min(modern, key=lambda m: sum(not env.get(n) for n in m.required))
    return [name for name in nearest.required if not env.get(name)]


def auth_session() -> requests.Session:
    """A requests session whose every call carries ``Sforce-Auto-Assign: FALSE``.

    On the session, not per call: simple-salesforce drops per-call headers when it signs in
    again and repeats a call after a 401.
    """
    session = requests.Session()
    session.headers.update(AUTO_ASSIGN_HEADER)
    return session


def connect(env: Mapping[str, str], api_version: str) -> Salesforce:
    """Sign in with the first complete set of credentials; CrmError (never a secret) if not."""
    mode = auth_mode(env)
    if mode is None:
        raise CrmError(
            "no Salesforce credentials in the environment (missing: "
            f"{', '.join(missing_credentials(env))}); see docs/salesforce.md",
            retryable=False,
            setup=True,
        )
    if mode.legacy:
        if _major(api_version) >= 65:
            raise CrmError(
                "username + password login is unavailable from API v65.0: use JWT bearer or"
                " client credentials",
                retryable=False,
                setup=True,
            )
        log.warning(
            "signing in to Salesforce with username + password + security token: a legacy"
            " mode Salesforce is retiring; switch to JWT bearer or client credentials"
        )
    try:
        return Salesforce(session=auth_session(), version=api_version, **mode.options(env))
    except (SalesforceError, requests.RequestException) as exc:
        error = crm_error(exc, f"signing in to Salesforce ({mode.name})")
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        # Only the JWT flow reads a file and signs: an unreadable or invalid private key.
        error = CrmError(
            f"cannot sign in with SALESFORCE_PRIVATE_KEY_FILE: {type(exc).__name__}: {exc}",
            retryable=False,
            setup=True,
        )
    log.error("%s", error)
    raise error from None


def _major(api_version: str) -> int:
    try:
        return int(float(api_version))
    except ValueError:
        raise CrmError(
            f"salesforce.api_version {api_version!r} is not a version like 59.0",
            retryable=False,
            setup=True,
        ) from None


class SalesforceConnection:
    """One process's Salesforce client: signed in on first use, shared by its threads.

    A failed sign-in is not kept, so the next call tries again (after the admin fixes the
    environment, or the network comes back).
    """

    def __init__(
        self,
        api_version: str,
        env: Mapping[str, str] | None = None,
        *,
        chunk_size: int | None = None,
    ) -> None:
        self.api_version = api_version
        self.env = os.environ if env is None else env
        self.chunk_size = chunk_size  # None: as many as Salesforce allows per call
        self._client: Salesforce | None = None
        # simple-salesforce swaps its session id when it signs in again; one call at a time.
        self._lock = threading.Lock()

    def call(self, action: Callable[[Salesforce], T]) -> T:
        """Run ``action`` with the signed-in client (signing in first if needed)."""
        with self._lock:
            if self._client is None:
                self._client = connect(self.env, self.api_version)
            return action(self._client)
