"""``POST /hubspot/action``: HubSpot's custom workflow action "Rotate to owner via leadrelay".

The view verifies (signature, portal), parses (``LeadError`` -> 400), hands over to
``hubspot_execute.execute`` and answers. Missing credentials answer 503 naming the variable.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import Forbidden, Unauthorized

from adapters.hubspot.check import missing_credentials, uses_hubspot
from adapters.hubspot.client import HubSpotApi
from adapters.hubspot.contact import ACCESS_TOKEN_ENV, CLIENT_SECRET_ENV
from adapters.hubspot.payload import parse_action_request
from connector.hubspot_execute import contact_needs, execute, hubspot_api
from connector.hubspot_flusher import ENQUEUED
from connector.hubspot_signature import PortalRefused, check_portal, verify_request
from connector.json_body import parse_json_body
from connector.request_body import read_body
from connector.shared import leadrelay
from workflows.errors import SignatureError

blueprint = Blueprint("hubspot_action", __name__)


@blueprint.record_once
def _report_missing_credentials(state: BlueprintSetupState) -> None:
    # Said once at start-up, so the admin need not wait for the first refused execution.
    config = state.app.extensions["leadrelay"].config
    if uses_hubspot(config):
        for problem in missing_credentials(config):
            state.app.logger.warning(problem)


class _Unavailable(Exception):
    def __init__(self, variable: str) -> None:
        super().__init__(f"{variable} is not set; set it and restart leadrelay")


@blueprint.post("/hubspot/action")
def execute_action() -> ResponseReturnValue:
    """Route the record (contact, company, deal, ticket) of one workflow action execution."""
    shared = leadrelay()
    config = shared.config
    try:
        body = read_body(request)  # 413 when too long, before the signature check reads it
        _verify()
        action = parse_action_request(parse_json_body(body), config)
        check_portal(action.portal_id, config.hubspot.portal_ids)
        api = _api()
    except PortalRefused as exc:
        raise Forbidden(str(exc)) from None
    except SignatureError as exc:
        current_app.logger.warning("refused a /hubspot/action request: %s", exc)
        raise Unauthorized(str(exc)) from None
    except _Unavailable as exc:
        return jsonify(error=str(exc)), 503
    needs = contact_needs(current_app, config, action.object_type)
    answer = execute(
        action,
        config=config,
        needs=needs,
        router=shared.router,
        api=api,
        now=datetime.now(UTC),
        on_enqueued=current_app.extensions.get(ENQUEUED),
    )
    return jsonify(answer.body), answer.status, answer.headers


def _verify() -> None:
    secret = os.environ.get(CLIENT_SECRET_ENV)
    if not secret:
        raise _Unavailable(CLIENT_SECRET_ENV)
    verify_request(request, secret)


def _api() -> HubSpotApi | None:
    config = leadrelay().config
    if config.hubspot.write_owner == "output":
        return None  # the workflow's own "Edit record" step sets the owner: no API calls
    token = os.environ.get(ACCESS_TOKEN_ENV)
    if not token:
        raise _Unavailable(ACCESS_TOKEN_ENV)
    return hubspot_api(current_app, token).for_action(config.hubspot.budget_wait.total_seconds())
