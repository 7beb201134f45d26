"""Signed-out sessions, so that a copy of a signed-out cookie opens nothing.

The session cookie is signed, not stored: a copy (another tab's, a proxy log's, a stolen one)
would stay good until it expires. So every session gets an id when it signs in, and signing
out records that id in the store's shared value ``ops.signed-out`` (seen by every gunicorn
worker) until no copy of the cookie can still be valid: ``SESSION_LIFETIME`` after the
sign-out, since every copy was signed before it.

The record stays small: expired ids are dropped at each sign-out, and were ``MAX_SIGNED_OUT``
still live, the oldest sign-in time still accepted moves up to now instead (every session
signed in until then ends: people sign in again, but nothing signed out ever opens again).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta

from workflows.store import SharedValue, Store

# A session lasts this long after its last request (Flask re-signs the cookie on each one).
SESSION_LIFETIME = timedelta(hours=12)
SIGNED_OUT = "ops.signed-out"
MAX_SIGNED_OUT = 1000


@dataclass
class SignedOut:
    """What ``ops.signed-out`` holds: ids signed out (with when their record may go), and
    the earliest sign-in still accepted."""

    ids: dict[str, float] = field(default_factory=dict)
    not_before: float = 0.0

    @classmethod
    def read(cls, value: SharedValue) -> SignedOut | None:
        """What ``value`` holds, or None when it cannot be read as that."""
        try:
            data = json.loads(value.read() or b"{}")
            ids = {str(k): float(v) for k, v in dict(data.get("ids", {})).items()}
            return cls(ids, float(data.get("not_before", 0.0)))
        except (ValueError, TypeError, AttributeError):
            return None

    def write(self, value: SharedValue) -> None:
        value.write(json.dumps({"ids": self.ids, "not_before": self.not_before}).encode())


def new_session(store: Store) -> tuple[str, float]:
    """A new session's id and sign-in time, for the cookie. A record that no longer reads
    (a damaged file) is started afresh here, with every earlier session ended: no signed-out
    id can be told apart any more."""
    now = clock()
    with store.shared_value(SIGNED_OUT) as value:
        if SignedOut.read(value) is None:
            SignedOut({}, now).write(value)
    return secrets.token_urlsafe(16), now


def ended(store: Store, session_id: object, since: object) -> bool:
    """Whether the session ``session_id``, signed in at ``since`` (both read from a cookie),
    was signed out, or is one without an id or a sign-in time."""
    if not isinstance(session_id, str) or not isinstance(since, (int, float)):
        return True
    with store.shared_value(SIGNED_OUT) as value:
        signed_out = SignedOut.read(value)
    if signed_out is None:  # damaged: no signed-out id can be told apart
        return True
    return session_id in signed_out.ids or since < signed_out.not_before


def sign_out(store: Store, session_id: object) -> None:
    """Record ``session_id`` as signed out for as long as a copy of its cookie could last."""
    if not isinstance(session_id, str):
        return
    now = clock()
    with store.shared_value(SIGNED_OUT) as value:
        signed_out = SignedOut.read(value) or SignedOut({}, now)
        signed_out.ids = {k: until for k, until in signed_out.ids.items() if until > now}
        if len(signed_out.ids) >= MAX_SIGNED_OUT:
            signed_out.ids, signed_out.not_before = {}, now
        else:
            signed_out.ids[session_id] = now + SESSION_LIFETIME.total_seconds()
        signed_out.write(value)


def clock() -> float:
    """Now, in seconds since the epoch: the same for every process on the machine."""
    return time.time()
