"""What `leadrelay check` says about Salesforce (offline: nothing is called)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from adapters.salesforce.auth import ENV_MODES, auth_mode, missing_credentials
from adapters.salesforce.ids import is_id, is_user_id
from workflows.config import Config


# -- leadrelay check -------------------------------------------------------------------------
def check_warnings(config: Config, env: Mapping[str, str] | None = None) -> list[str]:
    """Problems `leadrelay check` reports for Salesforce (offline: nothing is called)."""
    env = os.environ if env is None else env
    spec = config.salesforce
    reps_with_ids = [rep for rep in config.reps.values() if rep.salesforce_user_id]
    if not spec.org_ids and not reps_with_ids:
        return []  # Salesforce is not in use
    warnings: list[str] = []
    if not spec.org_ids:
        warnings.append(
            "salesforce.org_ids is empty: POST /salesforce/outbound refuses every message"
        )
    for org_id in spec.org_ids:
        if not is_id(org_id, "00D"):
            warnings.append(f"salesforce.org_ids: {org_id!r} is not an organization id (00D...)")
    for rep in config.reps.values():
        if rep.active and not rep.salesforce_user_id:
            warnings.append(
                f"rep {rep.id} has no salesforce_user_id: owners chosen for Salesforce leads"
                " cannot be written back"
            )
        elif is_id(rep.salesforce_user_id, "00G"):
            warnings.append(
                f"rep {rep.id}: salesforce_user_id {rep.salesforce_user_id} is a queue, not a"
                " user: name it under queues: (salesforce: 00G...) and assign {queue: <name>}"
            )
        elif rep.salesforce_user_id and not is_user_id(rep.salesforce_user_id):
            warnings.append(f"rep {rep.id}: salesforce_user_id should start with 005 (a user)")
    mode = auth_mode(env)
    if mode is None:
        warnings.append(
            "no Salesforce credentials: set "
            + "; or ".join(" + ".join(m.required) for m in ENV_MODES[:3])
            + f" (missing: {', '.join(missing_credentials(env))})"
        )
    elif mode.legacy:
        warnings.append(
            "signing in to Salesforce with username + password + security token: Salesforce is"
            " retiring this; use the JWT bearer or client-credentials flow"
        )
    key_file = env.get("SALESFORCE_PRIVATE_KEY_FILE")
    if mode is not None and mode.name == "JWT bearer" and key_file and not os.path.isfile(key_file):
        warnings.append(f"SALESFORCE_PRIVATE_KEY_FILE {key_file} is not a readable file")
    if not env.get("LEADRELAY_OUTBOUND_TOKEN"):
        warnings.append(
            "LEADRELAY_OUTBOUND_TOKEN is not set: /salesforce/outbound is protected by the org id"
            " alone"
        )
    if not env.get("LEADRELAY_FLOW_TOKEN"):
        warnings.append(
            "LEADRELAY_FLOW_TOKEN is not set: POST /salesforce/route refuses every call"
        )
    return warnings
