"""Links to Salesforce records, for the messages leadrelay sends about them."""

from __future__ import annotations

from collections.abc import Mapping

INSTANCE_URL_ENV = "SALESFORCE_INSTANCE_URL"


def lead_link(env: Mapping[str, str], lead_id: str) -> str | None:
    """The Lead's Lightning page; None unless ``$SALESFORCE_INSTANCE_URL`` names the org."""
    instance = env.get(INSTANCE_URL_ENV, "").strip().rstrip("/")
    if not instance:
        return None
    return f"{instance}/lightning/r/Lead/{lead_id}/view"
