"""Which store a ``store:`` URL names: a registry keyed by the URL's scheme.

A new store (PostgreSQL) registers its kind here and passes the store contract suite
(tests/store_contract/, which runs over every kind registered); nothing else in leadrelay
needs to know which store it runs on.
"""

from __future__ import annotations

from workflows.errors import ConfigError
from workflows.postgres_store import PostgresStore
from workflows.postgres_url import redact
from workflows.sqlite_store import SqliteStore
from workflows.store import SharedValues, Store, StoreKind

# URL scheme -> the kind of store a URL of that scheme names.
STORES: dict[str, StoreKind] = {
    "sqlite": SqliteStore,
    "postgresql": PostgresStore,
}


def store_kind(url: str) -> StoreKind:
    """The kind of store ``url`` names; a ConfigError naming the URL when there is none."""
    scheme = url.partition(":")[0] if ":" in url else ""
    kind = STORES.get(scheme)
    if kind is None:
        known = "sqlite:///path, postgresql://user@host/database"
        shown = redact(url)
        raise ConfigError("store", f"no store for the URL {shown!r} (expected one of: {known})")
    return kind


def open_store(url: str) -> Store:
    """Open the store named by app.yaml's ``store:`` URL (or ``$LEADRELAY_STORE``)."""
    return store_kind(url).from_url(url)


def open_shared_values(url: str) -> SharedValues:
    """The shared values (the HubSpot budget) of the store ``url`` names, without opening or
    creating the store itself."""
    return store_kind(url).shared_values_of(url)


def open_snapshot(url: str) -> Store:
    """A scratch copy of the store ``url`` names, for a dry run; the live store is neither
    changed nor created. Closing it discards it."""
    return store_kind(url).snapshot_of(url)
