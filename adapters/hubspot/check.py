"""What `leadrelay check` and the action endpoint say about HubSpot: missing credentials, a
pause after a 429, and reps whose owner ids HubSpot does not know (asked only with a token)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from adapters.hubspot.client import HubSpotApi, api_base, pause_warnings
from adapters.hubspot.contact import ACCESS_TOKEN_ENV, CLIENT_SECRET_ENV, needs_account_owner
from adapters.hubspot.flush_state import outbox_warnings, stop_warnings
from adapters.hubspot.objects import no_signal_reason
from adapters.hubspot.project import COMPLETE_CALLBACKS, sweeps
from workflows.config import Config
from workflows.errors import CrmError


def uses_hubspot(config: Config, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this deployment routes HubSpot contacts at all (so warnings are worth showing)."""
    return (
        any(rep.hubspot_owner_id for rep in config.reps.values())
        or bool(config.hubspot.portal_ids)
        or any(environ.get(name) for name in (CLIENT_SECRET_ENV, ACCESS_TOKEN_ENV))
    )


def missing_credentials(config: Config, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Environment variables the action endpoint needs but cannot find, each with why."""
    missing = []
    if not environ.get(CLIENT_SECRET_ENV):
        missing.append(
            f"{CLIENT_SECRET_ENV} is not set: /hubspot/action cannot verify HubSpot's "
            "signatures and answers 503 until it is"
        )
    mode = config.hubspot.write_owner
    if mode == "api" and not environ.get(ACCESS_TOKEN_ENV):
        missing.append(
            f"{ACCESS_TOKEN_ENV} is not set: with hubspot.write_owner: {mode}, /hubspot/action "
            "answers 503 until it is"
        )
    if mode == "batch" and not environ.get(ACCESS_TOKEN_ENV):
        missing.append(
            f"{ACCESS_TOKEN_ENV} is not set: with hubspot.write_owner: batch, /hubspot/action "
            "answers 503 until it is, and nothing can write owners or complete the blocked "
            "executions (HubSpot's callbacks API); set it to the static access token of the app "
            f"that defines the action, with the {COMPLETE_CALLBACKS} scope (`leadrelay hubspot "
            "project` writes that app)"
        )
    return missing


def token_notes(config: Config, environ: Mapping[str, str] = os.environ) -> list[str]:
    """What the token must be able to do in this mode, which no API call here can prove."""
    if str(config.hubspot.write_owner) != "batch" or not environ.get(ACCESS_TOKEN_ENV):
        return []
    # HubSpot's spec names only an OAuth-style app token with this scope for the callbacks
    # API, and documents no way for one app's token to complete another app's executions.
    return [
        f"hubspot.write_owner is batch: {ACCESS_TOKEN_ENV} must be the token of the app that "
        f"defines the action (its static token, or its OAuth install token) with the "
        f"{COMPLETE_CALLBACKS} scope; HubSpot documents no other token for completing its "
        "executions (see docs/hubspot.md)"
    ]


def unjudged_objects(config: Config) -> list[str]:
    """The object types the action is offered on whose first touch the SLA sweep cannot
    judge (tickets), when a sweep runs: said at once rather than found in the sweep's log."""
    if not sweeps(config):
        return []
    warnings = []
    for kind in config.hubspot.objects:
        reason = no_signal_reason(kind)
        if reason is not None:
            warnings.append(
                f"hubspot.objects offers the action on {kind} records, but {reason}: the SLA "
                "sweep settles them as untracked and never rotates them"
            )
    return warnings


def check_warnings(config: Config) -> list[str]:
    """Problems ``leadrelay check`` reports: missing credentials, owners HubSpot does not know."""
    if not uses_hubspot(config):
        return []
    warnings = [*missing_credentials(config), *token_notes(config), *pause_warnings(config)]
    warnings.extend(unjudged_objects(config))
    warnings.extend(stop_warnings(config.store_url))
    warnings.extend(outbox_warnings(config))
    token = os.environ.get(ACCESS_TOKEN_ENV)
    if config.hubspot.write_owner == "output" and needs_account_owner(config):
        warnings.append(
            "hubspot.write_owner is output (no API calls), so rules on account_owner never "
            "see a company owner for HubSpot contacts"
        )
    if not token:
        if config.hubspot.write_owner == "output":
            warnings.append(f"{ACCESS_TOKEN_ENV} is not set: reps' owner ids were not checked")
        return warnings
    try:
        owners = HubSpotApi(access_token=token, host=api_base(config)).owners()
    except CrmError as exc:
        return [*warnings, f"could not list HubSpot owners to check reps: {exc}"]
    by_id = {owner.id: owner for owner in owners}
    by_user_id = {owner.user_id: owner for owner in owners if owner.user_id}
    for rep in config.reps.values():
        owner_id = rep.hubspot_owner_id
        if not owner_id or owner_id in by_id:
            continue
        hint = ""
        if owner_id in by_user_id:  # a common slip: the user id is not the owner id
            hint = f" (that is the user id of owner {by_user_id[owner_id].id}; use the owner id)"
        warnings.append(f"rep {rep.id}: HubSpot has no owner with id {owner_id}{hint}")
    return warnings
