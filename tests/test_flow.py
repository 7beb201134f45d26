"""Flows: first match wins, nested flows, and an index that never changes the answer."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from workflows.condition_operators import Condition
from workflows.conditions import compile_condition
from workflows.flow import CompiledFlow, FlowMatch
from workflows.model import Lead


@dataclass(frozen=True)
class Rule:
    name: str
    when: Any
    condition: Condition
    flow: CompiledFlow[Rule] | None = None
    assign: object | None = None


def rule(
    name: str,
    when: Any = None,
    assign: object | None = "pool",
    flow: Sequence[Rule] | None = None,
) -> Rule:
    """A rule as the config layer builds it; ``assign`` defaults to a placeholder target."""
    nested = CompiledFlow(flow) if flow is not None else None
    return Rule(name, when, compile_condition(when, name), nested, assign)


def lead(**values: Any) -> Lead:
    return Lead(id="1", **values)


def path_of(flow: CompiledFlow[Rule], subject: Lead) -> tuple[str, ...] | None:
    match = flow.first_match(subject)
    return match.path if match else None


# --- order and matching --------------------------------------------------------------------------


def test_rules_are_tried_top_to_bottom_and_first_match_wins() -> None:
    flow = CompiledFlow([rule("us", {"country": "US"}), rule("any-us", {"country": "us"})])
    assert path_of(flow, lead(country="US")) == ("us",)


def test_first_match_wins_even_when_a_later_rule_is_indexed() -> None:
    flow = CompiledFlow([rule("big", {"employees": {"gte": 1000}}), rule("us", {"country": "US"})])
    assert path_of(flow, lead(country="US", employees=5000)) == ("big",)
    assert path_of(flow, lead(country="US", employees=10)) == ("us",)


def test_indexed_rule_before_an_unindexed_rule_wins() -> None:
    flow = CompiledFlow([rule("us", {"country": "US"}), rule("big", {"employees": {"gte": 1000}})])
    assert path_of(flow, lead(country="US", employees=5000)) == ("us",)


def test_rule_without_when_matches_everything() -> None:
    flow = CompiledFlow([rule("us", {"country": "US"}), rule("everyone")])
    assert path_of(flow, lead(country="FR")) == ("everyone",)
    assert path_of(flow, lead()) == ("everyone",)


def test_no_match_is_none() -> None:
    flow = CompiledFlow([rule("us", {"country": "US"})])
    assert flow.first_match(lead(country="CA")) is None
    assert CompiledFlow([]).first_match(lead()) is None


def test_match_carries_the_rule_itself() -> None:
    us = rule("us", {"country": "US"}, assign="na-pool")
    assert CompiledFlow([us]).first_match(lead(country="us")) == FlowMatch(("us",), us)


def test_flow_match_is_frozen() -> None:
    match = FlowMatch(("a",), rule("a"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        match.path = ("b",)  # type: ignore[misc]


def test_candidates_still_pass_their_full_condition() -> None:
    flow = CompiledFlow([rule("big-us", {"country": "US", "employees": {"gte": 100}})])
    assert path_of(flow, lead(country="US", employees=10)) is None
    assert path_of(flow, lead(country="US", employees=100)) == ("big-us",)


def test_index_matches_case_whitespace_and_numeric_text() -> None:
    flow = CompiledFlow(
        [rule("ca", {"state": ["CA", "OR"]}), rule("fifty", {"raw.size": {"eq": 50}})]
    )
    assert path_of(flow, lead(state=" or ")) == ("ca",)
    assert path_of(flow, lead(raw={"size": "50"})) == ("fifty",)


def test_rule_indexed_inside_all_is_found() -> None:
    flow = CompiledFlow([rule("us", {"all": [{"score": {"gt": 1}}, {"country": "US"}]})])
    assert path_of(flow, lead(country="us", score=5)) == ("us",)
    assert path_of(flow, lead(country="ca", score=5)) is None


def test_lead_without_the_indexed_field_only_meets_unindexed_rules() -> None:
    flow = CompiledFlow(
        [rule("us", {"country": "US"}), rule("no-country", {"country": {"missing": True}})]
    )
    assert path_of(flow, lead()) == ("no-country",)


# --- nested flows --------------------------------------------------------------------------------


def test_nested_flow_match_reports_the_path_from_the_top() -> None:
    flow = CompiledFlow(
        [
            rule(
                "enterprise",
                {"employees": {"gte": 1000}},
                assign=None,
                flow=[
                    rule("enterprise-eu", {"country": "DE"}),
                    rule("enterprise-na", {"country": "US"}),
                ],
            )
        ]
    )
    match = flow.first_match(lead(country="US", employees=2000))
    assert match is not None
    assert match.path == ("enterprise", "enterprise-na")
    assert match.rule.name == "enterprise-na"


def test_nested_flow_without_match_uses_the_rule_own_assign() -> None:
    enterprise = rule(
        "enterprise",
        {"employees": {"gte": 1000}},
        assign="ent-pool",
        flow=[rule("eu", {"country": "DE"})],
    )
    flow = CompiledFlow([enterprise, rule("rest")])
    assert flow.first_match(lead(country="US", employees=2000)) == FlowMatch(
        ("enterprise",), enterprise
    )


def test_nested_flow_without_match_falls_through_to_next_sibling() -> None:
    flow = CompiledFlow(
        [
            rule(
                "enterprise",
                {"employees": {"gte": 1000}},
                assign=None,
                flow=[rule("eu", {"country": "DE"})],
            ),
            rule("us", {"country": "US"}),
        ]
    )
    assert path_of(flow, lead(country="US", employees=2000)) == ("us",)


def test_nested_flows_go_several_levels_deep() -> None:
    flow = CompiledFlow(
        [
            rule(
                "na",
                {"country": ["US", "CA"]},
                assign=None,
                flow=[
                    rule(
                        "west",
                        {"state": ["CA", "OR"]},
                        assign=None,
                        flow=[rule("big", {"employees": {"gt": 10}})],
                    ),
                    rule("other"),
                ],
            )
        ]
    )
    assert path_of(flow, lead(country="US", state="CA", employees=50)) == ("na", "west", "big")
    assert path_of(flow, lead(country="US", state="CA", employees=5)) == ("na", "other")


def test_len_and_rules() -> None:
    rules = [rule("a"), rule("b", {"country": "US"})]
    flow = CompiledFlow(rules)
    assert len(flow) == 2
    assert flow.rules == rules


# --- the index is an optimization only -----------------------------------------------------------

# Spellings vary (case, spaces, numeric text) where the index must still agree with a scan.
COUNTRIES = ["US", "CA", "De", "FR", "GB", "JP", "BR", "IN", "MX", "us ", "", None]
STATES = ["CA", "OR", "NY", "TX", "WA", "ca", None]
SIZES = [0, 5, 50, 50.0, "50", " 1,000 ", 1000, 5000, "lots", None]
TIERS = ["gold", "GOLD", "silver", 1, "1", None, ["gold", "vip"]]


def random_when(rng: random.Random) -> Any:
    """A condition, indexable or not, over the fields random_lead fills."""
    choices: list[Any] = [
        {"country": rng.choice(COUNTRIES[:9])},
        {"country": rng.sample(COUNTRIES[:9], 2)},
        {"state": {"in": rng.sample(STATES[:5], 2)}},
        {"raw.tier": {"eq": rng.choice(TIERS[:5])}},
        {"raw.size": rng.choice([50, "1000", 5])},
        {"country": rng.choice(COUNTRIES[:9]), "employees": {"gte": rng.choice([10, 100, 1000])}},
        {"all": [{"employees": {"lt": 1000}}, {"state": rng.choice(STATES[:5])}]},
        {"employees": {"between": [400, 600]}, "state": {"ne": "CA"}},
        {"raw.size": {"gt": 20}, "country": {"missing": True}},
        {"country": {"ne": "US"}, "raw.size": {"lt": 10}},
        {"state": {"not_in": ["CA", "NY"]}, "employees": {"gte": 5000}},
        {"raw.tier": {"contains": "vip"}},
        {"any": [{"country": "JP"}, {"state": "TX"}]},
        {"country": {"missing": True}},
    ]
    # Rules that match every lead are rare so the scan reaches varied depths.
    return None if rng.random() < 0.01 else rng.choice(choices)


def random_rules(rng: random.Random, count: int, depth: int = 0) -> list[Rule]:
    rules = []
    for i in range(count):
        nested = None
        if depth < 2 and rng.random() < 0.15:
            nested = random_rules(rng, rng.randint(1, 5), depth + 1)
        assign = None if nested is not None and rng.random() < 0.5 else f"pool-{i}"
        rules.append(rule(f"r{depth}-{i}", random_when(rng), assign=assign, flow=nested))
    return rules


def random_lead(rng: random.Random) -> Lead:
    return Lead(
        id="1",
        country=rng.choice(COUNTRIES),
        state=rng.choice(STATES),
        employees=rng.choice([None, 5, 50, 500, 5000]),
        raw={"tier": rng.choice(TIERS), "size": rng.choice(SIZES)},
    )


def linear_first_match(rules: Sequence[Rule], subject: Lead) -> FlowMatch[Rule] | None:
    """The specification: every rule in order, no index."""
    for candidate in rules:
        if not candidate.condition(subject):
            continue
        if candidate.flow is not None:
            inner = linear_first_match(candidate.flow.rules, subject)  # type: ignore[arg-type]
            if inner is not None:
                return FlowMatch((candidate.name, *inner.path), inner.rule)
            if candidate.assign is None:
                continue
        return FlowMatch((candidate.name,), candidate)
    return None


def test_indexed_first_match_equals_a_linear_scan() -> None:
    rng = random.Random(20240611)
    depths: list[int] = []
    nested = 0
    for _ in range(40):
        rules = random_rules(rng, rng.randint(1, 80))
        flow = CompiledFlow(rules)
        for _ in range(100):
            subject = random_lead(rng)
            expected = linear_first_match(rules, subject)
            assert flow.first_match(subject) == expected, (subject, [r.when for r in rules])
            names = [r.name for r in rules]
            depths.append(names.index(expected.path[0]) if expected else -1)
            nested += expected is not None and len(expected.path) > 1
    # The generators exercise no match, matches deep in the flow, and nested matches.
    assert depths.count(-1) > 200
    assert sum(depth >= 10 for depth in depths) > 300
    assert nested > 100


# --- speed ---------------------------------------------------------------------------------------


@dataclass
class Counter:
    calls: int = 0
    seen: list[str] = field(default_factory=list)


def counted(inner: Rule, counter: Counter) -> Rule:
    def condition(subject: Lead) -> bool:
        counter.calls += 1
        return inner.condition(subject)

    return dataclasses.replace(inner, condition=condition)


def country_flow(size: int, counter: Counter | None = None) -> CompiledFlow[Rule]:
    # Every rule pins a distinct country code, plus one unindexed rule near the end.
    rules = [rule(f"c{i}", {"country": f"X{i}", "employees": {"gte": 1}}) for i in range(size - 1)]
    rules.insert(size - 2, rule("big", {"employees": {"gte": 10**6}}))
    if counter is not None:
        rules = [counted(r, counter) for r in rules]
    return CompiledFlow(rules)


def test_large_indexed_flow_evaluates_only_candidate_rules() -> None:
    counter = Counter()
    flow = country_flow(1000, counter)
    assert path_of(flow, lead(country="x998", employees=5)) == ("c998",)
    assert counter.calls == 2  # the unindexed rule, then the one rule filed under "x998"
