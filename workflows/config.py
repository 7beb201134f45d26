"""The validated app.yaml as typed objects: the Config the router reads, and the pools,
targets, rules and SLA settings it holds.

``workflows.config_loader`` reads app.yaml into one; ``workflows.config_builder`` checks and
builds it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from workflows.availability import Requirement
from workflows.condition_operators import Condition
from workflows.config_schema import HubSpotSpec, NotifySpec, SalesforceSpec
from workflows.crm_ids import id_key
from workflows.flow import CompiledFlow
from workflows.model import Rep, SlaClock, TargetKind
from workflows.task_spec import DEFAULT_TASK, RuleTask, TaskSettings


@dataclass(frozen=True)
class Pool:
    """A group of reps sharing leads by one strategy."""

    id: str
    members: tuple[str, ...]
    strategy: str
    absence: str = "forfeit"  # what a missed turn means: "forfeit" or "credit"
    max_credit: int = 3


@dataclass(frozen=True)
class Queue:
    """A named queue (``queues:``): a Salesforce queue id, a HubSpot holding owner, and how
    long reps have to pick a lead up from it (None: the rule's ``first_touch``)."""

    name: str
    salesforce: str | None = None
    hubspot_owner_id: str | None = None
    first_touch: timedelta | None = None

    def crm_id(self, crm: str) -> str | None:
        """The owner id that parks a lead in this queue in ``crm`` (its name for no CRM)."""
        ids = {"hubspot": self.hubspot_owner_id, "salesforce": self.salesforce}
        return ids.get(crm, self.name)


@dataclass(frozen=True)
class Target:
    """Where a rule sends a lead: a pool, a rep, the account owner, the previous owner, or keep.

    ``otherwise`` is the rule's ``else:``, tried when this target yields nobody available.
    """

    kind: TargetKind
    name: str | None
    require: Requirement | None
    otherwise: Target | None
    path: str

    def chain(self) -> Iterator[Target]:
        """This target followed by its ``else:`` targets, in the order they are tried."""
        target: Target | None = self
        while target is not None:
            yield target
            target = target.otherwise

    def describe(self) -> str:
        if self.kind in ("pool", "rep", "queue"):
            return f"{self.kind} {self.name}"
        return self.kind.replace("_", " ")


@dataclass(frozen=True)
class SlaSettings:
    """The first-touch SLA that applies to one assignment (global, or a rule's override)."""

    first_touch: timedelta
    clock: SlaClock
    max_reassignments: int
    escalate_to: Target | None
    enabled: bool = True


@dataclass(frozen=True)
class OutcomeSettings:
    """``outcomes:``: leads decided within ``watch_for`` are read from their CRM again, each
    at most once per ``every``, until they convert or are disqualified."""

    watch_for: timedelta = timedelta(days=30)
    every: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class RuleSla:
    """A rule's ``sla:``: only the keys it sets, to lay over the global settings."""

    first_touch: timedelta | None = None
    clock: SlaClock | None = None
    max_reassignments: int | None = None
    escalate_to: Target | None = None
    enabled: bool | None = None

    def over(self, base: SlaSettings) -> SlaSettings:
        """``base`` with this rule's keys laid over it."""
        return SlaSettings(
            first_touch=self.first_touch if self.first_touch is not None else base.first_touch,
            clock=self.clock or base.clock,
            max_reassignments=(
                self.max_reassignments
                if self.max_reassignments is not None
                else base.max_reassignments
            ),
            escalate_to=self.escalate_to or base.escalate_to,
            enabled=self.enabled if self.enabled is not None else base.enabled,
        )


@dataclass
class Rule:
    """One entry of a flow: a condition and either a target or a nested flow (or both)."""

    name: str
    when: Any
    condition: Condition
    assign: Target | None
    flow: CompiledFlow[Rule] | None
    path: str
    sla: RuleSla | None = None
    task: RuleTask | None = None


@dataclass(frozen=True)
class Config:
    """The whole validated app.yaml."""

    store_url: str
    timezone: str
    reps: dict[str, Rep]
    pools: dict[str, Pool]
    flow: CompiledFlow[Rule]
    fallback: Target
    version: str  # a hash of the file: every logged decision names the config that made it
    source: Path
    hubspot: HubSpotSpec = HubSpotSpec()
    salesforce: SalesforceSpec = SalesforceSpec()
    sla: SlaSettings | None = None  # None: no SLA sweep unless a rule sets its own
    sweep_every: timedelta = timedelta(minutes=2)
    notify: tuple[NotifySpec, ...] = ()
    outcomes: OutcomeSettings | None = None  # None: no outcome watcher in ``serve``
    queues: dict[str, Queue] = field(default_factory=dict)
    task: TaskSettings | None = None  # None: no follow-up task unless a rule sets its own

    def sla_for(self, rule_path: str) -> SlaSettings | None:
        """The SLA for an assignment made by the rule at ``rule_path`` (``a/b``), or None.

        Rules inherit from their parents; a rule's own keys override. The fallback and routing
        entries use the global settings.
        """
        settings = self.sla
        for rule in self._rules_along(rule_path):
            if rule.sla is not None:
                base = settings or DEFAULT_SLA
                settings = rule.sla.over(base)
        return settings if settings is not None and settings.enabled else None

    def task_for(self, rule_path: str) -> TaskSettings | None:
        """The follow-up task for an assignment made by the rule at ``rule_path``, or None.

        Inherited and overridden like ``sla_for``; the fallback and routing entries use the
        global ``task:``.
        """
        settings = self.task
        for rule in self._rules_along(rule_path):
            if rule.task is not None:
                settings = rule.task.over(settings or DEFAULT_TASK)
        return settings if settings is not None and settings.enabled else None

    def _rules_along(self, rule_path: str) -> Iterator[Rule]:
        """The rules a path (``a/b``) names, outermost first, as far as they exist."""
        flow: CompiledFlow[Rule] | None = self.flow
        for name in rule_path.split("/"):
            rule = next((r for r in flow.rules if r.name == name), None) if flow else None
            if rule is None:
                return
            yield rule
            flow = rule.flow

    def targets(self) -> Iterator[Target]:
        """Every target routing may try: the fallback's chain and each rule's, nested rules
        included."""
        yield from self.fallback.chain()
        rules = list(self.flow.rules)
        while rules:
            rule = rules.pop()
            if rule.assign is not None:
                yield from rule.assign.chain()
            if rule.flow is not None:
                rules.extend(rule.flow.rules)

    def rule(self, name: str) -> Rule:
        """A top-level rule by name (a routing entry point); LookupError names the choices."""
        for rule in self.flow.rules:
            if rule.name == name:
                return rule
        choices = ", ".join([*self.pools, *(r.name for r in self.flow.rules)])
        raise LookupError(f"no pool or top-level rule named {name!r} (one of {choices})")

    def entry_points(self) -> list[str]:
        """Where an admin may start routing instead of the whole flow: ``pool:<name>`` for
        every pool and ``rule:<name>`` for every top-level rule (a pool and a rule may share a
        name, as `enterprise` often does)."""
        return [*(f"pool:{p}" for p in self.pools), *(f"rule:{r.name}" for r in self.flow.rules)]

    def accepts_entry(self, name: str) -> bool:
        """True for an entry point, written with its prefix or as a bare pool or rule name."""
        if name in self.entry_points():
            return True
        return name in self.pools or any(rule.name == name for rule in self.flow.rules)

    def queue_by_crm_id(self, crm: str, crm_id: str | None) -> Queue | None:
        """The queue whose owner id in ``crm`` is ``crm_id`` (a lead parked in it)."""
        if not crm_id or crm not in ("hubspot", "salesforce"):
            return None
        key = id_key(crm, crm_id)
        for queue in self.queues.values():
            own = queue.crm_id(crm)
            if own and id_key(crm, own) == key:
                return queue
        return None

    def rep_by_crm_id(self, crm: str, crm_id: str | None) -> Rep | None:
        """The rep whose owner id in ``crm`` is ``crm_id``."""
        if not crm_id:
            return None
        crm = crm if crm in ("hubspot", "salesforce") else "none"
        return self._owner_index.get((crm, id_key(crm, crm_id)))

    @cached_property
    def _owner_index(self) -> dict[tuple[str, str], Rep]:
        index: dict[tuple[str, str], Rep] = {}
        for rep in self.reps.values():
            for crm in ("hubspot", "salesforce", "none"):
                own = rep.crm_id(crm)
                if own:
                    index.setdefault((crm, id_key(crm, own)), rep)
        return index


DEFAULT_SLA = SlaSettings(
    first_touch=timedelta(minutes=15), clock="working_hours", max_reassignments=2, escalate_to=None
)
