"""The shape of app.yaml, checked by pydantic before anything reads it.

Only structure and types live here; cross-references (a pool naming a rep, a rule naming a
pool) and the compiled forms are built in ``config.py``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from workflows.model import NOTIFY_EVENTS, NotifyEvent, SlaClock


def _as_text(value: Any) -> Any:
    # YAML reads `hubspot_owner_id: 101` as an int; ids are text everywhere else.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _as_list(value: Any) -> Any:
    # `languages: en` is a common shorthand for a one-item list.
    return [value] if isinstance(value, str) else value


_DURATION = re.compile(r"(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?")


def _as_duration(value: Any) -> Any:
    # "15m", "2h", "1h30m", "1d", "90s"; a bare number is seconds.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip().lower())
        if match and any(match.groups()):
            days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
            return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        raise ValueError(f"expected a duration like 15m, 2h, 1h30m or 1d, got {value!r}")
    return value


Text = Annotated[str, BeforeValidator(_as_text)]


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


Duration = Annotated[timedelta, BeforeValidator(_as_duration), AfterValidator(_positive)]
TextList = Annotated[list[Text], BeforeValidator(_as_list)]


class Strict(BaseModel):
    """A section of app.yaml: unknown keys are errors, so a typo never goes unnoticed."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RepSpec(Strict):
    id: Text = Field(min_length=1)
    name: str | None = None
    email: str | None = None
    hubspot_owner_id: Text | None = None
    salesforce_user_id: Text | None = None
    timezone: str | None = None
    hours: str | None = None
    out_of_office: list[Any] = Field(default_factory=list)
    languages: TextList = Field(default_factory=list)
    skills: TextList = Field(default_factory=list)
    weight: int = Field(default=1, ge=1)
    daily_cap: int | None = Field(default=None, ge=0)
    active: bool = True


class PoolSpec(Strict):
    members: list[Text] = Field(min_length=1)
    strategy: str = "round_robin"
    absence: str = "forfeit"
    max_credit: int = Field(default=3, ge=0)


class RequireSpec(Strict):
    languages: TextList = Field(default_factory=list)
    skills: TextList = Field(default_factory=list)


class TargetSpec(Strict):
    pool: Text | None = None
    rep: Text | None = None
    account_owner: bool | None = None
    previous_owner: bool | None = None
    keep: bool | None = None
    queue: Text | None = None
    require: RequireSpec | None = None
    else_: TargetSpec | None = Field(default=None, alias="else")


class QueueSpec(Strict):
    """One entry of ``queues:``: where a ``{queue: <name>}`` target parks a lead in each CRM."""

    salesforce: Text | None = None  # the queue's id (00G..., 15 or 18 characters)
    hubspot_owner_id: Text | None = None  # HubSpot has no queues: an owner that holds them
    first_touch: Duration | None = None  # how long reps have to pick a lead up from the queue


class RuleSlaSpec(Strict):
    """A rule's own ``sla:``: each key given overrides the global (or parent rule's) value."""

    first_touch: Duration | None = None
    clock: SlaClock | None = None
    max_reassignments: int | None = Field(default=None, ge=0)
    escalate_to: TargetSpec | None = None
    enabled: bool | None = None  # false: leads of this rule are never swept


class SlaSpec(Strict):
    """``sla:`` in app.yaml: how long an owner has to make first contact, and what then."""

    first_touch: Duration = timedelta(minutes=15)
    clock: SlaClock = "working_hours"
    max_reassignments: int = Field(default=2, ge=0)
    escalate_to: TargetSpec | None = None
    sweep_every: Duration = timedelta(minutes=2)
    enabled: bool = True


def _task_switch(value: Any) -> Any:
    # `task: false` under a rule switches the inherited task off; `task: true` keeps it.
    if isinstance(value, bool):
        return {"enabled": value}
    return value


class RuleTaskSpec(Strict):
    """A rule's own ``task:``: each key given overrides the global (or parent rule's) value."""

    subject: str | None = Field(default=None, min_length=1)
    body: str | None = None
    due: Duration | None = None
    clock: SlaClock | None = None
    priority: Literal["low", "normal", "high"] | None = None
    type: Literal["call", "email", "todo"] | None = None
    enabled: bool | None = None  # false: assignments by this rule get no task


class TaskSpec(Strict):
    """``task:`` in app.yaml: the follow-up task the new owner gets once the owner is written."""

    subject: str | None = Field(default=None, min_length=1)  # None: a default subject
    body: str = ""
    due: Duration = timedelta(hours=1)
    clock: SlaClock = "working_hours"
    priority: Literal["low", "normal", "high"] = "normal"
    type: Literal["call", "email", "todo"] = "todo"
    enabled: bool = True


class NotifySpec(Strict):
    """One outgoing webhook of ``notify:``; a Slack incoming-webhook URL is a secret, so it
    comes from the environment variable named by ``url_env``."""

    url: str | None = None
    url_env: str | None = None
    format: Literal["json", "slack"] = "json"
    events: list[NotifyEvent] = Field(default_factory=lambda: list(NOTIFY_EVENTS))
    max_attempts: int = Field(default=5, ge=1, le=20)


class RuleSpec(Strict):
    name: Text = Field(min_length=1)
    when: Any = None
    assign: TargetSpec | None = None
    flow: list[RuleSpec] | None = None
    sla: RuleSlaSpec | None = None
    task: Annotated[RuleTaskSpec | None, BeforeValidator(_task_switch)] = None


