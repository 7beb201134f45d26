"""Links to HubSpot records, for the messages leadrelay sends about them."""

from __future__ import annotations

from workflows.config import Config


def contact_link(config: Config, contact_id: str) -> str | None:
    """The contact's page in HubSpot; None unless app.yaml names exactly one portal (with
    several, the contact id alone does not say which portal holds it)."""
    if len(config.hubspot.portal_ids) != 1:
        return None
    portal = config.hubspot.portal_ids[0]
    return f"https://app.hubspot.com/contacts/{portal}/record/0-1/{contact_id}"
