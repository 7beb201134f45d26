"""How a rule sees a lead's values: the normal form two values share when a rule calls them
equal, and a value as a number or as text for the operators that compare those.

CRM values arrive as text ("1,000", "TRUE", " US "), JSON numbers or lists (multi-select
properties); these functions never raise, so a value of the wrong kind simply does not match.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Hashable
from typing import Any

# Digits with optional thousands separators ("1,000"), decimals and exponent. Spelled out rather
# than left to float(), which also accepts "nan", "inf" and "1_000" (text, not amounts).
_NUMBER = re.compile(r"[+-]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NUMBER_START = frozenset("0123456789+-.")
COLLECTIONS = (list, tuple, set, frozenset)


class _Unhashable:
    """The key of a value that cannot be hashed (a dict): equal to no rule value."""

    def __repr__(self) -> str:
        return "<unhashable>"


_UNHASHABLE = _Unhashable()


def _parse_number(text: str) -> int | float | None:
    """Stripped ``text`` as a number (``"1,000"`` is 1000), or None when it is not one."""
    if not text or text[0] not in _NUMBER_START or len(text) > 40:  # ordinary text or prose
        return None
    return _parse_numeric_text(text)


# Cached because one lead's CRM text is parsed again by each of up to 1,000 rules, and parsing
# "1,000" costs several times a cache hit. Entries are at most 40 characters, so memory is bounded.
@functools.lru_cache(maxsize=4096)
def _parse_numeric_text(text: str) -> int | float | None:
    if not _NUMBER.fullmatch(text):
        return None
    text = text.replace(",", "")
    if "." in text or "e" in text or "E" in text:
        number = float(text)
        return number if math.isfinite(number) else None
    return int(text)  # int, not float, so long numeric ids (phone numbers) stay exact


def _leading_zero(text: str) -> bool:
    # "02134" is a postal code, not 2134: text with a leading zero keeps its zero for equality.
    digits = text.lstrip("+-")
    return len(digits) > 1 and digits[0] == "0" and digits[1].isdigit()


def normalize_key(value: Any) -> Hashable:
    """The canonical form two values share when a rule calls them equal.

    Text is stripped and casefolded; numbers and numeric text become numbers, so ``"50"``,
    ``50`` and ``50.0`` are one key (integral text becomes an ``int``, which Python treats as
    equal to the float and hashes alike). Text with a leading zero (``"02134"``) stays text.
    Booleans become ``"true"``/``"false"`` so ``True`` matches the text ``"TRUE"`` but not ``1``.
    Lists become tuples of keys, which equal no scalar. None stays None, which no rule value is.
    """
    if isinstance(value, str):
        text = value.strip().casefold()
        number = _parse_number(text)
        if number is None or _leading_zero(text):
            return text
        return number
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, (int, float)):
        return value
    if isinstance(value, COLLECTIONS):
        return tuple(normalize_key(item) for item in value)
    if not isinstance(value, Hashable):  # a dict: its class says so
        return _UNHASHABLE
    try:
        hash(value)  # a frozen object may still hold an unhashable part
    except TypeError:
        return _UNHASHABLE
    return value


def to_number(value: Any) -> int | float | None:
    """A lead value as a number for ordering comparisons, or None when it is not one."""
    if isinstance(value, str):
        return _parse_number(value.strip())
    if isinstance(value, bool):  # True is an int in Python, but not an amount
        return None
    if isinstance(value, (int, float)):
        return value
    return None


def scalar_text(value: Any) -> str | None:
    """A lead value as stripped text for text operators, or None when it is not a scalar."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return None


def is_blank(value: Any) -> bool:
    # Whitespace-only text and empty lists carry no information, so they count as missing too.
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (*COLLECTIONS, dict)):
        return not value
    return False
