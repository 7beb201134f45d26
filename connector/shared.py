"""What every blueprint shares: the app's services (``connector.services``)."""

from __future__ import annotations

from flask import Flask, current_app

from connector.services import Services

EXTENSION = "leadrelay"


def services_of(app: Flask) -> Services:
    """The services ``app`` was built with."""
    services: Services = app.extensions[EXTENSION]
    return services


def leadrelay() -> Services:
    """The services of the app serving the current request."""
    return services_of(current_app)
