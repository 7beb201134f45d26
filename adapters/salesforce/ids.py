"""Salesforce ids: their shape, and matching them against a list (15 and 18 characters alike)."""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable

from workflows.crm_ids import id_key

_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


# -- ids ------------------------------------------------------------------------------------
def is_id(value: str | None, prefix: str = "") -> bool:
    """True for a 15- or 18-character Salesforce id (starting with ``prefix``, if given)."""
    return bool(value) and bool(_ID.fullmatch(value or "")) and str(value).startswith(prefix)


def is_user_id(value: str | None) -> bool:
    """A User id (005...), as opposed to a queue (00G...) or nothing."""
    return is_id(value, "005")


def id_in(value: str, allowed: Iterable[str]) -> bool:
    """Whether ``value`` names one of ``allowed``, 15- and 18-character forms alike.

    Compared in constant time against every entry, so timing tells nothing about the list.
    """
    mine = id_key("salesforce", value).encode()
    found = False
    for each in allowed:
        found |= hmac.compare_digest(mine, id_key("salesforce", str(each)).encode())
    return found and is_id(value)
