"""An ordered routing flow, first match wins, indexed so large flows stay fast.

Rules are conceptually tried top to bottom. To avoid testing every rule, each rule whose
``when:`` pins a field to a set of values (``country: [US, CA]``) is filed under those values;
a lead then only evaluates the rules filed under its own values plus the rules that could not be
indexed, still in their original order, so the answer is the one a linear scan would give.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Generic, Protocol, Self, TypeVar

from workflows.condition_operators import Condition
from workflows.condition_values import normalize_key
from workflows.conditions import index_terms
from workflows.model import Lead

_EAGER_LIMIT = 64  # candidate counts up to which sorting beats a lazy merge


class FlowRule(Protocol):
    """What a flow needs from a rule (the config layer's ``Rule`` provides it); a flow hands
    back the rule type it was built with, so callers read their own fields off a match."""

    @property
    def name(self) -> str: ...

    @property
    def when(self) -> Any: ...  # the raw spec from app.yaml, read once for index_terms

    @property
    def condition(self) -> Condition: ...

    @property
    def flow(self) -> CompiledFlow[Self] | None: ...

    @property
    def assign(self) -> object | None: ...  # only tested for None here


R = TypeVar("R", bound=FlowRule)


@dataclass(frozen=True)
class FlowMatch(Generic[R]):
    """The rule that decides a lead, and the rule names leading to it from the top level."""

    path: tuple[str, ...]
    rule: R


class CompiledFlow(Generic[R]):
    """An ordered list of rules with an index for ``first_match``."""

    def __init__(self, rules: Sequence[R]) -> None:
        self.rules: list[R] = list(rules)
        index: dict[str, dict[Hashable, list[int]]] = {}
        always: list[int] = []
        for position, rule in enumerate(self.rules):
            terms = index_terms(rule.when)
            if terms is None:
                always.append(position)
                continue
            field, keys = terms
            by_key = index.setdefault(field, {})
            for key in keys:
                by_key.setdefault(key, []).append(position)
        # Positions were appended in ascending order, which is what the merge relies on.
        self._index: tuple[tuple[str, dict[Hashable, tuple[int, ...]]], ...] = tuple(
            (field, {key: tuple(positions) for key, positions in by_key.items()})
            for field, by_key in index.items()
        )
        self._always: tuple[int, ...] = tuple(always)

    def __len__(self) -> int:
        return len(self.rules)

    def _candidates(self, lead: Lead) -> Iterable[int]:
        """Positions of the rules that could match ``lead``, ascending, each at most once."""
        # No duplicates to drop: a rule is filed under one field, and a lead has one key for it.
        runs = [self._always] if self._always else []
        for field, by_key in self._index:
            hits = by_key.get(normalize_key(lead.value(field)))
            if hits:
                runs.append(hits)
        if len(runs) == 1:
            return runs[0]
        if sum(map(len, runs)) <= _EAGER_LIMIT:
            # Setting up heapq.merge costs more than sorting a few positions (in C, run-aware).
            return sorted(chain.from_iterable(runs))
        return heapq.merge(*runs)  # lazy: the first match often comes long before the end

    def first_match(self, lead: Lead) -> FlowMatch[R] | None:
        """The first rule, top to bottom, that decides ``lead``; None when none does.

        A matching rule with a nested flow defers to it; when nothing there matches, the rule
        decides by its own ``assign`` if it has one, and otherwise the search moves on to the
        next sibling.
        """
        rules = self.rules
        for position in self._candidates(lead):
            rule = rules[position]
            if not rule.condition(lead):
                continue
            if rule.flow is not None:
                inner = rule.flow.first_match(lead)
                if inner is not None:
                    return FlowMatch((rule.name, *inner.path), inner.rule)
                if rule.assign is None:
                    continue
            return FlowMatch((rule.name,), rule)
        return None
