"""The shape of app.yaml, checked by pydantic before anything reads it.

Only structure and types live here; cross-references (a pool naming a rep, a rule naming a
pool) and the compiled forms are built in ``config.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _as_text(value: Any) -> Any:
    # YAML reads `hubspot_owner_id: 101` as an int; ids are text everywhere else.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _as_list(value: Any) -> Any:
    # `languages: en` is a common shorthand for a one-item list.
    return [value] if isinstance(value, str) else value


Text = Annotated[str, BeforeValidator(_as_text)]
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
    require: RequireSpec | None = None
    else_: TargetSpec | None = Field(default=None, alias="else")


class RuleSpec(Strict):
    name: Text = Field(min_length=1)
    when: Any = None
    assign: TargetSpec | None = None
    flow: list[RuleSpec] | None = None


class HubSpotSpec(Strict):
    """``hubspot:`` in app.yaml. Secrets never live here: they come from the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    portal_ids: list[Text] = Field(default_factory=list)  # empty: any portal
    api_base: str = "https://api.hubapi.com"  # $HUBSPOT_API_BASE overrides
    write_owner: Literal["api", "output"] = "api"
    # This process's share of the portal's API budget (private apps: 100-250 per 10 s, shared
    # with every other integration): with N gunicorn workers the portal sees up to N times it.
    max_calls_per_10s: int = Field(default=40, ge=1, le=250)


class SalesforceSpec(Strict):
    """``salesforce:`` in app.yaml. Secrets never live here: they come from the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    org_ids: list[Text] = Field(default_factory=list)
    api_version: str = "59.0"
    reassign_user_owned: bool = False  # leads owned by a user (005...) keep their owner


class AppSpec(Strict):
    store: str = "sqlite:///leadrelay.sqlite"
    timezone: str = "UTC"
    reps: list[RepSpec] = Field(min_length=1)
    pools: dict[Text, PoolSpec] = Field(default_factory=dict)
    flow: list[RuleSpec] = Field(default_factory=list)
    fallback: TargetSpec
    hubspot: HubSpotSpec = Field(default_factory=HubSpotSpec)
    salesforce: SalesforceSpec = Field(default_factory=SalesforceSpec)


def error_path(location: tuple[int | str, ...]) -> str:
    """pydantic's error location as an app.yaml path (``flow[1].assign``)."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{'else' if part == 'else_' else part}" if path else str(part)
    return path
