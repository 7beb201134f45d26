"""Compile the ``when:`` part of a routing rule into a fast ``Condition`` (``cond(lead) -> bool``).

Grammar (app.yaml, already parsed)::

    when:                          # a mapping: every key must hold (AND)
      country: US                  # equality, case-insensitive
      state: [CA, OR, WA]          # a list means ``in``
      employees: {gte: 100, lt: 1000}
      raw.industry_tier: {matches: "^tier[12]$"}
      any: [{source: webinar}, {score: {gt: 80}}]
      not: {status: disqualified}

Everything is checked and compiled once (regexes, casefolded text, sets) so evaluation is a few
attribute reads and comparisons: a router evaluates up to 1,000 conditions per lead. Evaluation
never raises; a value of the wrong kind simply does not match.
"""

from __future__ import annotations

import difflib
import functools
import math
import operator
import re
from collections.abc import Callable, Hashable, Mapping
from operator import attrgetter
from typing import Any

from workflows.errors import ConfigError
from workflows.model import LEAD_FIELDS, Lead

Condition = Callable[[Lead], bool]
Getter = Callable[[Lead], Any]

COMBINATORS = ("all", "any", "not")

# Digits with optional thousands separators ("1,000"), decimals and exponent. Spelled out rather
# than left to float(), which also accepts "nan", "inf" and "1_000" (text, not amounts).
_NUMBER = re.compile(r"[+-]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NUMBER_START = frozenset("0123456789+-.")
_COLLECTIONS = (list, tuple, set, frozenset)


class _Unhashable:
    """The key of a value that cannot be hashed (a dict): equal to no rule value."""

    def __repr__(self) -> str:
        return "<unhashable>"


_UNHASHABLE = _Unhashable()


# --- Normalizing values --------------------------------------------------------------------------


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
    if isinstance(value, _COLLECTIONS):
        return tuple(normalize_key(item) for item in value)
    if not isinstance(value, Hashable):  # a dict: its class says so
        return _UNHASHABLE
    try:
        hash(value)  # a frozen object may still hold an unhashable part
    except TypeError:
        return _UNHASHABLE
    return value


def _to_number(value: Any) -> int | float | None:
    """A lead value as a number for ordering comparisons, or None when it is not one."""
    if isinstance(value, str):
        return _parse_number(value.strip())
    if isinstance(value, bool):  # True is an int in Python, but not an amount
        return None
    if isinstance(value, (int, float)):
        return value
    return None


def _text(value: Any) -> str | None:
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


def _is_blank(value: Any) -> bool:
    # Whitespace-only text and empty lists carry no information, so they count as missing too.
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (*_COLLECTIONS, dict)):
        return not value
    return False


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
    text = None if isinstance(arg, bool) else _text(arg)
    if not text:
        raise ConfigError(path, f"expected text, got {arg!r}")
    return text.casefold()


def _number_arg(arg: Any, path: str) -> int | float:
    number = None if isinstance(arg, bool) else _to_number(arg)
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
        if isinstance(value, _COLLECTIONS):  # a multi-select CRM property: membership
            return any(normalize_key(item) == member for item in value)
        text = _text(value)
        return text is not None and needle in text.casefold()

    return contains


def _starts_with(get: Getter, arg: Any, path: str) -> Condition:
    prefix = _text_arg(arg, path)

    def starts_with(lead: Lead) -> bool:
        text = _text(get(lead))
        return text is not None and text.casefold().startswith(prefix)

    return starts_with


def _ends_with(get: Getter, arg: Any, path: str) -> Condition:
    suffix = _text_arg(arg, path)

    def ends_with(lead: Lead) -> bool:
        text = _text(get(lead))
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
        text = _text(get(lead))
        return text is not None and search(text) is not None

    return matches


def _ordering(compare: Callable[[Any, Any], bool]) -> Callable[[Getter, Any, str], Condition]:
    def build(get: Getter, arg: Any, path: str) -> Condition:
        bound = _number_arg(arg, path)

        def ordered(lead: Lead) -> bool:
            number = _to_number(get(lead))
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
        number = _to_number(get(lead))
        return number is not None and low <= number <= high

    return between


def _presence(present_means: bool) -> Callable[[Getter, Any, str], Condition]:
    def build(get: Getter, arg: Any, path: str) -> Condition:
        if _bool_arg(arg, path) == present_means:
            return lambda lead: not _is_blank(get(lead))
        return lambda lead: _is_blank(get(lead))

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


# --- Combining -----------------------------------------------------------------------------------


def _always(lead: Lead) -> bool:
    return True


def _all_of(parts: list[Condition]) -> Condition:
    # Unrolled for the common small cases: call overhead dominates conditions this cheap.
    if not parts:
        return _always
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda lead: first(lead) and second(lead)
    conditions = tuple(parts)

    def all_of(lead: Lead) -> bool:
        for condition in conditions:  # noqa: SIM110 - a loop is ~2x faster than all(genexpr)
            if not condition(lead):
                return False
        return True

    return all_of


