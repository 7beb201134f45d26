"""Placeholder while the adapter is being written."""

from workflows.config import Config


def check_warnings(config: Config) -> list[str]:
    """Problems `leadrelay check` reports for this CRM (missing credentials, unknown owners)."""
    return []
