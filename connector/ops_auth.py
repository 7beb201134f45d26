"""Who may read the ops console and its API, and how they prove it.

Two ways in: ``Authorization: Bearer $LEADRELAY_OPS_TOKEN`` (scripts, BI tools), or a signed
session cookie from the sign-in form (people), given for the same token or for
``LEADRELAY_OPS_USER`` and its ``LEADRELAY_OPS_PASSWORD_HASH`` (werkzeug.security's format).
No token set: the console is off (every console page and API answers 404 and says why), so a
server is never open to the world by omission. Every comparison is constant-time.

The cookie is Flask's session (itsdangerous-signed), keyed by ``LEADRELAY_OPS_SECRET`` or,
without it, by an HMAC of the token: every gunicorn worker derives the same key, and a new
token signs everyone out. A session also carries a mark of the credential it was given for,
so changing the password (or the token) ends the sessions it opened, and an id that signing
out records (``connector.ops_sessions``), so a copy of a signed-out cookie opens nothing.
Failed sign-ins are throttled (``connector.ops_throttle``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Flask, current_app, g, jsonify, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFProtect
from werkzeug.security import check_password_hash

from connector import ops_sessions
from connector.ops_sessions import SESSION_LIFETIME
from connector.shared import leadrelay

OPS_TOKEN_ENV = "LEADRELAY_OPS_TOKEN"
OPS_SECRET_ENV = "LEADRELAY_OPS_SECRET"
OPS_USER_ENV = "LEADRELAY_OPS_USER"
OPS_PASSWORD_HASH_ENV = "LEADRELAY_OPS_PASSWORD_HASH"
ACCESS_EXTENSION = "leadrelay.ops_access"
# Endpoints anyone may reach: the way in and out, and the stylesheet the sign-in page uses.
PUBLIC_ENDPOINTS = frozenset({"ops.sign_in", "ops.sign_out", "ops.static"})
_HASH_METHODS = ("scrypt", "pbkdf2")
# A shorter token is guessable: the sign-in form's throttle slows guesses online, but without
# LEADRELAY_OPS_SECRET the cookie key derives from the token, so the signed cookie the sign-in
# page gives anyone lets them test guesses offline. The console stays off rather than open
# with one.
MIN_TOKEN_LENGTH = 16
# What every 401 asks for (RFC 6750): the console's token as a bearer token.
CHALLENGE = 'Bearer realm="leadrelay ops"'

csrf = CSRFProtect()


@dataclass(frozen=True)
class OpsAccess:
    """The console's credentials, read once from the environment."""

    token: str
    secret: bytes  # signs the session cookie
    user: str | None = None
    password_hash: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OpsAccess | None:
        """The console's credentials, or None when it is off (no token, or a guessable one)."""
        token = _usable_token(env)
        if token is None:
            return None
        own_secret = _set(env, OPS_SECRET_ENV)
        secret = (
            own_secret.encode()
            if own_secret
            else hmac.new(token.encode(), b"leadrelay ops session v1", hashlib.sha256).digest()
        )
        user = env.get(OPS_USER_ENV) or None
        password_hash = env.get(OPS_PASSWORD_HASH_ENV) or None
        usable = user is not None and password_hash is not None and _looks_like_hash(password_hash)
        return cls(token, secret, user if usable else None, password_hash if usable else None)

    def bearer_ok(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries ``Bearer <token>``."""
        scheme, _, given = (header or "").partition(" ")
        return self.token_ok(given.strip()) and scheme.lower() == "bearer"

    def token_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.token.encode())

    def password_ok(self, user: str, password: str) -> bool:
        """Whether ``user`` and ``password`` are the configured ones (the hash is always
        checked, so the time taken does not tell whether the user name was right).

        Without a configured user nothing is hashed: the sign-in page already says password
        sign-in is off, and a hash per anonymous POST (a scrypt costs ~100 ms of CPU) would
        let anyone keep the workers busy."""
        if self.user is None or self.password_hash is None:
            return False
        name_ok = hmac.compare_digest(user.encode(), self.user.encode())
        password_right = check_password_hash(self.password_hash, password)
        return name_ok and password_right

    def mark(self, who: str) -> str:
        """What a session opened by ``who`` (``token`` or ``user:<name>``) must carry: it
        changes with the credential, so a new token or password ends the old sessions."""
        credential = self.token if who == "token" else f"{who}\0{self.password_hash}"
        return hmac.new(self.secret, credential.encode(), hashlib.sha256).hexdigest()

    def signed_in(self) -> str | None:
        """Who the current request's session belongs to, or None."""
        who, mark = session.get("ops_who"), session.get("ops_mark")
        if not isinstance(who, str) or not isinstance(mark, str):
            return None
        if who.startswith("user:") and self.user is None:
            return None
        return who if hmac.compare_digest(mark, self.mark(who)) else None


def _set(env: Mapping[str, str], name: str) -> str | None:
    """``name``'s value, or None when unset or only blanks: ``LEADRELAY_OPS_TOKEN=" "`` in an
    env file must leave the console off, not open it to anyone who types a space."""
    value = env.get(name)
    return value if value and value.strip() else None


def _usable_token(env: Mapping[str, str]) -> str | None:
    token = _set(env, OPS_TOKEN_ENV)
    return token if token is not None and len(token.strip()) >= MIN_TOKEN_LENGTH else None


def _looks_like_hash(value: str) -> bool:
    method = value.split(":", 1)[0]
    return value.count("$") == 2 and method in _HASH_METHODS


def console_status(env: Mapping[str, str]) -> tuple[str, bool]:
    """One line for ``leadrelay check`` and the server's start-up log, and whether all is
    well (False: the console is off, or a half-set password sign-in is ignored)."""
    if _set(env, OPS_TOKEN_ENV) is None:
        return f"ops console: off (set {OPS_TOKEN_ENV} to serve /ops and /api)", False
    if _usable_token(env) is None:
        return (
            f"ops console: off ({OPS_TOKEN_ENV} is shorter than {MIN_TOKEN_LENGTH} characters: "
            "make one with python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        ), False
    user, password_hash = env.get(OPS_USER_ENV), env.get(OPS_PASSWORD_HASH_ENV)
    problem = None
    if user and not password_hash:
        problem = f"{OPS_USER_ENV} is set but {OPS_PASSWORD_HASH_ENV} is not"
    elif password_hash and not _looks_like_hash(password_hash):
        problem = (
            f"{OPS_PASSWORD_HASH_ENV} is not a werkzeug.security hash "
            "(like scrypt:32768:8:1$salt$hash)"
        )
    elif password_hash and not user:
        problem = f"{OPS_PASSWORD_HASH_ENV} is set but {OPS_USER_ENV} is not"
    if problem:
        return f"ops console: on at /ops, token sign-in only: {problem}", False
    users = f" or as {user}" if user else ""
    return f"ops console: on at /ops (sign in with {OPS_TOKEN_ENV}{users})", True


class OpsSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request came over https (also
    through a proxy that says so: the flag can only make the cookie safer)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return request.is_secure or forwarded == "https" or super().get_cookie_secure(app)


def install(app: Flask, access: OpsAccess | None) -> None:
    """Give ``app`` the console's cookie session and CSRF protection (forms only: the CRM
    endpoints keep their own checks, and no CSRF check ever runs on them)."""
    app.extensions[ACCESS_EXTENSION] = access
    app.config.update(
        SECRET_KEY=access.secret if access else None,
        SESSION_COOKIE_NAME="leadrelay_ops",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked by ops_guard, on console forms only
        WTF_CSRF_TIME_LIMIT=None,  # a form lives as long as its session
    )
    app.session_interface = OpsSessionInterface()
    csrf.init_app(app)


def access_of(app: Flask) -> OpsAccess | None:
    access: OpsAccess | None = app.extensions.get(ACCESS_EXTENSION)
    return access


def ops_guard() -> ResponseReturnValue | None:
    """A ``before_request`` hook for every console page and API: None lets the request on."""
    access = access_of(current_app)
    if access is None:
        message = f"the ops console is off: set {OPS_TOKEN_ENV} to turn it on"
        return jsonify(error=message), 404
    header = request.headers.get("Authorization", "")
    if header.partition(" ")[0].lower() == "bearer":
        # A script's credential, never sent by a browser on its own: no CSRF check needed.
        if access.bearer_ok(header):
            g.ops_user, g.ops_via = "token", "bearer"
            return None
        return _refused("wrong token in the Authorization header", browser=False)
    # Any other Authorization (a proxy's Basic sign-in in front of leadrelay) is not ours.
    if request.endpoint in PUBLIC_ENDPOINTS:
        csrf.protect()
        return None
    who = access.signed_in()
    if who is not None and ops_sessions.ended(
        leadrelay().store, session.get("ops_sid"), session.get("ops_since")
    ):
        who = None
    if who is None:
        return _refused("sign in: send Authorization: Bearer <LEADRELAY_OPS_TOKEN>")
    csrf.protect()  # every form posted with the cookie carries its CSRF token
    g.ops_user, g.ops_via = who, "session"
    return None


def _refused(message: str, browser: bool = True) -> ResponseReturnValue:
    if browser and request.blueprint == "ops" and request.method in ("GET", "HEAD"):
        # A person's browser: to the sign-in form, then back here.
        return redirect(url_for("ops.sign_in", next=request.full_path.rstrip("?")))
    answer = jsonify(error=message)
    answer.headers["WWW-Authenticate"] = CHALLENGE
    return answer, 401


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path on this server, never another site (nor
    a header broken by a line break, nor a ``..`` or ``\\`` a browser would resolve away)."""
    text = target or ""
    parts = urlsplit(text)
    plain = text.isprintable() and "\\" not in text and ".." not in parts.path.split("/")
    local = plain and not parts.scheme and not parts.netloc and not text.startswith("//")
    if local and (parts.path == "/ops" or parts.path.startswith("/ops/")):
        return text
    return url_for("ops.index")