def _any_of(parts: list[Condition]) -> Condition:
    if len(parts) == 1:
        return parts[0]
    conditions = tuple(parts)

    def any_of(lead: Lead) -> bool:
        for condition in conditions:  # noqa: SIM110 - a loop is ~2x faster than any(genexpr)
            if condition(lead):
                return True
        return False

    return any_of


def _not(inner: Condition) -> Condition:
    return lambda lead: not inner(lead)


# --- Compiling -----------------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def is_field(name: Any) -> bool:
    """Whether ``name`` is something a rule can compare: a Lead field or ``raw.<property>``."""
    return isinstance(name, str) and (
        name in LEAD_FIELDS or (name.startswith("raw.") and len(name) > 4)
    )


def _getter(field: str) -> Getter:
    # The same lookup as Lead.value, without its method call and prefix test on every evaluation.
    if field.startswith("raw."):
        prop = field[4:]
        return lambda lead: lead.raw.get(prop)
    return attrgetter(field)


def _unknown_field(key: Any) -> str:
    if key in OPERATORS:
        return f"{key!r} is an operator; put it under a field, e.g. employees: {{{key}: ...}}"
    message = f"unknown field {key!r}"
    close = difflib.get_close_matches(str(key), [*LEAD_FIELDS, *COMBINATORS], n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    fields = ", ".join(sorted(LEAD_FIELDS))
    return f"{message}; expected all, any, not, a lead field ({fields}) or raw.<property>"


def compile_condition(spec: Any, path: str) -> Condition:
    """Compile a rule's ``when:`` spec into a ``Condition``; None or ``{}`` is always true.

    ``path`` locates the spec in app.yaml (``flow[1].when``); any problem raises
    ``ConfigError`` whose path extends it to the offending key (``flow[1].when.employees.gte``).
    """
    if spec is None:
        return _always
    return _compile_mapping(spec, path)


def _compile_mapping(spec: Any, path: str) -> Condition:
    if not isinstance(spec, Mapping):
        raise ConfigError(path, f"expected a mapping of conditions, got {spec!r}")
    return _all_of([_compile_key(key, value, _join(path, str(key))) for key, value in spec.items()])


def _compile_list(spec: Any, path: str) -> list[Condition]:
    if not isinstance(spec, (list, tuple)) or not spec:
        raise ConfigError(path, f"expected a non-empty list of conditions, got {spec!r}")
    return [_compile_mapping(item, f"{path}[{i}]") for i, item in enumerate(spec)]


def _compile_key(key: Any, value: Any, path: str) -> Condition:
    if key == "all":
        return _all_of(_compile_list(value, path))
    if key == "any":
        return _any_of(_compile_list(value, path))
    if key == "not":
        return _not(_compile_mapping(value, path))
    if not is_field(key):
        raise ConfigError(path, _unknown_field(key))
    get = _getter(key)
    if isinstance(value, Mapping):
        if not value:
            raise ConfigError(path, f"expected an operator: {', '.join(OPERATORS)}")
        return _all_of(
            [_compile_operator(get, op, arg, _join(path, str(op))) for op, arg in value.items()]
        )
    if isinstance(value, (list, tuple)):
        return _in(get, value, path)
    return _eq(get, value, path)


def _compile_operator(get: Getter, op: Any, arg: Any, path: str) -> Condition:
    builder = _BUILDERS.get(op) if isinstance(op, str) else None
    if builder is None:
        raise ConfigError(path, f"unknown operator {op!r}; valid operators: {', '.join(OPERATORS)}")
    return builder(get, arg, path)


# --- Index support -------------------------------------------------------------------------------


def index_terms(spec: Any) -> tuple[str, frozenset[Hashable]] | None:
    """A field and key set that any lead matching ``spec`` must have, or None.

    For a valid spec whose ANDed keys include an equality or ``in`` on a field (a scalar, a list,
    ``{eq: ..}`` or ``{in: [..]}``; items of a top-level ``all`` count too), returns the first
    such ``(field, keys)``. A lead with ``normalize_key(lead.value(field))`` not in ``keys``
    cannot match, which lets a flow skip the rule without evaluating it.
    """
    if not isinstance(spec, Mapping):
        return None
    for key, value in spec.items():
        if key == "all" and isinstance(value, (list, tuple)):
            for item in value:
                terms = index_terms(item)
                if terms is not None:
                    return terms
        elif is_field(key):
            keys = _equality_keys(value)
            if keys is not None:
                return key, keys
    return None


def _equality_keys(value: Any) -> frozenset[Hashable] | None:
    if isinstance(value, Mapping):
        if "eq" in value and not isinstance(value["eq"], (list, tuple, Mapping)):
            return frozenset({normalize_key(value["eq"])})
        value = value.get("in")
    if isinstance(value, (list, tuple)):
        return frozenset(normalize_key(item) for item in value)
    if isinstance(value, (str, int, float)):
        return frozenset({normalize_key(value)})
    return None
