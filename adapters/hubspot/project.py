"""A HubSpot developer-platform project (2025.2) for leadrelay's app, built from app.yaml.

HubSpot's current way to define a custom workflow action is a file in an app's project
(``src/app/workflow-actions/*-hsmeta.json`` beside ``src/app/app-hsmeta.json``), uploaded
with HubSpot's CLI (``hs project upload``). A private app with static auth serves one account:
its client secret signs the action's requests and its token makes leadrelay's API calls.

``project_files`` is pure; ``write_project`` puts the files on disk. The action reuses
``action_definition`` (the older definitions API's body) so both ways stay in step.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from adapters.hubspot.contact import needs_account_owner
from adapters.hubspot.definition import action_definition
from workflows.config import Config, Rule
from workflows.follow_up import tasks_configured

PLATFORM_VERSION = "2025.2"
APP_FILE = "src/app/app-hsmeta.json"
ACTION_FILE = "src/app/workflow-actions/rotate-to-owner-hsmeta.json"
PROJECT_FILE = "hsproject.json"

# HubSpot's base scope: every template of a 2025.2 app lists it first.
BASE_SCOPE = "oauth"
READ_CONTACTS = "crm.objects.contacts.read"
WRITE_CONTACTS = "crm.objects.contacts.write"
READ_COMPANIES = "crm.objects.companies.read"
# Each object type the action is offered on: (read scope, write scope). HubSpot has one scope
# for tickets, read and write alike.
OBJECT_SCOPES = {
    "contact": (READ_CONTACTS, WRITE_CONTACTS),
    "company": (READ_COMPANIES, "crm.objects.companies.write"),
    "deal": ("crm.objects.deals.read", "crm.objects.deals.write"),
    "ticket": ("tickets", "tickets"),
}
READ_OWNERS = "crm.objects.owners.read"
# What HubSpot's spec names for /automation/v4/actions/callbacks/complete (and the batch).
COMPLETE_CALLBACKS = "automation"


def _rules(config: Config) -> Iterator[Rule]:
    rules = list(config.flow.rules)
    while rules:
        rule = rules.pop()
        yield rule
        if rule.flow is not None:
            rules.extend(rule.flow.rules)


def sweeps(config: Config) -> bool:
    """Whether an SLA sweep can run, and so rotate owners through the API in any mode."""
    return (config.sla is not None and config.sla.enabled) or any(
        rule.sla is not None for rule in _rules(config)
    )


def required_scopes(config: Config) -> list[str]:
    """Exactly the scopes leadrelay's calls need with this app.yaml, each with its reason:
    contacts read (the sweep's and the endpoint's reads), owners read (``hubspot owners``,
    ``check``), the read and write scopes of each object type the action is offered on
    (``hubspot.objects``: owner writes in ``api``/``batch``, the sweep, ``reassign``),
    companies read (``account_owner`` rules, unless ``output`` mode, which reads nothing),
    contacts write (``task:``: HubSpot's tasks API asks for it, unless ``output`` mode),
    ``automation`` (``batch`` completes the blocked executions through the callbacks API)."""
    mode = str(config.hubspot.write_owner)
    kinds = config.hubspot.objects
    scopes = {BASE_SCOPE, READ_CONTACTS, READ_OWNERS, *(OBJECT_SCOPES[k][0] for k in kinds)}
    if mode != "output" or sweeps(config):
        scopes.update(OBJECT_SCOPES[kind][1] for kind in kinds)
    if mode != "output" and needs_account_owner(config):
        scopes.add(READ_COMPANIES)
    if mode != "output" and tasks_configured(config):
        scopes.add(WRITE_CONTACTS)  # the tasks API's scope, whatever record a task is on
    if mode == "batch":
        scopes.add(COMPLETE_CALLBACKS)
    return sorted(scopes)


def _uid(name: str) -> str:
    # HubSpot's uids are internal keys: letters, digits, underscores (the templates' form).
    cleaned = "".join(c if c.isascii() and c.isalnum() else "_" for c in name.lower())
    return cleaned.strip("_") or "leadrelay"


def app_component(config: Config, name: str) -> dict[str, Any]:
    """``src/app/app-hsmeta.json``: a private app with static auth and only the scopes needed."""
    return {
        "uid": f"{_uid(name)}_app",
        "type": "app",
        "config": {
            "description": (
                "leadrelay's workflow action: routes records to owners by app.yaml's rules."
            ),
            "name": name,
            "distribution": "private",
            "auth": {
                "type": "static",
                "requiredScopes": required_scopes(config),
                # Static auth takes required scopes only; the keys stay, as in HubSpot's
                # templates, so the file reads the same as one `hs project create` writes.
                "optionalScopes": [],
                "conditionallyRequiredScopes": [],
            },
        },
    }


def action_component(config: Config, url: str, name: str) -> dict[str, Any]:
    """``src/app/workflow-actions/rotate-to-owner-hsmeta.json``: the definitions API's body in
    the project's shape (``isPublished``, ``supportedClients``; no ``functions``)."""
    definition = action_definition(config, url)
    action: dict[str, Any] = {
        "actionUrl": definition["actionUrl"],
        "isPublished": definition["published"],
        "supportedClients": [{"client": "WORKFLOWS"}],
    }
    for key in ("inputFields", "outputFields", "labels", "objectTypes", "objectRequestOptions"):
        action[key] = definition[key]
    return {"uid": f"{_uid(name)}_rotate_to_owner", "type": "workflow-action", "config": action}


def project_files(config: Config, url: str, name: str = "leadrelay") -> dict[str, dict[str, Any]]:
    """Every file of the project, by its path relative to the project's folder."""
    return {
        PROJECT_FILE: {"name": name, "srcDir": "src", "platformVersion": PLATFORM_VERSION},
        APP_FILE: app_component(config, name),
        ACTION_FILE: action_component(config, url, name),
    }


class ProjectDirNotEmpty(Exception):
    """The folder holds files already and overwriting was not asked for."""


def write_project(
    directory: Path, files: dict[str, dict[str, Any]], *, force: bool = False
) -> list[Path]:
    """Write ``files`` under ``directory`` (made when missing); returns the paths written.

    A folder that holds anything is refused unless ``force``: a project folder may hold the
    admin's own components, and `hs project upload` would upload whatever it finds there.
    """
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} is a file, not a folder")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise ProjectDirNotEmpty(f"{directory} is not empty; use --force to overwrite its files")
    written = []
    for relative, content in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
