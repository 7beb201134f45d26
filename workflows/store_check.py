"""Can the store be used? Asked once by ``check`` and by ``serve`` before gunicorn forks, so
a bad ``store:`` is one clear message instead of a traceback from every worker."""

from __future__ import annotations

from workflows.errors import LeadRelayError
from workflows.store_registry import open_store


def store_problem(url: str) -> str | None:
    """Why the store at ``url`` cannot be used, or None once it was opened (and so created,
    when new) and closed again. Each store's opener names what is wrong with it."""
    try:
        open_store(url).close()
    except LeadRelayError as exc:
        return str(exc)
    return None
