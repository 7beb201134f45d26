"""The PostgreSQL store's schema: forward migrations (plain SQL files in
``workflows/migrations/``, ``NNNN_name.sql``) and the version table that says which ran.

``leadrelay db upgrade`` applies what is missing, all in one transaction; a store refuses to
open on a schema that is missing or older than this release's (saying what to run), so two
versions of leadrelay never write one database differently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import psycopg

Connection = psycopg.Connection[tuple[Any, ...]]

UPGRADE_COMMAND = "leadrelay db upgrade"
_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
# Two upgrades started together must not both apply a migration.
_UPGRADE_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':upgrade', 0))"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def migrations() -> tuple[Migration, ...]:
    """Every migration shipped with leadrelay, oldest first."""
    found = []
    for entry in (resources.files("workflows") / "migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return tuple(sorted(found, key=lambda m: m.version))


def latest_version() -> int:
    return migrations()[-1].version


def current_version(conn: Connection) -> int | None:
    """The schema version of the connection's schema; None when leadrelay has none there."""
    (table,) = conn.execute("SELECT to_regclass('schema_version')").fetchone() or (None,)
    if table is None:
        return None
    (version,) = conn.execute("SELECT max(version) FROM schema_version").fetchone() or (None,)
    return int(version) if version is not None else None


def schema_problem(conn: Connection) -> str | None:
    """Why this release cannot use the connection's schema (with what to run), or None."""
    version, latest = current_version(conn), latest_version()
    if version is None:
        return f"the database has no leadrelay schema yet: run `{UPGRADE_COMMAND}`"
    if version < latest:
        return (
            f"the schema is at version {version}, this release needs {latest}: "
            f"run `{UPGRADE_COMMAND}`"
        )
    if version > latest:
        return (
            f"the schema is at version {version}, newer than this release knows "
            f"({latest}): upgrade leadrelay"
        )
    return None


def upgrade(conn: Connection) -> list[Migration]:
    """Apply every missing migration in one transaction; the ones applied, oldest first."""
    with conn.transaction():
        conn.execute(_UPGRADE_LOCK)
        version = current_version(conn) or 0
        pending = [m for m in migrations() if m.version > version]
        for migration in pending:
            conn.execute(migration.sql.encode())  # a script: no parameters, many statements
            conn.execute(
                "INSERT INTO schema_version (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
    return pending
