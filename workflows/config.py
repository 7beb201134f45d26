"""Load app.yaml once, validate all of it, and build the typed objects the router uses.

Every problem is reported with its path in app.yaml (``flow[1].flow[0].assign.pool: unknown
pool 'enterprize'``), and all problems of one file are reported together.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from workflows.availability import Requirement
from workflows.conditions import Condition, compile_condition
from workflows.config_schema import (
    AppSpec,
    HubSpotSpec,
    NotifySpec,
    PoolSpec,
    RepSpec,
    RuleSlaSpec,
    RuleSpec,
    SalesforceSpec,
    SlaSpec,
    TargetSpec,
    error_path,
)
from workflows.crm_ids import id_key
from workflows.errors import ConfigError, ConfigErrors
from workflows.flow import CompiledFlow
from workflows.model import Rep
from workflows.strategies import ABSENCE_MODES, STRATEGIES
from workflows.webhook_url import url_problem
from workflows.working_hours import parse_date_ranges, parse_hours
from workflows.yaml_loader import load_yaml

SUPPORTED_STORES = ("sqlite:///",)
TARGET_KINDS = ("pool", "rep", "account_owner", "previous_owner", "keep")


@dataclass(frozen=True)
class Pool:
    """A group of reps sharing leads by one strategy."""

    id: str
    members: tuple[str, ...]
    strategy: str
    absence: str = "forfeit"  # what a missed turn means: "forfeit" or "credit"
    max_credit: int = 3


@dataclass(frozen=True)
class Target:
    """Where a rule sends a lead: a pool, a rep, the account owner, the previous owner, or keep.

    ``otherwise`` is the rule's ``else:``, tried when this target yields nobody available.
    """

    kind: str
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
        if self.kind in ("pool", "rep"):
            return f"{self.kind} {self.name}"
        return self.kind.replace("_", " ")


@dataclass(frozen=True)
class SlaSettings:
    """The first-touch SLA that applies to one assignment (global, or a rule's override)."""

    first_touch: timedelta
    clock: str  # "working_hours" (the owner's own hours) or "wall"
    max_reassignments: int
    escalate_to: Target | None
    enabled: bool = True


@dataclass(frozen=True)
class RuleSla:
    """A rule's ``sla:``: only the keys it sets, to lay over the global settings."""

    first_touch: timedelta | None = None
    clock: str | None = None
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
    flow: CompiledFlow | None
    path: str
    sla: RuleSla | None = None


@dataclass(frozen=True)
class Config:
    """The whole validated app.yaml."""

    store_url: str
    timezone: str
    reps: dict[str, Rep]
    pools: dict[str, Pool]
    flow: CompiledFlow
    fallback: Target
    version: str  # a hash of the file: every logged decision names the config that made it
    source: Path
    hubspot: HubSpotSpec = HubSpotSpec()
    salesforce: SalesforceSpec = SalesforceSpec()
    sla: SlaSettings | None = None  # None: no SLA sweep unless a rule sets its own
    sweep_every: timedelta = timedelta(minutes=2)
    notify: tuple[NotifySpec, ...] = ()

    def sla_for(self, rule_path: str) -> SlaSettings | None:
        """The SLA for an assignment made by the rule at ``rule_path`` (``a/b``), or None.

        Rules inherit from their parents; a rule's own keys override. The fallback and routing
        entries use the global settings.
        """
        settings = self.sla
        flow: CompiledFlow | None = self.flow
        for name in rule_path.split("/"):
            rule = next((r for r in flow.rules if r.name == name), None) if flow else None
            if rule is None:
                break
            if rule.sla is not None:
                base = settings or _DEFAULT_SLA
                settings = rule.sla.over(base)
            flow = rule.flow
        return settings if settings is not None and settings.enabled else None

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


_DEFAULT_SLA = SlaSettings(
    first_touch=timedelta(minutes=15), clock="working_hours", max_reassignments=2, escalate_to=None
)


def default_config_path() -> Path:
    """``$LEADRELAY_CONFIG``, else ./app.yaml."""
    return Path(os.environ.get("LEADRELAY_CONFIG", "app.yaml"))


def load_config(path: str | Path) -> Config:
    """Read and validate app.yaml; raise ``ConfigErrors`` listing every problem with its path."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigErrors([ConfigError("", f"{path}: {_not_utf8(exc)}")]) from None
    except OSError as exc:
        raise ConfigErrors([ConfigError("", f"cannot read {path}: {exc.strerror}")]) from None
    data = load_yaml(text, str(path))
    if not isinstance(data, dict):
        raise ConfigErrors([ConfigError("", f"{path}: expected a mapping at the top level")])
    return build_config(data, source=path, version=hashlib.sha256(text.encode()).hexdigest()[:12])


def _not_utf8(exc: UnicodeDecodeError) -> str:
    line = exc.object[: exc.start].count(b"\n") + 1
    return f"line {line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save it as UTF-8"


def build_config(data: dict[str, Any], *, source: Path, version: str = "inline") -> Config:
    """Validate already-parsed app.yaml data and build the Config."""
    try:
        spec = AppSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigErrors(
            [ConfigError(error_path(e["loc"]), _pydantic_message(e)) for e in exc.errors()]
        ) from None
    return _Builder(spec, source, version).build()


def _pydantic_message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{message} (got {error.get('input')!r})"


class _Builder:
    """Turns the validated spec into typed objects, collecting every cross-reference error."""

    def __init__(self, spec: AppSpec, source: Path, version: str) -> None:
        self.spec = spec
        self.source = source
        self.version = version
        self.errors: list[ConfigError] = []
        self.reps: dict[str, Rep] = {}
        self.pools: dict[str, Pool] = {}
        self._crm_ids: dict[tuple[str, str], str] = {}

    def build(self) -> Config:
        spec = self.spec
        self._check_timezone(spec.timezone, "timezone")
        for i, rep_spec in enumerate(spec.reps):
            self._add_rep(rep_spec, f"reps[{i}]")
        for pool_id, pool_spec in spec.pools.items():
            self._add_pool(pool_id, pool_spec, f"pools.{pool_id}")
        flow = self._flow(spec.flow, "flow")
        fallback = self._target(spec.fallback, "fallback")
        sla = self._sla(spec.sla) if spec.sla else None
        for i, hook in enumerate(spec.notify):
            if (hook.url is None) == (hook.url_env is None):
                self._fail(f"notify[{i}]", "give exactly one of url or url_env")
            problem = url_problem(hook.url) if hook.url is not None else None
            if problem:
                self._fail(f"notify[{i}].url", problem)
        if not spec.store.startswith(SUPPORTED_STORES):
            self._fail("store", f"unsupported store URL {spec.store!r} (expected sqlite:///path)")
        if self.errors:
            raise ConfigErrors(self.errors)
        assert fallback is not None
        return Config(
            store_url=os.environ.get("LEADRELAY_STORE") or _resolve_store(spec.store, self.source),
            timezone=spec.timezone,
            reps=self.reps,
            pools=self.pools,
            flow=flow,
            fallback=fallback,
            version=self.version,
            source=self.source,
            hubspot=spec.hubspot,
            salesforce=spec.salesforce,
            sla=sla,
            sweep_every=spec.sla.sweep_every if spec.sla else timedelta(minutes=2),
            notify=tuple(spec.notify),
        )

    def _fail(self, path: str, message: str) -> None:
        self.errors.append(ConfigError(path, message))

    def _check_timezone(self, name: str, path: str) -> bool:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            self._fail(path, f"unknown time zone {name!r} (use an IANA name like America/Chicago)")
            return False
        return True

    def _add_rep(self, spec: RepSpec, path: str) -> None:
        if spec.id in self.reps:
            self._fail(f"{path}.id", f"duplicate rep id {spec.id!r}")
            return
        timezone = spec.timezone or self.spec.timezone
        if spec.timezone:
            self._check_timezone(spec.timezone, f"{path}.timezone")
        sf_id = spec.salesforce_user_id
        if sf_id and (len(sf_id) not in (15, 18) or not sf_id.isalnum()):
            self._fail(f"{path}.salesforce_user_id", f"not a Salesforce id: {sf_id!r}")
        hours, away = None, ()
        try:
            hours = parse_hours(spec.hours, f"{path}.hours") if spec.hours else None
        except ConfigError as exc:
            self.errors.append(exc)  # the rep still exists: pools naming them are fine
        try:
            away = parse_date_ranges(spec.out_of_office, f"{path}.out_of_office")
        except ConfigError as exc:
            self.errors.append(exc)
        for crm, own in (("hubspot", spec.hubspot_owner_id), ("salesforce", sf_id)):
            if not own:
                continue
            key = (crm, id_key(crm, own))
            if key in self._crm_ids:
                other = self._crm_ids[key]
                self._fail(f"{path}.{crm}_{'owner' if crm == 'hubspot' else 'user'}_id",
                           f"{own!r} is also rep {other!r}'s id")  # fmt: skip
            self._crm_ids[key] = spec.id
        self.reps[spec.id] = Rep(
            id=spec.id,
            name=spec.name or spec.id,
            timezone=timezone,
            email=spec.email,
            hubspot_owner_id=spec.hubspot_owner_id,
            salesforce_user_id=sf_id,
            hours=hours,
            out_of_office=away,
            languages=frozenset(x.casefold() for x in spec.languages),
            skills=frozenset(x.casefold() for x in spec.skills),
            weight=spec.weight,
            daily_cap=spec.daily_cap,
            active=spec.active,
        )

    def _add_pool(self, pool_id: str, spec: PoolSpec, path: str) -> None:
        seen: set[str] = set()
        for i, member in enumerate(spec.members):
            if member not in self.reps:
                self._fail(f"{path}.members[{i}]", f"unknown rep {member!r}")
            if member in seen:
                self._fail(f"{path}.members[{i}]", f"rep {member!r} is listed twice")
            seen.add(member)
        if spec.strategy not in STRATEGIES:
            known = ", ".join(STRATEGIES)
            self._fail(f"{path}.strategy", f"unknown strategy {spec.strategy!r} (one of {known})")
        if spec.absence not in ABSENCE_MODES:
            known = ", ".join(ABSENCE_MODES)
            self._fail(f"{path}.absence", f"unknown absence mode {spec.absence!r} (one of {known})")
        self.pools[pool_id] = Pool(
            pool_id, tuple(spec.members), spec.strategy, spec.absence, spec.max_credit
        )

    def _flow(self, rules: list[RuleSpec], path: str) -> CompiledFlow:
        built: list[Rule] = []
        names: set[str] = set()
        for i, spec in enumerate(rules):
            rule_path = f"{path}[{i}]"
            if spec.name in names:
                self._fail(f"{rule_path}.name", f"duplicate rule name {spec.name!r} in this flow")
            names.add(spec.name)
            if "/" in spec.name:
                self._fail(f"{rule_path}.name", "a rule name cannot contain '/'")
            try:
                condition = compile_condition(spec.when, f"{rule_path}.when")
            except ConfigError as exc:
                self.errors.append(exc)  # and go on checking the rest of the rule
                condition = compile_condition(None, f"{rule_path}.when")
            if spec.assign is None and spec.flow is None:
                self._fail(rule_path, "a rule needs 'assign' or a nested 'flow'")
            nested = self._flow(spec.flow, f"{rule_path}.flow") if spec.flow is not None else None
            target = self._target(spec.assign, f"{rule_path}.assign") if spec.assign else None
            sla = self._rule_sla(spec.sla, f"{rule_path}.sla") if spec.sla else None
            built.append(Rule(spec.name, spec.when, condition, target, nested, rule_path, sla))
        return CompiledFlow(built)

    def _sla(self, spec: SlaSpec) -> SlaSettings:
        escalate = self._target(spec.escalate_to, "sla.escalate_to") if spec.escalate_to else None
        return SlaSettings(
            spec.first_touch, spec.clock, spec.max_reassignments, escalate, spec.enabled
        )

    def _rule_sla(self, spec: RuleSlaSpec, path: str) -> RuleSla:
        escalate = (
            self._target(spec.escalate_to, f"{path}.escalate_to") if spec.escalate_to else None
        )
        return RuleSla(spec.first_touch, spec.clock, spec.max_reassignments, escalate, spec.enabled)

    def _target(self, spec: TargetSpec, path: str) -> Target | None:
        kinds = [k for k in TARGET_KINDS if getattr(spec, k) not in (None, False)]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            self._fail(path, f"name exactly one of {', '.join(TARGET_KINDS)} (found {found})")
            return None
        kind = kinds[0]
        name = getattr(spec, kind) if kind in ("pool", "rep") else None
        if kind == "pool" and name not in self.pools:
            self._fail(f"{path}.pool", f"unknown pool {name!r}")
        if kind == "rep" and name not in self.reps:
            self._fail(f"{path}.rep", f"unknown rep {name!r}")
        require = None
        if spec.require is not None:
            require = Requirement(
                languages=frozenset(x.casefold() for x in spec.require.languages),
                skills=frozenset(x.casefold() for x in spec.require.skills),
            )
            self._check_requirement_can_be_met(kind, name, require, f"{path}.require")
        otherwise = self._target(spec.else_, f"{path}.else") if spec.else_ else None
        return Target(kind, name, require, otherwise, path)

    def _check_requirement_can_be_met(
        self, kind: str, name: str | None, require: Requirement, path: str
    ) -> None:
        # A requirement no candidate can meet sends every lead to `else`: almost surely a typo.
        if kind == "pool" and name in self.pools:
            candidates = [self.reps[m] for m in self.pools[name].members if m in self.reps]
        elif kind == "rep" and name in self.reps:
            candidates = [self.reps[name]]
        else:
            return
        if not any(
            require.languages <= rep.languages and require.skills <= rep.skills
            for rep in candidates
        ):
            self._fail(path, f"no rep in {kind} {name!r} meets this requirement")


def _resolve_store(url: str, source: Path) -> str:
    # A relative sqlite path is relative to app.yaml, so `leadrelay` behaves the same from any
    # working directory.
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
        path, mark, query = url[len(prefix) :].partition("?")
        return prefix + str((source.parent / path).resolve()) + mark + query
    return url
