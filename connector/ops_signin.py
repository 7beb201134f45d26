"""``/ops/sign-in`` and ``/ops/sign-out``: the console's session cookie for people.

The form takes the console's token, or the user name and password of ``LEADRELAY_OPS_USER``.
Both forms carry a CSRF token (checked by ``ops_guard``). Signing in starts a fresh session,
so a session planted before sign-in is never the one that gets signed in. Failed sign-ins are
throttled per client address and overall (``connector.ops_throttle``: 429 with Retry-After);
signing out records the session's id, so no copy of its cookie opens anything again.
"""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from connector import ops_sessions, ops_throttle
from connector.ops_auth import CHALLENGE, access_of, safe_next
from connector.ops_blueprints import pages
from connector.shared import leadrelay


@pages.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> ResponseReturnValue:
    access = access_of(current_app)
    assert access is not None  # ops_guard answers 404 while the console is off
    target = safe_next(request.values.get("next"))
    if request.method != "POST":  # GET, and Flask's HEAD: a look at the form, not an attempt
        return render_template("ops/sign_in.html", next=target, users=access.user is not None)
    store = leadrelay().store
    attempt = ops_throttle.admit(store, request.remote_addr)
    if isinstance(attempt, ops_throttle.Throttled):
        current_app.logger.warning("ops console: a sign-in was throttled (from %s)", _client())
        page = render_template(
            "ops/sign_in.html", next=target, users=access.user is not None, problem=attempt.message
        )
        return page, 429, {"Retry-After": str(attempt.retry_after)}
    token = request.form.get("token", "")
    user = request.form.get("user", "").strip()
    password = request.form.get("password", "")
    who = None
    if token and access.token_ok(token):
        who = "token"
    elif user and access.password_ok(user, password):
        who = f"user:{user}"
    if who is None:
        current_app.logger.warning("ops console: a sign-in was refused (from %s)", _client())
        problem = "That token, or that user name and password, is not right."
        page = render_template(
            "ops/sign_in.html", next=target, users=access.user is not None, problem=problem
        )
        # RFC 9110: a 401 names a scheme; browsers ask nothing for Bearer, scripts learn it.
        return page, 401, {"WWW-Authenticate": CHALLENGE}
    ops_throttle.succeeded(store, attempt)
    session.clear()
    session.permanent = True
    session["ops_who"] = who
    session["ops_mark"] = access.mark(who)
    session["ops_sid"], session["ops_since"] = ops_sessions.new_session(store)
    return redirect(target)


@pages.post("/sign-out")
def sign_out() -> ResponseReturnValue:
    access = access_of(current_app)
    if access is not None and access.signed_in() is not None:
        # Only a session this console signed carries an id worth recording.
        ops_sessions.sign_out(leadrelay().store, session.get("ops_sid"))
    session.clear()
    return redirect(url_for("ops.sign_in"))


def _client() -> str:
    return request.remote_addr or "unknown"