def _at_most(limit: timedelta) -> Any:
    def check(value: timedelta) -> timedelta:
        if value > limit:
            raise ValueError(f"must be at most {limit.total_seconds():g} s")
        return value

    return AfterValidator(check)


class HubSpotBatchSpec(Strict):
    """``hubspot.batch:`` how ``write_owner: batch`` writes owners and completes executions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Flush when 100 are waiting, or this long after the oldest one waits, whichever first.
    flush_every: Annotated[Duration, _at_most(timedelta(minutes=1))] = timedelta(seconds=1)
    # How long HubSpot holds a blocked execution (hs_expiration_duration) before it gives up
    # on our callback; the flusher must complete it before then.
    expiration: Annotated[Duration, _at_most(timedelta(days=30))] = timedelta(days=1)


HubSpotObjectKind = Literal["contact", "company", "deal", "ticket"]


def _each_once(values: list[str]) -> list[str]:
    # HubSpot would be sent the object type twice in the action's objectTypes.
    repeated = sorted({value for value in values if values.count(value) > 1})
    if repeated:
        raise ValueError(f"{', '.join(repeated)} listed more than once")
    return values


class HubSpotSpec(Strict):
    """``hubspot:`` in app.yaml. Secrets never live here: they come from the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    portal_ids: list[Text] = Field(default_factory=list)  # empty: any portal
    api_base: str = "https://api.hubapi.com"  # $HUBSPOT_API_BASE overrides
    # api: one API call per contact, in the request; output: no call, the workflow's "Edit
    # record" step sets it; batch: answer BLOCK at once, write and complete in batches later.
    write_owner: Literal["api", "output", "batch"] = "api"
    # How long a request may wait for the API budget before it answers 429 with Retry-After
    # (HubSpot retries it): every answer stays well inside HubSpot's patience.
    budget_wait: Annotated[Duration, _at_most(timedelta(seconds=3))] = timedelta(seconds=2)
    batch: HubSpotBatchSpec = Field(default_factory=HubSpotBatchSpec)
    # This process's share of the portal's API budget (private apps: 100-250 per 10 s, shared
    # with every other integration): with N gunicorn workers the portal sees up to N times it.
    max_calls_per_10s: int = Field(default=40, ge=1, le=250)
    # What "contacted" means for the SLA sweep: any of these timestamps after the assignment,
    # or a lead status outside `uncontacted_statuses`.
    contacted_properties: list[str] = Field(
        default_factory=lambda: ["notes_last_contacted", "hs_last_sales_activity_timestamp"]
    )
    uncontacted_statuses: list[str] = Field(default_factory=lambda: ["", "NEW"])
    disqualified_statuses: list[str] = Field(default_factory=lambda: ["UNQUALIFIED"])
    # Lifecycle stages (internal names) that count as converted: past "lead", sales already
    # works the contact as a deal or a customer.
    converted_stages: list[str] = Field(
        default_factory=lambda: ["opportunity", "customer", "evangelist"]
    )
    # The object types the workflow action is offered on (its definition's objectTypes).
    objects: Annotated[list[HubSpotObjectKind], AfterValidator(_each_once)] = Field(
        default_factory=lambda: list(get_args(HubSpotObjectKind)), min_length=1
    )


class SalesforceSpec(Strict):
    """``salesforce:`` in app.yaml. Secrets never live here: they come from the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    org_ids: list[Text] = Field(default_factory=list)
    api_version: str = "59.0"
    reassign_user_owned: bool = False  # leads owned by a user (005...) keep their owner
    # What "contacted" means for the SLA sweep (Status values differ per org: read yours from
    # LeadStatus): Status outside `uncontacted_statuses`, or LastActivityDate after assignment.
    uncontacted_statuses: list[str] = Field(default_factory=lambda: ["Open - Not Contacted"])
    disqualified_statuses: list[str] = Field(default_factory=lambda: ["Closed - Not Converted"])
    # A Case counts as contacted once its Status leaves these (Cases have no LastActivityDate).
    case_uncontacted_statuses: list[str] = Field(default_factory=lambda: ["New"])


class OutcomesSpec(Strict):
    """``outcomes:`` in app.yaml: how long after its decision a lead's CRM record is watched
    for contact, conversion or disqualification, and how often it is read again."""

    watch_for: Duration = timedelta(days=30)
    every: Duration = timedelta(minutes=15)
    enabled: bool = True


class AppSpec(Strict):
    store: str = "sqlite:///leadrelay.sqlite"
    timezone: str = "UTC"
    reps: list[RepSpec] = Field(min_length=1)
    pools: dict[Text, PoolSpec] = Field(default_factory=dict)
    queues: dict[Text, QueueSpec] = Field(default_factory=dict)
    flow: list[RuleSpec] = Field(default_factory=list)
    fallback: TargetSpec
    hubspot: HubSpotSpec = Field(default_factory=HubSpotSpec)
    salesforce: SalesforceSpec = Field(default_factory=SalesforceSpec)
    sla: SlaSpec | None = None
    task: Annotated[TaskSpec | None, BeforeValidator(_task_switch)] = None
    notify: list[NotifySpec] = Field(default_factory=list)
    outcomes: OutcomesSpec | None = None


def error_path(location: tuple[int | str, ...]) -> str:
    """pydantic's error location as an app.yaml path (``flow[1].assign``)."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{'else' if part == 'else_' else part}" if path else str(part)
    return path
