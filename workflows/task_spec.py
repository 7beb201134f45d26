"""Follow-up tasks as app.yaml describes them: templates checked at start-up, rendered as data.

A ``task:`` (top level, or a rule's own, laid over its parent's like ``sla:``) says what task
the new owner gets once the owner is written: a subject and body templated from the lead and
the decision (``Call {first_name} at {company} ({rule})``), a due time on the SLA clock, a
priority and a type. Templates are parsed here, never handed to ``str.format``: a lead's
values are substituted as plain text, so a lead whose company is ``{rep.__class__}`` stays
that text, and an unknown placeholder is a config error naming its app.yaml path.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, get_args

from workflows.errors import ConfigError
from workflows.model import LEAD_FIELDS, Decision, Lead, Rep, SlaClock

TaskPriority = Literal["low", "normal", "high"]
TaskType = Literal["call", "email", "todo"]
TASK_PRIORITIES: tuple[TaskPriority, ...] = get_args(TaskPriority)
TASK_TYPES: tuple[TaskType, ...] = get_args(TaskType)

# What a template may name besides the lead's fields (and ``raw.<property>``).
DECISION_FIELDS = ("rule", "rep", "rep_name", "rep_email", "pool", "reason")
SUBJECT_LIMIT = 255  # Salesforce's Task.Subject; HubSpot shows about as much
BODY_LIMIT = 32000  # Salesforce's Task.Description
DEFAULT_SUBJECT = "Follow up with {first_name} {last_name} ({company})"
_EMPTY_BRACKETS = re.compile(r"\(\s*\)")

# (literal text, placeholder or None), in order.
Template = tuple[tuple[str, str | None], ...]


def parse_template(text: str, path: str) -> Template:
    """``text`` split into literal parts and placeholders; ConfigError naming ``path`` for an
    unknown name, a format spec or conversion, or an unbalanced brace."""
    parts: list[tuple[str, str | None]] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ConfigError(path, f"{exc} in {text!r} (write {{{{ and }}}} for braces)") from None
    for literal, name, spec, conversion in parsed:
        if name is None:
            parts.append((literal, None))
            continue
        if spec or conversion:
            raise ConfigError(path, f"{{{name}}}: write placeholders plainly, without ! or :")
        if not _known(name):
            known = ", ".join([*sorted(LEAD_FIELDS), *DECISION_FIELDS, "raw.<property>"])
            raise ConfigError(path, f"unknown placeholder {{{name}}} (one of {known})")
        parts.append((literal, name))
    return tuple(parts)


def _known(name: str) -> bool:
    if name.startswith("raw."):
        return len(name) > 4
    return name in LEAD_FIELDS or name in DECISION_FIELDS


def render(template: Template, values: dict[str, Any], limit: int, *, one_line: bool) -> str:
    """The template with each placeholder replaced by its value's text (empty when missing),
    cut at ``limit`` characters; ``one_line``: whitespace runs (a value's newlines too) become
    one space, so an empty value leaves no gap, and brackets left empty go."""
    out = []
    for literal, name in template:
        out.append(literal)
        if name is not None:
            value = values.get(name)
            out.append("" if value is None else str(value))
    text = "".join(out)
    # "({company})" with no company (a deal, a ticket): the rep would read "()" in the subject.
    text = " ".join(_EMPTY_BRACKETS.sub(" ", text).split()) if one_line else text.strip()
    return text[:limit]


@dataclass(frozen=True)
class TaskSettings:
    """The follow-up task one assignment gets (the global ``task:``, or a rule's over it)."""

    subject: Template
    body: Template
    due: timedelta
    clock: SlaClock
    priority: TaskPriority
    type: TaskType
    enabled: bool = True


@dataclass(frozen=True)
class RuleTask:
    """A rule's ``task:``: only the keys it sets, to lay over the inherited settings."""

    subject: Template | None = None
    body: Template | None = None
    due: timedelta | None = None
    clock: SlaClock | None = None
    priority: TaskPriority | None = None
    type: TaskType | None = None
    enabled: bool | None = None

    def over(self, base: TaskSettings) -> TaskSettings:
        """``base`` with this rule's keys laid over it."""
        return TaskSettings(
            subject=self.subject if self.subject is not None else base.subject,
            body=self.body if self.body is not None else base.body,
            due=self.due if self.due is not None else base.due,
            clock=self.clock or base.clock,
            priority=self.priority or base.priority,
            type=self.type or base.type,
            enabled=self.enabled if self.enabled is not None else base.enabled,
        )


DEFAULT_TASK = TaskSettings(
    subject=parse_template(DEFAULT_SUBJECT, "task.subject"),
    body=(),
    due=timedelta(hours=1),
    clock="working_hours",
    priority="normal",
    type="todo",
)


def template_values(lead: Lead, decision: Decision, rep: Rep | None) -> dict[str, Any]:
    """What placeholders read: the lead's fields, ``raw.<property>``, and the decision's."""
    values: dict[str, Any] = {name: getattr(lead, name) for name in LEAD_FIELDS}
    values.update({f"raw.{key}": value for key, value in lead.raw.items()})
    values.update(
        rule=decision.rule,
        rep=decision.rep_id,
        rep_name=rep.name if rep else None,
        rep_email=rep.email if rep else None,
        pool=decision.pool,
        reason=decision.reason,
    )
    return values
