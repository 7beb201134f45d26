"""``leadrelay db``: the PostgreSQL store's schema (``upgrade``) and the move of an embedded
store into it (``import-sqlite``). Both act on the store app.yaml's ``store:`` (or
``$LEADRELAY_STORE``) names."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import psycopg

from workflows.config import Config
from workflows.errors import LeadRelayError
from workflows.postgres_import import Side, import_sqlite
from workflows.postgres_schema import latest_version, upgrade
from workflows.postgres_store import connect
from workflows.postgres_transaction import store_error
from workflows.postgres_url import PostgresUrl, parse_url, redact


def _postgres_url(state: Any) -> PostgresUrl:
    config: Config = state.config
    if not config.store_url.startswith("postgresql://"):
        raise click.UsageError(
            f"the store is {redact(config.store_url)}: `leadrelay db` works on a "
            "postgresql:// store (set store: in app.yaml or $LEADRELAY_STORE)"
        )
    return parse_url(config.store_url)


@contextmanager
def _failing_cleanly() -> Iterator[None]:
    """A store's error as one line on stderr and exit status 1, password redacted."""
    try:
        yield
    except LeadRelayError as exc:
        click.echo(f"error: {redact(str(exc))}", err=True)
        sys.exit(1)


@click.group("db")
def db() -> None:
    """The PostgreSQL store: upgrade its schema, import an embedded store into it."""


@db.command("upgrade")
@click.pass_obj
def upgrade_command(state: Any) -> None:
    """Apply the schema migrations this release needs (safe to run again, and from
    several instances at once: one applies them, the others find nothing to do)."""
    url = _postgres_url(state)
    with _failing_cleanly(), connect(url) as conn:
        try:
            applied = upgrade(conn)
        except psycopg.Error as exc:  # a migration that failed: say which database
            raise store_error(f"could not upgrade {url.shown}", exc) from exc
    for migration in applied:
        click.echo(f"applied {migration.version:04d}_{migration.name}")
    click.echo(f"{url.shown}: schema at version {latest_version()}")


def _show(name: str, side: Side) -> None:
    counts = ", ".join(f"{table} {count}" for table, count in side.counts.items())
    click.echo(f"{name}: {counts}; log checksum sha256:{side.log_checksum}")


@db.command("import-sqlite")
@click.argument("path", type=click.Path(path_type=Path))
@click.pass_obj
def import_sqlite_command(state: Any, path: Path) -> None:
    """Copy the embedded store at PATH into the (new, empty) PostgreSQL store, then print
    the rows of each kind and the log's checksum on both sides (they must match, or nothing
    is imported). Stop every leadrelay on PATH first."""
    url = _postgres_url(state)
    with _failing_cleanly(), connect(url) as conn:
        report = import_sqlite(path, conn)
    _show(f"embedded {path}", report.embedded)
    _show(f"postgresql {url.shown}", report.postgres)
    click.echo("imported: counts and checksums match")
