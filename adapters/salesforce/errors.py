"""simple-salesforce's exceptions, and Salesforce's error answers, as leadrelay's CrmError."""

from __future__ import annotations

from typing import Any

import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)

from adapters.crm_metrics import rate_limited
from workflows.errors import CrmError

# Per-record or per-call error codes that can succeed when tried again later.
RETRYABLE_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "API_CURRENTLY_DISABLED"}
)

# What a simple-salesforce call can raise besides our own bugs. LookupError and TypeError
# come from simple-salesforce reading an unexpected 401 body (``result.json()[0]``).
CALL_ERRORS = (SalesforceError, requests.RequestException, LookupError, TypeError)


def crm_error(exc: BaseException, doing: str) -> CrmError:
    """A simple-salesforce or network failure as leadrelay's CrmError (no secrets in it)."""
    if isinstance(exc, SalesforceAuthenticationFailed):
        return CrmError(
            f"{doing}: Salesforce sign-in failed ({exc.code}): {exc.auth_message}",
            retryable=False,
            status=401,
        )
    if isinstance(exc, SalesforceExpiredSession):
        return CrmError(
            f"{doing}: Salesforce says the session is expired or invalid and it could not be"
            " renewed (a bare SALESFORCE_ACCESS_TOKEN cannot be): sign in again",
            retryable=False,
            status=401,
        )
    if isinstance(exc, SalesforceError):
        code, message = _error_detail(exc.content)
        status = int(exc.status)
        if code == "REQUEST_LIMIT_EXCEEDED" or status == 429:
            rate_limited("salesforce")  # every Salesforce error passes here, once
        return CrmError(
            f"{doing}: Salesforce answered {status} {code}: {message}".rstrip(": "),
            retryable=status >= 500 or code in RETRYABLE_CODES,
            status=status,
        )
    if isinstance(exc, requests.RequestException):
        return CrmError(f"{doing}: cannot reach Salesforce ({type(exc).__name__})", retryable=True)
    return CrmError(f"{doing}: unexpected answer from Salesforce", retryable=True)


def _error_detail(content: Any) -> tuple[str, str]:
    # REST errors are a list of {"errorCode", "message"}; a proxy may send anything else.
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        return str(first.get("errorCode", "")), str(first.get("message", ""))
    text = content.decode(errors="replace") if isinstance(content, bytes) else str(content)
    return "", text[:200]
