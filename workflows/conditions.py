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
from collections.abc import Hashable, Mapping
from operator import attrgetter
from typing import Any

from workflows.condition_operators import OPERATORS, Condition, Getter, operator_condition
from workflows.condition_values import normalize_key
from workflows.errors import ConfigError
from workflows.model import LEAD_FIELDS, OBJECT_KINDS, Lead

COMBINATORS = ("all", "any", "not")
# ``object: deal`` reads as the record's kind; the model calls it ``object_type``.
ALIASES = {"object": "object_type"}


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
        name in LEAD_FIELDS or name in ALIASES or (name.startswith("raw.") and len(name) > 4)
    )


def _getter(field: str) -> Getter:
    # The same lookup as Lead.value, without its method call and prefix test on every evaluation.
    if field.startswith("raw."):
        prop = field[4:]
        return lambda lead: lead.raw.get(prop)
    return attrgetter(ALIASES.get(field, field))


def _unknown_field(key: Any) -> str:
    if key in OPERATORS:
        return f"{key!r} is an operator; put it under a field, e.g. employees: {{{key}: ...}}"
    message = f"unknown field {key!r}"
    close = difflib.get_close_matches(str(key), [*LEAD_FIELDS, *ALIASES, *COMBINATORS], n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    fields = ", ".join(sorted([*LEAD_FIELDS, *ALIASES]))
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
    if ALIASES.get(key, key) == "object_type":
        _check_object_kinds(value, path)
    get = _getter(key)
    if isinstance(value, Mapping):
        if not value:
            raise ConfigError(path, f"expected an operator: {', '.join(OPERATORS)}")
        return _all_of(
            [operator_condition(get, op, arg, _join(path, str(op))) for op, arg in value.items()]
        )
    if isinstance(value, (list, tuple)):
        return operator_condition(get, "in", value, path)
    return operator_condition(get, "eq", value, path)


def _check_object_kinds(value: Any, path: str) -> None:
    """An object kind a rule names must be one leadrelay routes: a typo would match nothing."""
    if isinstance(value, Mapping):
        named = [arg for op, arg in value.items() if op in ("eq", "ne", "in", "not_in")]
        items = [x for arg in named for x in (arg if isinstance(arg, (list, tuple)) else [arg])]
    else:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if not isinstance(item, str) or item.strip().casefold() not in OBJECT_KINDS:
            kinds = ", ".join(OBJECT_KINDS)
            raise ConfigError(path, f"unknown object kind {item!r}; expected one of {kinds}")


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
                return ALIASES.get(str(key), str(key)), keys
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
