"""What every blueprint shares: config, store and router, kept in ``app.extensions``."""

from __future__ import annotations

from flask import current_app

from workflows.config import Config
from workflows.notify import Notifier
from workflows.router import Router
from workflows.store import Store


class LeadRelay:
    """The objects one app (one process) serves requests with."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.router = Router(config, store)
        self.notifier = Notifier.from_config(config)


def leadrelay() -> LeadRelay:
    """The shared objects of the app serving the current request."""
    app_objects: LeadRelay = current_app.extensions["leadrelay"]
    return app_objects
