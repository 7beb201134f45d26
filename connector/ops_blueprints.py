"""The console's two blueprints, behind ``ops_guard``: pages under ``/ops``, the API under
``/api``. View modules register their routes on them (``connector.ops`` re-exports both).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from connector.ops_auth import ops_guard
from connector.shared import leadrelay

SANDBOX_ENV = "LEADRELAY_SANDBOX"
# Every page's navigation. Paths, not endpoints: some pages come from other view modules.
NAV = (
    ("Assignments", "/ops"),
    ("Distribution", "/ops/distribution"),
    ("SLA", "/ops/sla"),
    ("Outcomes", "/ops/outcomes"),
    ("Who can take leads", "/ops/reps"),
    ("Rules", "/ops/rules"),
    ("Health", "/ops/health"),
)

pages = Blueprint(
    "ops",
    __name__,
    url_prefix="/ops",
    template_folder="templates",
    static_folder="static/ops",
    static_url_path="/static",
)
api = Blueprint("ops_api", __name__, url_prefix="/api")
pages.before_request(ops_guard)
api.before_request(ops_guard)
# Every answer is a lead's personal data or a form: no other site may frame a page (a click
# on "sign out" or "try a lead" under a decoy), and no browser or proxy keeps a copy that
# outlives the session (the back button after signing out, a shared cache).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
}


def _page_headers(answer: Response) -> Response:
    for name, value in PAGE_HEADERS.items():
        answer.headers.setdefault(name, value)
    return answer


pages.after_request(_page_headers)
api.after_request(_page_headers)


@pages.context_processor
def _page_context() -> dict[str, Any]:
    services = leadrelay()
    root = request.script_root
    return {
        "sandbox": bool(services.env.get(SANDBOX_ENV)),
        "nav": [(title, root + path) for title, path in NAV],
        "here": request.path,
        "config_version": services.config.version,
        "timezone": services.config.timezone,
    }


@pages.errorhandler(HTTPException)
def _page_error(exc: HTTPException) -> ResponseReturnValue:
    """A page's error as a page (the API's stay JSON, from the app's own handler)."""
    return render_template("ops/error.html", error=exc), exc.code or 500
