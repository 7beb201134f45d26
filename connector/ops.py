"""The ops console: every page under ``/ops`` and every API under ``/api``.

Importing this module registers the console's own views on its blueprints
(``connector.ops_blueprints``); other view modules import ``pages`` and ``api`` from here and
must be imported before ``register`` runs. Both blueprints sit behind ``ops_guard``.
"""

from __future__ import annotations

from flask import Flask
from markupsafe import Markup

from connector import ops_assignments, ops_reps, ops_rules, ops_signin, ops_stats_views
from connector.ops_auth import OpsAccess, console_status, install
from connector.ops_blueprints import api, pages
from connector.output import well_formed
from connector.shared import services_of

__all__ = ["api", "pages", "register"]
# The console's own views: imported for the routes they add to ``pages`` and ``api``.
VIEWS = (ops_assignments, ops_reps, ops_rules, ops_signin)
ops_stats_views.register(pages, api)


def register(app: Flask) -> None:
    """Put the console's pages and API on ``app`` (the view modules add their routes first),
    with its cookie session and CSRF protection; say at start-up whether it is on."""
    env = services_of(app).env
    install(app, OpsAccess.from_env(env))
    status, well = console_status(env)
    (app.logger.info if well else app.logger.warning)(status)
    # CRMs let lone surrogates through and the store keeps them: a page shows U+FFFD
    # instead of failing to encode (the only templates this app renders are the console's).
    app.jinja_env.finalize = _well_formed
    app.register_blueprint(pages)
    app.register_blueprint(api)


def _well_formed(value: object) -> object:
    if isinstance(value, Markup):  # already safe HTML (a macro's output): keep it so
        return Markup(well_formed(value))
    return well_formed(value) if isinstance(value, str) else value
