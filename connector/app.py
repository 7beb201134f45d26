"""The Flask app factory: nothing happens at import time; each process builds its own app."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from connector import hubspot_action, metrics, ops, salesforce_flow, salesforce_outbound
from connector.health import StoreProbe
from connector.ops_auth import ops_guard
from connector.services import build_services
from connector.shared import EXTENSION
from workflows.config import Config
from workflows.config_loader import default_config_path, load_config
from workflows.errors import LeadError, LeadRelayError, SignatureError
from workflows.store import Store


def create_app(
    config: Config | None = None, store: Store | None = None, config_path: Path | None = None
) -> Flask:
    """Build the app: load and validate app.yaml, build its services (``connector.services``)
    with the store open, register the blueprints.

    Tests pass their own ``config`` and ``store``; ``leadrelay serve`` passes the path.
    """
    config = config or load_config(config_path or default_config_path())
    services = build_services(config, store=store).open()
    app = Flask("leadrelay")
    # CRMs never send more than a few hundred KB; anything bigger is refused with 413.
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    app.extensions[EXTENSION] = services
    for blueprint in (
        hubspot_action.blueprint,
        salesforce_outbound.blueprint,
        salesforce_flow.blueprint,
    ):
        app.register_blueprint(blueprint)
    ops.register(app)
    metrics.observe(services)
    store_probe = StoreProbe(services.store)

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        # No authentication: says only which dependency is down, never why in detail.
        problem = store_probe.problem()
        if problem is not None:
            body = {"status": "unavailable", "failed": ["store"], "store": problem}
            return jsonify(**body, config_version=config.version), 503
        return jsonify(status="ok", store="ok", config_version=config.version)

    @app.get("/metrics")
    def prometheus_metrics() -> ResponseReturnValue:
        refused = ops_guard()  # the console's token: Prometheus sends it as a bearer token
        if refused is not None:
            return refused
        body, content_type = metrics.exposition(request.headers.get("Accept"))
        return Response(body, content_type=content_type)

    @app.errorhandler(LeadError)
    def bad_lead(exc: LeadError) -> ResponseReturnValue:
        return jsonify(error=str(exc), field=exc.field), 400

    @app.errorhandler(SignatureError)
    def unsigned(exc: SignatureError) -> ResponseReturnValue:
        return jsonify(error=str(exc)), 401

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        # Keep the exception's own headers (Allow on a 405), but answer JSON.
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return jsonify(error=exc.description), exc.code or 500, headers

    @app.errorhandler(LeadRelayError)
    def internal_error(exc: LeadRelayError) -> ResponseReturnValue:
        app.logger.error("request failed: %s", exc)
        return jsonify(error=str(exc)), 503

    return app
