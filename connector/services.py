"""The one place that builds what leadrelay runs on: config, store, router, notifier, CRM clients.

The app factory, ``serve``'s sweeper and every CLI command call ``build_services`` and take what
they need from it. Everything but the config is built on first use, so a command that lists
Salesforce users never opens the store, and one that routes never reads a webhook URL; and
each thing is built once per process, so the gunicorn threads of one worker share one HubSpot
client (its limiter) and one Salesforce sign-in.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from adapters.hubspot.client import HubSpotApi, api_base, budget_limiter
from adapters.hubspot.contact import ACCESS_TOKEN_ENV
from adapters.hubspot.limits import RateLimiter, RetryPolicy
from adapters.hubspot.links import APP_BASE_ENV, contact_link
from adapters.hubspot.read import HubSpotReader
from adapters.hubspot.tasks import HubSpotTasks
from adapters.salesforce.auth import SalesforceConnection, auth_mode
from adapters.salesforce.links import lead_link
from adapters.salesforce.read import SalesforceReader
from adapters.salesforce.tasks import SalesforceTasks
from adapters.webhook import webhook_sender
from workflows.config import Config
from workflows.follow_up import TaskWriter, tasks_configured
from workflows.notify import Link, Notifier
from workflows.router import Router
from workflows.store import Store
from workflows.store_registry import open_store
from workflows.sweep import LeadReader


@dataclass
class Services:
    """One process's services. Built by ``build_services``; ``close()`` when done."""

    config: Config
    env: Mapping[str, str]
    # HubSpot clients on the shared API budget, by (token, API base); a bench may put its own.
    hubspot_apis: dict[tuple[str, str], HubSpotApi] = field(default_factory=dict)
    # The process's Salesforce connection, built on first use; a test may put its own.
    salesforce: SalesforceConnection | None = None
    _store: Store | None = None
    _router: Router | None = None
    _notifier: Notifier | None = None
    # Reentrant: building the router opens the store under the same lock.
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def store(self) -> Store:
        """The store of ``config.store_url``, opened on first use."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self.config.store_url)
            return self._store

    @property
    def router(self) -> Router:
        with self._lock:
            if self._router is None:
                self._router = Router(self.config, self.store)
            return self._router

    @property
    def notifier(self) -> Notifier:
        """The webhooks of ``config.notify``, posted over HTTP, linking to each CRM's record."""
        with self._lock:
            if self._notifier is None:
                self._notifier = Notifier.from_config(
                    self.config,
                    self.env,
                    send=webhook_sender(),
                    link=record_link(self.config, self.env),
                )
            return self._notifier

    def open(self) -> Services:
        """Build the store, router and notifier now: a server says at start, not at its first
        request, that its store cannot be opened or that a webhook is off."""
        self.router  # noqa: B018 (opens the store too)
        self.notifier  # noqa: B018
        return self

    def hubspot_token(self) -> str | None:
        return self.env.get(ACCESS_TOKEN_ENV) or None

    def hubspot_api(
        self,
        token: str,
        *,
        limiter: RateLimiter | None = None,
        policy: RetryPolicy | None = None,
    ) -> HubSpotApi:
        """The HubSpot client for ``token``: one per process, on the API budget that every
        process serving the same store spends together.

        With ``limiter`` or ``policy``, a new client paced by them instead (a command line
        that keeps its own pace), not kept.
        """
        host = api_base(self.config)
        if limiter is not None or policy is not None:
            return HubSpotApi(access_token=token, host=host, limiter=limiter, policy=policy)
        with self._lock:
            api = self.hubspot_apis.get((token, host))
            if api is None:
                limiter = budget_limiter(self.config, token, lambda: self.store)
                api = HubSpotApi(access_token=token, host=host, limiter=limiter)
                self.hubspot_apis[(token, host)] = api
            return api

    def has_salesforce_credentials(self) -> bool:
        return auth_mode(self.env) is not None

    def salesforce_connection(self) -> SalesforceConnection:
        """The process's Salesforce connection (it signs in on its first call)."""
        with self._lock:
            if self.salesforce is None:
                self.salesforce = SalesforceConnection(self.config.salesforce.api_version, self.env)
            return self.salesforce

    def readers(self) -> dict[str, LeadReader]:
        """The sweep's reader of each CRM whose credentials are in the environment."""
        readers: dict[str, LeadReader] = {}
        token = self.hubspot_token()
        if token:
            readers["hubspot"] = HubSpotReader(self.hubspot_api(token), self.config)
        if self.has_salesforce_credentials():
            readers["salesforce"] = SalesforceReader(self.salesforce_connection(), self.config)
        return readers

    def task_writers(self) -> dict[str, TaskWriter]:
        """The follow-up task writer of each CRM whose credentials are in the environment
        (none when app.yaml asks for no task): the sweep and ``reassign`` move a lead's task
        with the lead."""
        writers: dict[str, TaskWriter] = {}
        if not tasks_configured(self.config):
            return writers
        token = self.hubspot_token()
        if token:
            writers["hubspot"] = HubSpotTasks(self.hubspot_api(token))
        if self.has_salesforce_credentials():
            writers["salesforce"] = SalesforceTasks(self.salesforce_connection())
        return writers

    def close(self, notify_timeout: float = 5.0) -> None:
        """Send the queued webhooks (up to ``notify_timeout``), then close the store."""
        with self._lock:
            notifier, store = self._notifier, self._store
        if notifier is not None:
            notifier.close(notify_timeout)
        if store is not None:
            store.close()


def build_services(
    config: Config, env: Mapping[str, str] = os.environ, store: Store | None = None
) -> Services:
    """The services of ``config``, reading secrets from ``env``; ``store`` when the caller has
    one open already (tests), else the store of ``config.store_url`` on first use."""
    return Services(config, env, _store=store)


def record_link(config: Config, env: Mapping[str, str]) -> Link:
    """The notifier's ``link(crm, lead_id)``: each CRM's adapter knows its record pages."""

    def link(crm: str, lead_id: str) -> str | None:
        if crm == "hubspot":
            return contact_link(config, lead_id, env.get(APP_BASE_ENV))
        if crm == "salesforce":
            return lead_link(env, lead_id)
        return None

    return link
