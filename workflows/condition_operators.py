"""The operators of a rule's ``when:`` (``eq``, ``in``, ``gte``, ``matches``, ...): each checks
its argument once and returns a closure over precompiled values, a ``Condition``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Hashable
from typing import Any

from workflows.condition_values import (
    COLLECTIONS,
    is_blank,
    normalize_key,
    scalar_text,
    to_number,
)
from workflows.errors import ConfigError
from workflows.model import Lead

Condition = Callable[[Lead], bool]
Getter = Callable[[Lead], Any]


# --- Checking a rule's arguments -----------------------------------------------------------------


def _value_key(arg: Any, path: str) -> Hashable:
    """A comparison value from the rule (text, number or true/false), normalized."""
    if arg is None or (isinstance(arg, str) and not arg.strip()):
        raise ConfigError(
            path, f"expected a value, got {arg!r}; use 'missing: true' to match a blank value"
        )
    if isinstance(arg, float) and not math.isfinite(arg):
        raise ConfigError(path, f"expected a finite number, got {arg!r}")
    if not isinstance(arg, (str, int, float)):  # bool is an int, so true/false pass
        raise ConfigError(path, f"expected text, a number or true/false, got {arg!r}")
    return normalize_key(arg)


def _value_keys(arg: Any, path: str) -> frozenset[Hashable]:
    """A non-empty list of comparison values, normalized."""
    if not isinstance(arg, (list, tuple)) or not arg:
        raise ConfigError(path, f"expected a non-empty list of values, got {arg!r}")
    return frozenset(_value_key(item, f"{path}[{i}]") for i, item in enumerate(arg))


def _text_arg(arg: Any, path: str) -> str:
    """Non-empty text (a bare number such as a postal-code prefix counts), casefolded."""
    text = None if isinstance(arg, bool) else scalar_text(arg)
    if not text:
        raise ConfigError(path, f"expected text, got {arg!r}")
    return text.casefold()


def _number_arg(arg: Any, path: str) -> int | float:
    number = None if isinstance(arg, bool) else to_number(arg)
    if number is None or not math.isfinite(number):
        raise ConfigError(path, f"expected a number, got {arg!r}")
    return number


def _bool_arg(arg: Any, path: str) -> bool:
    if not isinstance(arg, bool):
        raise ConfigError(path, f"expected true or false, got {arg!r}")
    return arg


# --- Operators -----------------------------------------------------------------------------------
# Each builder checks its argument and returns a closure over precompiled values.
# A None (missing) lead value matches no positive operator, but does match ``ne`` and ``not_in``:
# they ask "is it anything other than X?", and "everyone except Germany" should include leads
# whose country is unknown. ``missing: true`` is the way to select blanks on purpose.


def _eq(get: Getter, arg: Any, path: str) -> Condition:
    key = _value_key(arg, path)
    return lambda lead: normalize_key(get(lead)) == key


def _ne(get: Getter, arg: Any, path: str) -> Condition:
    key = _value_key(arg, path)
    return lambda lead: normalize_key(get(lead)) != key


def _in(get: Getter, arg: Any, path: str) -> Condition:
    keys = _value_keys(arg, path)
    return lambda lead: normalize_key(get(lead)) in keys


def _not_in(get: Getter, arg: Any, path: str) -> Condition:
    keys = _value_keys(arg, path)
    return lambda lead: normalize_key(get(lead)) not in keys


def _contains(get: Getter, arg: Any, path: str) -> Condition:
    needle = _text_arg(arg, path)
    member = normalize_key(arg)

    def contains(lead: Lead) -> bool:
        value = get(lead)
        if isinstance(value, COLLECTIONS):  # a multi-select CRM property: membership
            return any(normalize_key(item) == member for item in value)
        text = scalar_text(value)
        return text is not None and needle in text.casefold()

    return contains


def _starts_with(get: Getter, arg: Any, path: str) -> Condition:
    prefix = _text_arg(arg, path)

    def starts_with(lead: Lead) -> bool:
        text = scalar_text(get(lead))
        return text is not None and text.casefold().startswith(prefix)

    return starts_with


def _ends_with(get: Getter, arg: Any, path: str) -> Condition:
    suffix = _text_arg(arg, path)

    def ends_with(lead: Lead) -> bool:
        text = scalar_text(get(lead))
        return text is not None and text.casefold().endswith(suffix)

    return ends_with


def _matches(get: Getter, arg: Any, path: str) -> Condition:
    if not isinstance(arg, str) or not arg:
        raise ConfigError(path, f"expected a regular expression, got {arg!r}")
    try:
        search = re.compile(arg, re.IGNORECASE).search
    except re.error as exc:
        raise ConfigError(path, f"invalid regular expression {arg!r}: {exc}") from None

    def matches(lead: Lead) -> bool:
        # Not casefolded: IGNORECASE already covers case, and casefold would rewrite the text
        # the pattern sees ("ß" -> "ss").
        text = scalar_text(get(lead))
        return text is not None and search(text) is not None

    return matches


def _ordering(compare: Callable[[Any, Any], bool]) -> Callable[[Getter, Any, str], Condition]:
    def build(get: Getter, arg: Any, path: str) -> Condition:
        bound = _number_arg(arg, path)

        def ordered(lead: Lead) -> bool:
            number = to_number(get(lead))
            return number is not None and compare(number, bound)

        return ordered

    return build


def _between(get: Getter, arg: Any, path: str) -> Condition:
    if not isinstance(arg, (list, tuple)) or len(arg) != 2:
        raise ConfigError(path, f"expected [low, high], two numbers, got {arg!r}")
    low = _number_arg(arg[0], f"{path}[0]")
    high = _number_arg(arg[1], f"{path}[1]")
    if low > high:
        raise ConfigError(path, f"low {low!r} is greater than high {high!r}")

    def between(lead: Lead) -> bool:
        number = to_number(get(lead))
        return number is not None and low <= number <= high

    return between


def _presence(present_means: bool) -> Callable[[Getter, Any, str], Condition]:
    def build(get: Getter, arg: Any, path: str) -> Condition:
        if _bool_arg(arg, path) == present_means:
            return lambda lead: not is_blank(get(lead))
        return lambda lead: is_blank(get(lead))

    return build


_BUILDERS: dict[str, Callable[[Getter, Any, str], Condition]] = {
    "eq": _eq,
    "ne": _ne,
    "in": _in,
    "not_in": _not_in,
    "contains": _contains,
    "starts_with": _starts_with,
    "ends_with": _ends_with,
    "matches": _matches,
    "gt": _ordering(operator.gt),
    "gte": _ordering(operator.ge),
    "lt": _ordering(operator.lt),
    "lte": _ordering(operator.le),
    "between": _between,
    "exists": _presence(True),
    "missing": _presence(False),
}
OPERATORS = tuple(_BUILDERS)


def operator_condition(get: Getter, op: Any, arg: Any, path: str) -> Condition:
    """The condition ``op: arg`` on the value ``get`` reads; ConfigError at ``path`` for an
    unknown operator or an argument it cannot take."""
    builder = _BUILDERS.get(op) if isinstance(op, str) else None
    if builder is None:
        raise ConfigError(path, f"unknown operator {op!r}; valid operators: {', '.join(OPERATORS)}")
    return builder(get, arg, path)
