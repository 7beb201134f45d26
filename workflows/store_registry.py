"""Which store a ``store:`` URL names: a registry keyed by the URL's scheme.

A new store (PostgreSQL) registers its opener here and passes the store contract suite
(tests/store_contract/); nothing else in leadrelay needs to know which store it runs on.
"""

from __future__ import annotations

from collections.abc import Callable

from workflows.errors import ConfigError
from workflows.sqlite_store import SqliteStore
from workflows.store import Store

# URL scheme -> a function that opens the store a URL of that scheme names.
STORES: dict[str, Callable[[str], Store]] = {
    "sqlite": SqliteStore.from_url,
}


def open_store(url: str) -> Store:
    """Open the store named by app.yaml's ``store:`` URL (or ``$LEADRELAY_STORE``)."""
    scheme = url.partition(":")[0] if ":" in url else ""
    opener = STORES.get(scheme)
    if opener is None:
        known = ", ".join(f"{name}:///..." for name in STORES)
        raise ConfigError("store", f"no store for the URL {url!r} (expected one of: {known})")
    return opener(url)
