"""Links to HubSpot records, for the messages leadrelay sends about them."""

from __future__ import annotations

from workflows.config import Config

HUBSPOT_APP = "https://app.hubspot.com"
APP_BASE_ENV = "HUBSPOT_APP_BASE"  # another web app serving the records (the demo's stand-in)


def contact_link(config: Config, contact_id: str, app_base: str | None = None) -> str | None:
    """The contact's page in HubSpot (or at ``app_base``); None unless app.yaml names exactly
    one portal (with several, the contact id alone does not say which portal holds it)."""
    if len(config.hubspot.portal_ids) != 1:
        return None
    portal = config.hubspot.portal_ids[0]
    base = (app_base or HUBSPOT_APP).rstrip("/")
    return f"{base}/contacts/{portal}/record/0-1/{contact_id}"
