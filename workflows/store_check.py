"""Can the store be used? Asked once by ``check`` and by ``serve`` before gunicorn forks, so
a bad ``store:`` is one clear message instead of a traceback from every worker."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from workflows.errors import LeadRelayError
from workflows.store import store_file
from workflows.store_registry import open_store


def store_problem(url: str) -> str | None:
    """Why the store at ``url`` cannot be used, or None once it was opened (and so created,
    when new) and closed again."""
    path = store_file(url)
    blocker = _first_non_directory(path.parent)
    if blocker is not None:
        return f"cannot use {path}: {blocker} is not a directory"
    if path.is_dir():
        return f"cannot use {path}: it is a directory, not a database file"
    if path.exists():
        # Asked first on a plain connection: sqlitedict's thread would print a traceback.
        problem = _not_sqlite(path)
        if problem:
            return f"cannot use {path}: {problem}"
    try:
        open_store(url).close()
    except LeadRelayError as exc:
        return str(exc)
    return None


def _first_non_directory(directory: Path) -> Path | None:
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def _not_sqlite(path: Path) -> str | None:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        conn.close()
    return None
