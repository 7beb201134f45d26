"""Placeholder while notifications are being written (issue 5)."""

from __future__ import annotations

from collections.abc import Sequence

from workflows.config import Config
from workflows.delivery import Delivery


class Notifier:
    """Sends outgoing webhooks about assignments without blocking the caller."""

    @classmethod
    def from_config(cls, config: Config) -> Notifier:
        return cls()

    def deliveries(self, event: str, deliveries: Sequence[Delivery]) -> None:
        """Queue notifications for ``event`` (assigned, reassigned, escalated)."""

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout``) and stop."""
