"""The routing configuration as a person reads it: rules with their conditions, targets and
``else:`` chains, pools, the fallback and SLA terms (for ``/ops/rules``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from workflows.config import Config, Pool, Rule, RuleSla, SlaSettings, Target


@dataclass(frozen=True)
class RuleView:
    name: str
    path: str  # as decisions name it: enterprise/enterprise-na
    where: str  # in app.yaml: flow[1].flow[0]
    when: str  # the condition as app.yaml writes it, or "always"
    targets: list[str]  # the target, then each else: target, in the order tried
    sla: str | None
    rules: list[RuleView] = field(default_factory=list)


@dataclass(frozen=True)
class PoolView:
    id: str
    strategy: str
    members: list[str]
    absence: str


def condition_text(when: Any) -> str:
    """A ``when:`` in YAML's one-line flow style, as short as app.yaml's own."""
    if when is None:
        return "always"
    return str(yaml.safe_dump(when, default_flow_style=True, sort_keys=False, width=10**6)).strip()


def target_text(target: Target, config: Config) -> str:
    """``pool na-smb (round_robin)``, ``rep Chen``, ``account owner``, plus what it needs."""
    text = target.describe()
    if target.kind == "pool" and target.name in config.pools:
        text += f" ({config.pools[target.name].strategy})"
    elif target.kind == "rep" and target.name in config.reps:
        text = f"rep {config.reps[target.name].name}"
    needs = []
    if target.require is not None:
        needs += [f"speaks {lang}" for lang in sorted(target.require.languages)]
        needs += [f"skill {skill}" for skill in sorted(target.require.skills)]
    return f"{text}, needs {', '.join(needs)}" if needs else text


def chain_text(target: Target | None, config: Config) -> list[str]:
    return [target_text(t, config) for t in target.chain()] if target else []


def sla_text(sla: SlaSettings | RuleSla | None, config: Config) -> str | None:
    """``first touch 15m on the working_hours clock, 2 rotations, then escalate to rep mgr``."""
    if sla is None:
        return None
    if sla.enabled is False:
        return "no SLA"
    parts = []
    if sla.first_touch is not None:
        parts.append(f"first touch {_duration(sla.first_touch.total_seconds())}")
    if sla.clock is not None:
        parts.append(f"on the {sla.clock.replace('_', ' ')} clock")
    if sla.max_reassignments is not None:
        parts.append(f"up to {sla.max_reassignments} rotations")
    if sla.escalate_to is not None:
        parts.append(f"then escalate to {target_text(sla.escalate_to, config)}")
    return ", ".join(parts) or None


def _duration(seconds: float) -> str:
    minutes = int(seconds) // 60
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def rule_views(rules: list[Rule], config: Config, parent: str = "") -> list[RuleView]:
    return [
        RuleView(
            name=rule.name,
            path=f"{parent}/{rule.name}" if parent else rule.name,
            where=rule.path,
            when=condition_text(rule.when),
            targets=chain_text(rule.assign, config),
            sla=sla_text(rule.sla, config),
            rules=(
                rule_views(rule.flow.rules, config, f"{parent}/{rule.name}".lstrip("/"))
                if rule.flow is not None
                else []
            ),
        )
        for rule in rules
    ]


def rule_paths(rules: list[Rule], parent: str = "") -> Iterator[str]:
    """Every rule path a decision may name (``enterprise``, ``enterprise/na``), in flow order."""
    for rule in rules:
        path = f"{parent}/{rule.name}" if parent else rule.name
        yield path
        if rule.flow is not None:
            yield from rule_paths(rule.flow.rules, path)


def pool_views(config: Config) -> list[PoolView]:
    def name(rep: str) -> str:
        return config.reps[rep].name if rep in config.reps else rep

    return [
        PoolView(p.id, p.strategy, [name(m) for m in p.members], _absence(p))
        for p in config.pools.values()
    ]


def _absence(pool: Pool) -> str:
    if pool.absence == "credit":
        return f"missed turns owed (up to {pool.max_credit})"
    return "missed turns forfeited"
