"""The ops console's blueprint: every page under ``/ops`` and every API under ``/api``.

Each view module registers its routes on ``pages`` or ``api``; both sit behind ``ops_guard``.
"""

from __future__ import annotations

from flask import Blueprint, Flask, render_template
from flask.typing import ResponseReturnValue

from connector import ops_stats_views
from connector.ops_auth import ops_guard

pages = Blueprint("ops", __name__, url_prefix="/ops", template_folder="templates")
api = Blueprint("ops_api", __name__, url_prefix="/api")
pages.before_request(ops_guard)
api.before_request(ops_guard)
ops_stats_views.register(pages, api)


@pages.get("/")
def index() -> ResponseReturnValue:
    return render_template("ops/index.html")


def register(app: Flask) -> None:
    """Put the console's pages and API on ``app`` (the view modules add their routes first)."""
    app.register_blueprint(pages)
    app.register_blueprint(api)
