"""The custom workflow action's definition, built from app.yaml, and registering it.

``action_definition`` is pure (``--dry-run`` prints it); ``register_action`` creates the
definition, or updates the one this app already has with the same action name.
"""

from __future__ import annotations

import json
import time
from typing import Any

import hubspot
from urllib3.util import Retry

from adapters.hubspot.contact import object_properties
from adapters.hubspot.limits import RateLimiter, RetryPolicy, call
from adapters.hubspot.objects import hubspot_object
from adapters.hubspot.payload import ENTRY_FIELD, OUTCOMES, OVERWRITE_FIELD, WHOLE_FLOW
from workflows.config import Config
from workflows.errors import CrmError

ACTION_NAME = "Rotate to owner via leadrelay"


def _option(value: str, label: str, order: int) -> dict[str, Any]:
    return {"value": value, "label": label, "displayOrder": order}


def _output(
    name: str, kind: str = "string", options: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    definition: dict[str, Any] = {"name": name, "type": kind}
    if options is not None:
        definition["options"] = options
    return {"typeDefinition": definition}


def action_properties(config: Config) -> list[str]:
    """The properties the rules read from each object type the action is offered on, sorted."""
    kinds = config.hubspot.objects
    return sorted({prop for kind in kinds for prop in object_properties(config, kind)})


def action_definition(config: Config, url: str) -> dict[str, Any]:
    """The action definition JSON (automation v4) for ``config``, executed at ``url``."""
    entries = [_option(WHOLE_FLOW, "The whole flow (default)", 0)]
    for entry in config.entry_points():
        kind, _, name = entry.partition(":")
        entries.append(_option(entry, f"{kind.title()}: {name}", len(entries)))
    outcomes = [_option(value, value, i) for i, value in enumerate(OUTCOMES)]
    return {
        "actionUrl": url,
        "published": True,
        "objectTypes": [hubspot_object(kind).type_id for kind in config.hubspot.objects],
        # HubSpot sends these with every execution, so routing usually needs no API read:
        # one list for every object type (each record sends those it has).
        "objectRequestOptions": {"properties": action_properties(config)},
        "inputFields": [
            {
                "typeDefinition": {
                    "name": ENTRY_FIELD,
                    "type": "enumeration",
                    "fieldType": "select",
                    "options": entries,
                },
                "supportedValueTypes": ["STATIC_VALUE"],
                "isRequired": False,
            },
            {
                "typeDefinition": {
                    "name": OVERWRITE_FIELD,
                    "type": "bool",
                    "fieldType": "booleancheckbox",
                    "options": [],
                },
                "supportedValueTypes": ["STATIC_VALUE"],
                "isRequired": False,
            },
        ],
        "outputFields": [
            _output("owner_id"),
            _output("owner_email"),
            _output("rule"),
            _output("reason"),
            _output("outcome", "enumeration", outcomes),
            _output("task_id"),
        ],
        "labels": {
            "en": {
                "actionName": ACTION_NAME,
                "appDisplayName": "leadrelay",
                "actionDescription": (
                    "Choose the record's owner with leadrelay's rules (rotation, working "
                    "hours, caps) and say why."
                ),
                "actionCardContent": "Route with {{" + ENTRY_FIELD + "}}",
                "inputFieldLabels": {
                    ENTRY_FIELD: "Route with",
                    OVERWRITE_FIELD: "Replace an existing owner",
                },
                "outputFieldLabels": {
                    "owner_id": "Owner id",
                    "owner_email": "Owner email",
                    "rule": "Matched rule",
                    "reason": "Reason",
                    "outcome": "Outcome",
                    "task_id": "Follow-up task id",
                },
            }
        },
        "functions": [],
    }


def register_action(
    app_id: int, definition: dict[str, Any], *, developer_key: str, host: str
) -> tuple[str, str]:
    """Create or update this app's leadrelay action; returns ("created"|"updated", its id)."""
    client = hubspot.Client.create(api_key=developer_key, host=host, retry=Retry(0))
    api = client.automation.actions.definitions_api
    limiter, policy = RateLimiter(), RetryPolicy(budget=30.0)

    def run(do: Any, what: str) -> dict[str, Any]:
        # Raw JSON, not the generated models: they reject answers missing optional-looking keys.
        answer = call(
            lambda timeout: do(_preload_content=False, _request_timeout=timeout),
            what,
            limiter=limiter,
            deadline=time.monotonic() + policy.budget,
            policy=policy,
        )
        data = json.loads(answer.data or b"{}")
        if not isinstance(data, dict):
            raise CrmError(
                f"{what}: HubSpot answered {type(data).__name__}, not an object", retryable=False
            )
        return data

    existing = None
    after: str | None = None
    while existing is None:
        extra = {"after": after} if after else {}
        page = run(
            lambda extra=extra, **kw: api.get_page(app_id, limit=100, **extra, **kw),
            "listing actions",
        )
        for found in page.get("results", []):
            if (found.get("labels", {}).get("en") or {}).get("actionName") == ACTION_NAME:
                existing = found
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            break
    if existing is None:
        created = run(lambda **kw: api.create(app_id, definition, **kw), "creating the action")
        return "created", str(created.get("id", ""))
    patch = {key: value for key, value in definition.items() if key != "functions"}
    run(lambda **kw: api.update(existing["id"], app_id, patch, **kw), "updating the action")
    return "updated", str(existing["id"])
