"""Validate parsed app.yaml and build the typed Config the router uses.

Every problem is reported with its path in app.yaml (``flow[1].flow[0].assign.pool: unknown
pool 'enterprize'``), and all problems of one file are reported together.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from workflows.availability import Requirement
from workflows.conditions import compile_condition
from workflows.config import (
    Config,
    OutcomeSettings,
    Pool,
    Queue,
    Rule,
    RuleSla,
    SlaSettings,
    Target,
)
from workflows.config_schema import (
    AppSpec,
    OutcomesSpec,
    PoolSpec,
    QueueSpec,
    RepSpec,
    RuleSlaSpec,
    RuleSpec,
    RuleTaskSpec,
    SlaSpec,
    TargetSpec,
    TaskSpec,
    error_path,
)
from workflows.crm_ids import id_key
from workflows.errors import ConfigError, ConfigErrors
from workflows.flow import CompiledFlow
from workflows.model import TARGET_KINDS, Rep, TargetKind
from workflows.postgres_url import redact
from workflows.strategies import ABSENCE_MODES, STRATEGIES
from workflows.task_spec import DEFAULT_TASK, RuleTask, TaskSettings, Template, parse_template
from workflows.webhook_url import url_problem
from workflows.working_hours import DateRange, WeeklyHours, parse_date_ranges, parse_hours

SUPPORTED_STORES = ("sqlite:///", "postgresql://")


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
    got = repr(error.get("input"))
    if message.endswith(f"got {got}"):  # our own validators already say what they got
        return message
    return f"{message} (got {got})"


class _Builder:
    """Turns the validated spec into typed objects, collecting every cross-reference error."""

    def __init__(self, spec: AppSpec, source: Path, version: str) -> None:
        self.spec = spec
        self.source = source
        self.version = version
        self.errors: list[ConfigError] = []
        self.reps: dict[str, Rep] = {}
        self.pools: dict[str, Pool] = {}
        self.queues: dict[str, Queue] = {}
        self._crm_ids: dict[tuple[str, str], str] = {}

    def build(self) -> Config:
        spec = self.spec
        self._check_timezone(spec.timezone, "timezone")
        for i, rep_spec in enumerate(spec.reps):
            self._add_rep(rep_spec, f"reps[{i}]")
        for pool_id, pool_spec in spec.pools.items():
            self._add_pool(pool_id, pool_spec, f"pools.{pool_id}")
        for name, queue_spec in spec.queues.items():
            self._add_queue(name, queue_spec, f"queues.{name}")
        flow = self._flow(spec.flow, "flow")
        fallback = self._target(spec.fallback, "fallback")
        sla = self._sla(spec.sla) if spec.sla else None
        task = self._task(spec.task) if spec.task else None
        for i, hook in enumerate(spec.notify):
            if (hook.url is None) == (hook.url_env is None):
                self._fail(f"notify[{i}]", "give exactly one of url or url_env")
            problem = url_problem(hook.url) if hook.url is not None else None
            if problem:
                self._fail(f"notify[{i}].url", problem)
        outcomes = self._outcomes(spec.outcomes) if spec.outcomes else None
        if not spec.store.startswith(SUPPORTED_STORES):
            self._fail(
                "store",
                f"unsupported store URL {redact(spec.store)!r} "
                "(expected sqlite:///path or postgresql://user@host/database)",
            )
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
            outcomes=outcomes,
            queues=self.queues,
            task=task,
        )

    def _outcomes(self, spec: OutcomesSpec) -> OutcomeSettings | None:
        if spec.every > spec.watch_for:
            self._fail("outcomes.every", "must not be longer than outcomes.watch_for")
        return OutcomeSettings(spec.watch_for, spec.every) if spec.enabled else None

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
        hours: WeeklyHours | None = None
        away: tuple[DateRange, ...] = ()
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

    def _add_queue(self, name: str, spec: QueueSpec, path: str) -> None:
        if spec.salesforce is None and spec.hubspot_owner_id is None:
            self._fail(path, "give the queue's salesforce id, its hubspot_owner_id, or both")
        sf_id = spec.salesforce
        if sf_id is not None and not _is_queue_id(sf_id):
            self._fail(
                f"{path}.salesforce",
                f"not a Salesforce queue id: {sf_id!r} (15 or 18 characters starting 00G)",
            )
        owner = spec.hubspot_owner_id
        if owner is not None and not (owner.isascii() and owner.isdigit()):
            self._fail(
                f"{path}.hubspot_owner_id",
                f"not a HubSpot owner id: {owner!r} (digits: `leadrelay hubspot owners`)",
            )
        elif owner is not None:
            other = self._crm_ids.get(("hubspot", id_key("hubspot", owner)))
            if other is not None:
                # A holding owner who is also a rep: a lead picked up by that rep would look
                # like a lead still waiting in the queue.
                problem = f"{owner!r} is the owner id of rep {other!r}"
                self._fail(f"{path}.hubspot_owner_id", problem)
        self.queues[name] = Queue(name, sf_id, owner, spec.first_touch)

    def _flow(self, rules: list[RuleSpec], path: str) -> CompiledFlow[Rule]:
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
            task = self._rule_task(spec.task, f"{rule_path}.task") if spec.task else None
            built.append(
                Rule(spec.name, spec.when, condition, target, nested, rule_path, sla, task)
            )
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

    def _template(self, text: str | None, path: str) -> Template | None:
        if text is None:
            return None
        try:
            return parse_template(text, path)
        except ConfigError as exc:
            self.errors.append(exc)
            return ()

    def _task(self, spec: TaskSpec) -> TaskSettings:
        subject = self._template(spec.subject, "task.subject")
        return TaskSettings(
            subject=DEFAULT_TASK.subject if subject is None else subject,
            body=self._template(spec.body, "task.body") or (),
            due=spec.due,
            clock=spec.clock,
            priority=spec.priority,
            type=spec.type,
            enabled=spec.enabled,
        )

    def _rule_task(self, spec: RuleTaskSpec, path: str) -> RuleTask:
        return RuleTask(
            subject=self._template(spec.subject, f"{path}.subject"),
            body=self._template(spec.body, f"{path}.body"),
            due=spec.due,
            clock=spec.clock,
            priority=spec.priority,
            type=spec.type,
            enabled=spec.enabled,
        )

    def _target(self, spec: TargetSpec, path: str) -> Target | None:
        kinds = [k for k in TARGET_KINDS if getattr(spec, k) not in (None, False)]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            self._fail(path, f"name exactly one of {', '.join(TARGET_KINDS)} (found {found})")
            return None
        kind = kinds[0]
        name = getattr(spec, kind) if kind in ("pool", "rep", "queue") else None
        if kind == "pool" and name not in self.pools:
            self._fail(f"{path}.pool", f"unknown pool {name!r}")
        if kind == "queue" and name not in self.queues:
            known = ", ".join(self.queues) or "none defined under queues:"
            self._fail(f"{path}.queue", f"unknown queue {name!r} ({known})")
        if kind == "queue" and spec.require is not None:
            self._fail(f"{path}.require", "a queue has no reps to require languages or skills of")
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
        self, kind: TargetKind, name: str | None, require: Requirement, path: str
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


def _is_queue_id(value: str) -> bool:
    return len(value) in (15, 18) and value.isascii() and value.isalnum() and value[:3] == "00G"


def _resolve_store(url: str, source: Path) -> str:
    # A relative sqlite path is relative to app.yaml, so `leadrelay` behaves the same from any
    # working directory.
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
        path, mark, query = url[len(prefix) :].partition("?")
        return prefix + str((source.parent / path).resolve()) + mark + query
    return url
