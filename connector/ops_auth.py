"""Who may read the ops console and its API: a bearer token (``LEADRELAY_OPS_TOKEN``).

No token set: the console is off (every console page and API answers 404 and says why), so
a server is never open to the world by omission. Comparisons are constant-time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from connector.shared import leadrelay

OPS_TOKEN_ENV = "LEADRELAY_OPS_TOKEN"


def ops_token(env: Mapping[str, str]) -> str | None:
    """The console's token, or None when the console is off."""
    return env.get(OPS_TOKEN_ENV) or None


def bearer_ok(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (constant-time)."""
    scheme, _, given = (header or "").partition(" ")
    ok = hmac.compare_digest(given.strip().encode(), token.encode())
    return ok and scheme.lower() == "bearer"


def ops_guard() -> ResponseReturnValue | None:
    """A ``before_request`` hook for every console page and API: None lets the request on."""
    token = ops_token(leadrelay().env)
    if token is None:
        return jsonify(error=f"the ops console is off: set {OPS_TOKEN_ENV} to turn it on"), 404
    if bearer_ok(request.headers.get("Authorization"), token):
        return None
    return jsonify(error="sign in: send Authorization: Bearer <LEADRELAY_OPS_TOKEN>"), 401
