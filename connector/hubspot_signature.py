"""Prove a request came from HubSpot: its signature (v3 when present, else v2) and its portal.

The checks themselves are hubspot-api-client's ``Signature``; this module feeds it the URL
HubSpot actually called and covers the library's edges: it raises on a stale or missing v3
timestamp instead of returning False, and it accepts timestamps from the future.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import quote, urlsplit

from flask import Request
from hubspot.exceptions import InvalidSignatureTimestampError
from hubspot.utils.signature import Signature

from workflows.errors import SignatureError

PUBLIC_URL_ENV = "LEADRELAY_PUBLIC_URL"
MAX_CLOCK_SKEW_MS = 60_000  # how far in the future a v3 timestamp may be (clocks drift)

# What HubSpot really sends. Anything else is refused before it reaches the library, whose
# compare_digest raises on non-ASCII text and whose int() accepts non-ASCII digits.
_V3_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{43}=")  # base64 of an HMAC-SHA256
_V2_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")  # hex of a SHA-256
_TIMESTAMP = re.compile(r"[0-9]{1,15}")  # epoch milliseconds (13 digits until the year 2286)

# HubSpot decodes these escapes in the URL before computing a v3 signature.
_V3_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
_ESCAPE = re.compile("|".join(_V3_DECODED), re.IGNORECASE)


class PortalRefused(SignatureError):
    """A correctly signed request from a portal app.yaml does not allow (answered 403)."""


def signed_url(request: Request, public_url: str | None = None) -> str:
    """The full URL HubSpot called: scheme, host, path and query.

    Behind a proxy Flask sees its own host and scheme; ``$LEADRELAY_PUBLIC_URL``
    (``https://leads.example.com``, optionally with a path prefix) replaces them.
    """
    public_url = public_url if public_url is not None else os.environ.get(PUBLIC_URL_ENV)
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw and raw.startswith(("http://", "https://")):  # an absolute request target
        parts = urlsplit(raw)
        raw = parts.path + (f"?{parts.query}" if parts.query else "")
    if not raw:
        query = request.query_string.decode("latin-1")
        raw = quote(request.script_root + request.path) + (f"?{query}" if query else "")
    base = public_url.rstrip("/") if public_url else f"{request.scheme}://{request.host}"
    return base + raw


class HeaderLookup(Protocol):
    """Request headers by name (a dict in tests, Flask's case-insensitive ``Headers`` live)."""

    def get(self, key: str, /) -> str | None: ...


def verify(
    *,
    method: str,
    url: str,
    body: str,
    headers: HeaderLookup,
    secret: str,
    now_ms: int | None = None,
) -> None:
    """Raise ``SignatureError`` unless the request carries a valid HubSpot signature."""
    v3 = (headers.get("X-HubSpot-Signature-v3") or "").strip()
    if v3:
        if not _V3_SIGNATURE.fullmatch(v3):
            raise SignatureError("malformed X-HubSpot-Signature-v3 (expected base64 HMAC-SHA256)")
        timestamp = (headers.get("X-HubSpot-Request-Timestamp") or "").strip()
        if not _TIMESTAMP.fullmatch(timestamp):
            raise SignatureError(
                "missing or malformed X-HubSpot-Request-Timestamp (expected epoch milliseconds)"
            )
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        if int(timestamp) > now_ms + MAX_CLOCK_SKEW_MS:
            raise SignatureError("X-HubSpot-Request-Timestamp is in the future")
        v3_url = _ESCAPE.sub(lambda m: _V3_DECODED[m.group(0).upper()], url)
        try:
            valid = Signature.is_valid(
                signature=v3,
                client_secret=secret,
                request_body=body,
                http_uri=v3_url,
                http_method=method,
                signature_version="v3",
                timestamp=timestamp,
            )
        except InvalidSignatureTimestampError:
            raise SignatureError("X-HubSpot-Request-Timestamp is older than 5 minutes") from None
        if not valid:
            raise SignatureError("X-HubSpot-Signature-v3 does not match")
        return
    v2 = (headers.get("X-HubSpot-Signature") or "").strip()
    version = (headers.get("X-HubSpot-Signature-Version") or "").strip().lower()
    if not v2 or version != "v2":
        raise SignatureError("no HubSpot signature (X-HubSpot-Signature-v3 or v2)")
    if not _V2_SIGNATURE.fullmatch(v2):
        raise SignatureError("malformed X-HubSpot-Signature (expected hex SHA-256)")
    valid = Signature.is_valid(
        signature=v2.lower(),
        client_secret=secret,
        request_body=body,
        http_uri=url,
        http_method=method,
        signature_version="v2",
    )
    if not valid:
        raise SignatureError("X-HubSpot-Signature does not match")


def verify_request(request: Request, secret: str) -> None:
    """``verify`` for a Flask request (the raw body, the public URL)."""
    verify(
        method=request.method,
        url=signed_url(request),
        body=request.get_data(as_text=True),
        headers=request.headers,
        secret=secret,
    )


def check_portal(portal_id: str | None, allowed: Sequence[str]) -> None:
    """Raise ``PortalRefused`` unless ``portal_id`` is allowed (an empty list allows any)."""
    if allowed and portal_id not in allowed:
        raise PortalRefused(f"portal {portal_id} is not in hubspot.portal_ids")
