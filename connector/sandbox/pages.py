"""The stand-ins' HTML pages: plain, escaped by the caller, and labelled as a sandbox."""

from __future__ import annotations

import html
from collections.abc import Sequence

from flask import Response

SANDBOX_HEADER = "X-LeadRelay-Sandbox"  # on every answer of a stand-in: which CRM it imitates

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem}"
    ".banner{background:#ffd54f;padding:.5rem 1rem;font-weight:600}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; ``rows`` hold HTML already escaped (links allowed)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(crm: str, title: str, content: str) -> Response:
    """A whole page under the sandbox banner; ``content`` is HTML already escaped."""
    text = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>SANDBOX {html.escape(crm)}: "
        f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<p class='banner'>SANDBOX: a local stand-in of {html.escape(crm)} run by "
        f"<code>leadrelay demo</code>. Not {html.escape(crm)}; fictional records.</p>"
        f"<h1>{html.escape(title)}</h1>{content}</body></html>"
    )
    return Response(text, mimetype="text/html")
