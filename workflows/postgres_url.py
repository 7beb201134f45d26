"""A ``postgresql://`` store URL: its libpq part, leadrelay's own options, and a redacted
form for messages (a password in the URL never reaches a log or an error)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from workflows.errors import StoreError

SCHEMES = ("postgresql://",)
# leadrelay's options; every other query parameter is libpq's (sslmode, options, ...).
_OWN_OPTIONS = ("pool_size", "pool_timeout")
_PASSWORD = re.compile(r"(://[^:/?#@]*:)[^@/?#]*@")
_PASSWORD_PARAM = re.compile(r"(password=)[^&\s]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every URL password (and ``password=`` parameter) replaced by ``***``."""
    return _PASSWORD_PARAM.sub(r"\1***", _PASSWORD.sub(r"\1***@", text))


@dataclass(frozen=True)
class PostgresUrl:
    """What a ``postgresql://`` store URL names."""

    conninfo: str  # for libpq: the URL without leadrelay's own options
    pool_size: int = 8  # connections per process (gunicorn threads share them)
    pool_timeout: float = 5.0  # seconds a request waits for a connection, then StoreError

    @property
    def shown(self) -> str:
        return redact(self.conninfo)


def parse_url(url: str) -> PostgresUrl:
    """Split ``url`` into libpq's conninfo and leadrelay's options; StoreError when unusable."""
    if not url.startswith(SCHEMES):
        raise StoreError(f"expected postgresql://..., got {redact(url)!r}")
    base, _, query = url.partition("?")
    pairs = [part for part in query.split("&") if part]
    own = dict(parse_qsl("&".join(p for p in pairs if p.partition("=")[0] in _OWN_OPTIONS)))
    rest = "&".join(p for p in pairs if p.partition("=")[0] not in _OWN_OPTIONS)
    conninfo = f"{base}?{rest}" if rest else base
    try:
        pool_size = int(own.get("pool_size", 8))
        pool_timeout = float(own.get("pool_timeout", 5.0))
    except ValueError:
        raise StoreError(f"{redact(url)}: pool_size and pool_timeout must be numbers") from None
    if pool_size < 1 or pool_timeout <= 0:
        raise StoreError(f"{redact(url)}: pool_size and pool_timeout must be positive")
    return PostgresUrl(conninfo, pool_size, pool_timeout)
