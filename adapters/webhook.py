"""The HTTP side of outgoing webhooks: POST one JSON body, say how it went.

``workflows.notify`` decides what to send, when and how often; this module only talks HTTP.
It never follows a redirect (that would post lead data wherever the answer points) and never
puts the URL in what it returns, because a Slack incoming-webhook URL is a secret.
"""

from __future__ import annotations

from typing import Any

import requests

from workflows.notify import Send, SendResult

TIMEOUT = 10.0  # seconds for connecting and for each read; the notifier's thread waits, no one else
RETRYABLE_STATUSES = frozenset({408, 429})  # and every 5xx


def webhook_sender(timeout: float = TIMEOUT, session: requests.Session | None = None) -> Send:
    """A ``send(url, body)`` for ``workflows.notify.Notifier`` that posts with requests."""
    post = session.post if session is not None else requests.post

    def send(url: str, body: dict[str, Any]) -> SendResult:
        try:
            answer = post(url, json=body, timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            # The exception's text holds the URL: name only its type.
            return SendResult(False, f"failed ({type(exc).__name__})", retryable=True)
        return result_of(answer.status_code, answer.headers.get("Retry-After"))

    return send


def result_of(status: int, retry_after: str | None) -> SendResult:
    """How an answer with ``status`` (and its Retry-After header) counts."""
    if 200 <= status < 300:
        return SendResult(True)
    problem = f"answered {status}"
    if 300 <= status < 400:
        problem += " (a redirect, not followed: set the URL it points to)"
    retryable = status in RETRYABLE_STATUSES or status >= 500
    return SendResult(False, problem, retryable=retryable, retry_after=seconds(retry_after))


def seconds(retry_after: str | None) -> float | None:
    """Retry-After in seconds; None when absent or not a number (an HTTP date is not read)."""
    try:
        return float(retry_after) if retry_after else None
    except ValueError:
        return None
