"""The common model every part of leadrelay speaks: Lead, Rep, Decision, AssignmentRecord.

Plain dataclasses with ``to_dict``/``from_dict`` so the store keeps plain data (JSON), never
pickled class instances that a refactor could break.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

from workflows.errors import LeadError

if TYPE_CHECKING:
    from workflows.working_hours import DateRange, WeeklyHours

# The vocabulary of decisions and their life after: each value a record, a request or app.yaml
# may carry, named once here. Text read back from JSON is narrowed with ``one_of``.
# kept: the owner is left as it was; queued: given to a queue (``queues:``), for reps to pick up
Outcome = Literal["assigned", "kept", "unassigned", "queued"]
# A decision's write to the CRM: pending until a delivery claims it; in_progress while another
# delivery holds the claim.
WritebackStatus = Literal["pending", "not_needed", "written", "failed", "in_progress"]
TargetKind = Literal["pool", "rep", "account_owner", "previous_owner", "keep", "queue"]
NotifyEvent = Literal["assigned", "reassigned", "escalated"]
SlaClock = Literal["working_hours", "wall"]  # the owner's own working hours, or wall time
SlaStatus = Literal["open", "escalated", "settled", "superseded"]
# How the SLA of one assignment ended (``settled``/``superseded``: its ``outcome``).
SlaOutcome = Literal[
    "contacted", "manual_override", "converted", "deleted", "disqualified", "rotated",
    "escalated", "cap_reached", "no_rotation", "write_failed", "superseded", "untracked",
    "picked_up",
]  # fmt: skip

OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
# The outcomes that give the lead a new owner to write to the CRM (a rep, or a queue).
OWNER_OUTCOMES: tuple[Outcome, ...] = ("assigned", "queued")
WRITEBACK_STATUSES: tuple[WritebackStatus, ...] = get_args(WritebackStatus)
TARGET_KINDS: tuple[TargetKind, ...] = get_args(TargetKind)
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = get_args(NotifyEvent)
SLA_STATUSES: tuple[SlaStatus, ...] = get_args(SlaStatus)
SLA_OUTCOMES: tuple[SlaOutcome, ...] = get_args(SlaOutcome)

_Choice = TypeVar("_Choice", bound=str)


def one_of(value: object, choices: tuple[_Choice, ...], what: str) -> _Choice:
    """``value`` as one of ``choices`` (a Literal's values); ValueError names it otherwise.

    For plain text from JSON (a store row, a request): the checked value comes back typed.
    """
    for choice in choices:
        if value == choice:
            return choice
    raise ValueError(f"{what}: expected one of {', '.join(choices)}, got {value!r}")


# Epoch milliseconds (as HubSpot sends times) have 11 digits or more; 8 digits is a date.
_EPOCH_MS = re.compile(r"\d{11,}")
NUMERIC_FIELDS = ("employees", "annual_revenue", "score")
TEXT_FIELDS = (
    "id", "crm", "object_type", "email", "domain", "first_name", "last_name", "company",
    "country", "state", "postal_code", "industry", "source", "status", "language", "owner",
    "account_owner",
)  # fmt: skip
LEAD_FIELDS = frozenset(TEXT_FIELDS + NUMERIC_FIELDS + ("created_at",))
# Rules say ``object: deal``, so a lead typed in by hand (``route``, a CSV) may say it too.
FIELD_ALIASES = {"object": "object_type"}
# The kinds of CRM record leadrelay routes (``Lead.object_type``), per CRM; a rule names them
# as ``object: deal``.
HUBSPOT_OBJECTS = ("contact", "company", "deal", "ticket")
SALESFORCE_OBJECTS = ("lead", "contact", "account", "opportunity", "case")
OBJECT_KINDS = tuple(dict.fromkeys(HUBSPOT_OBJECTS + SALESFORCE_OBJECTS))


def _number(name: str, value: Any) -> float | int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise LeadError(name, f"expected a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        # JSON's 1e400 overflows to infinity, which would pass every ">=" rule.
        raise LeadError(name, f"expected a finite number, got {value!r}")
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip().replace(",", "").replace("_", "")
    if text.endswith("+"):  # HubSpot's employee ranges end like "1000+"
        text = text[:-1]
    if "-" in text[1:]:  # a range such as "25-50": its lower bound is what rules compare
        text = text[: text.index("-", 1)]
    try:
        number = float(text)
    except ValueError:
        raise LeadError(name, f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise LeadError(name, f"expected a finite number, got {value!r}")
    return int(number) if number.is_integer() else number


def parse_datetime(name: str, value: Any, default_tz: tzinfo = UTC) -> datetime | None:
    """Read an ISO-8601 time (or epoch milliseconds, as HubSpot sends) as an aware UTC datetime.

    A time without an offset is read in ``default_tz``.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time(0))
    elif isinstance(value, (int, float)) or (isinstance(value, str) and _EPOCH_MS.fullmatch(value)):
        try:
            return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise LeadError(name, f"not a time: {value!r}") from None
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise LeadError(name, f"expected an ISO-8601 time, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=default_tz)
    return moment.astimezone(UTC)


# Kinds whose records are named by their id alone: a CRM's ids either name their object type
# (Salesforce's prefixes) or, in HubSpot, contacts were the only kind before there were others
# (so the names already in a store stay as they are).
_PLAIN_KINDS = frozenset(("", "contact", "lead"))


def record_name(crm: str, lead_id: str, object_type: str = "") -> str:
    """What tells one CRM record from every other: HubSpot numbers each object type on its
    own (contact 42 and deal 42 are two records), so its other kinds carry their kind."""
    if crm == "hubspot" and object_type not in _PLAIN_KINDS:
        return f"{object_type}/{lead_id}"
    return lead_id


@dataclass
class Lead:
    """A record to route from any CRM (a lead, contact, company, deal, ticket, account,
    opportunity or case: ``object_type``), in leadrelay's normalized shape."""

    id: str
    crm: str = "none"
    object_type: str = "lead"
    email: str | None = None
    domain: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    country: str | None = None
    state: str | None = None
    postal_code: str | None = None
    industry: str | None = None
    employees: int | float | None = None
    annual_revenue: int | float | None = None
    score: int | float | None = None
    source: str | None = None
    status: str | None = None
    language: str | None = None
    owner: str | None = None
    account_owner: str | None = None
    created_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    # Why account_owner is empty, when the CRM said (a deleted company): for the decision's
    # reason only, never a field rules compare.
    account_owner_missing: str | None = None

    def __post_init__(self) -> None:
        if self.domain is None and self.email and "@" in self.email:
            self.domain = self.email.rsplit("@", 1)[1].strip().lower() or None

    def value(self, name: str) -> Any:
        """The value a rule compares: a model field, or ``raw.<property>`` from the CRM."""
        if name.startswith("raw."):
            return self.raw.get(name[4:])
        return getattr(self, name)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lead:
        """Build a lead from loose input (JSON, a CSV row): unknown keys go to ``raw``."""
        values: dict[str, Any] = {}
        if not isinstance(data.get("raw") or {}, dict):
            raise LeadError("raw", "expected an object of CRM properties")
        raw = dict(data.get("raw") or {})
        for key, value in data.items():
            if key == "raw":
                continue
            key = FIELD_ALIASES.get(key, key)
            if key not in LEAD_FIELDS:
                raw[key] = value
            elif key in NUMERIC_FIELDS:
                values[key] = _number(key, value)
            elif key == "created_at":
                values[key] = parse_datetime(key, value)
            else:
                values[key] = None if value is None or value == "" else str(value).strip()
        for key, value in raw.items():
            if isinstance(value, float) and not math.isfinite(value):
                # A rule may compare raw.<key> too: refused like the model's numbers.
                raise LeadError(f"raw.{key}", f"expected a finite number, got {value!r}")
        if not values.get("id"):
            raise LeadError("id", "a lead needs an id")
        kind = values.get("object_type")
        if kind is not None and kind.casefold() not in OBJECT_KINDS:
            # Rules refuse an unknown kind at start-up; a lead naming one would match none.
            kinds = ", ".join(OBJECT_KINDS)
            raise LeadError("object_type", f"unknown object kind {kind!r}; expected one of {kinds}")
        return cls(**values, raw=raw)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        data = dataclasses.asdict(self)
        data["created_at"] = self.created_at.isoformat() if self.created_at else None
        return data


@dataclass(frozen=True)
class Rep:
    """A sales rep as app.yaml describes them; ``id`` is the stable key used in logs and rules."""

    id: str
    name: str
    timezone: str
    email: str | None = None
    hubspot_owner_id: str | None = None
    salesforce_user_id: str | None = None
    hours: WeeklyHours | None = None  # None: no working-hours limit
    out_of_office: tuple[DateRange, ...] = ()
    languages: frozenset[str] = frozenset()
    skills: frozenset[str] = frozenset()
    weight: int = 1
    daily_cap: int | None = None
    active: bool = True

    def crm_id(self, crm: str) -> str | None:
        """This rep's owner id in the given CRM (their leadrelay id for leads from no CRM)."""
        ids = {"hubspot": self.hubspot_owner_id, "salesforce": self.salesforce_user_id}
        return ids.get(crm, self.id)


@dataclass
class Decision:
    """Who gets a lead and why: the router's answer, kept whole in the assignment log."""

    lead_id: str
    rep_id: str | None
    outcome: Outcome
    rule: str  # matched path such as "enterprise/enterprise-na", or "fallback"
    reason: str
    strategy: str | None = None
    pool: str | None = None
    owner_crm_id: str | None = None  # the CRM's id for rep_id (or the kept owner, or queue)
    candidates: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    queue: str | None = None  # the ``queues:`` name of a ``queued`` decision

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        """Rebuild a decision read back from JSON; ValueError for an unknown outcome."""
        values = dict(data)
        values["outcome"] = one_of(values.get("outcome"), OUTCOMES, "decision.outcome")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        # By hand: dataclasses.asdict deep-copies recursively, a third of a logged decision's cost.
        data = dict(self.__dict__)
        data["candidates"] = list(self.candidates)
        data["skipped"] = dict(self.skipped)
        if self.queue is None:
            del data["queue"]  # rows of decisions that park nothing stay as they always were
        return data


@dataclass
class AssignmentRecord:
    """One row of the append-only assignment log: a decision plus where and when it was made.

    ``variant`` and ``config_version`` leave room for A/B tests of routing rules and for
    learning from outcomes: every row says which configuration produced it.
    """

    id: int
    decided_at: datetime
    crm: str
    object_type: str
    lead_id: str
    previous_owner: str | None
    new_owner: str | None
    decision: Decision
    source: str  # "api", "hubspot", "salesforce", "sweep", "cli"
    idempotency_key: str | None = None
    lead_email: str | None = None
    lead_domain: str | None = None
    config_version: str | None = None
    variant: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rule(self) -> str:
        return self.decision.rule

    @property
    def reason(self) -> str:
        return self.decision.reason

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        data = dict(self.__dict__)
        data["decided_at"] = self.decided_at.isoformat()
        data["decision"] = self.decision.to_dict()
        data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AssignmentRecord:
        """Rebuild a record read back from the store."""
        values = dict(data)
        values["decided_at"] = datetime.fromisoformat(values["decided_at"])
        values["decision"] = Decision.from_dict(values["decision"])
        return cls(**values)
