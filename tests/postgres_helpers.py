"""The machine's PostgreSQL server for tests: one fresh schema per test, dropped after.

``$LEADRELAY_TEST_POSTGRES_URL`` names the server and database (the Makefile and .ci/run set
it to the local server). Without it the PostgreSQL tests are skipped; in CI (``CI=true``) an
unset variable or an unreachable server fails the run instead.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from workflows.postgres_schema import upgrade

URL_ENV = "LEADRELAY_TEST_POSTGRES_URL"


def server_url(variable: str = URL_ENV) -> str:
    """The test server's URL; skips (fails in CI) when it is not set or not reachable."""
    url = os.environ.get(variable, "")
    in_ci = os.environ.get("CI", "").lower() == "true"
    problem = f"set {variable} to test the PostgreSQL store" if not url else None
    if url:
        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.Error as exc:
            problem = f"PostgreSQL at {variable} is unreachable: {exc}"
    if problem and in_ci:
        pytest.fail(problem)
    if problem:
        pytest.skip(problem)
    return url


def with_schema(url: str, schema: str) -> str:
    """``url`` with its connections' search_path set to ``schema`` (libpq's ``options``,
    added to the URL's own when it has some)."""
    setting = f"-csearch_path%3D{schema}"
    if "options=" in url:
        return re.sub(r"options=([^&]*)", lambda m: f"options={m[1]}%20{setting}", url, count=1)
    return f"{url}{'&' if '?' in url else '?'}options={setting}"


@contextmanager
def fresh_schema(url: str, *, migrate: bool = True) -> Iterator[str]:
    """A store URL on a new empty schema of the database at ``url`` (upgraded to the latest
    version unless ``migrate`` is False), dropped with everything in it on exit."""
    schema = f"lr_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    scoped = with_schema(url, schema)
    try:
        if migrate:
            with psycopg.connect(scoped, autocommit=True) as conn:
                upgrade(conn)
        yield scoped
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
