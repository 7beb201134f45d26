"""What a ``notify:`` URL may be: http or https, with a host. A webhook posts lead data, so
``file:``, ``gopher:`` or a bare word is a mistake to refuse when the config is read."""

from __future__ import annotations

from urllib.parse import urlsplit


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook, or None. Never quotes the URL: its path may be a
    secret (a Slack incoming-webhook URL is)."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        got = f"{parts.scheme}:" if parts.scheme else "no scheme"
        return f"must be an http:// or https:// URL (got {got})"
    if not parts.hostname:
        return "must name a host (https://host/path)"
    if any(ch.isspace() or ord(ch) < 32 for ch in url.strip()):
        return "must not contain spaces or control characters"
    return None
