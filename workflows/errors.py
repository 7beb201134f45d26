"""The exceptions leadrelay raises, in one small hierarchy."""

from __future__ import annotations


class LeadRelayError(Exception):
    """Base class of every error leadrelay raises on purpose."""


class ConfigError(LeadRelayError):
    """app.yaml is invalid; ``path`` names the offending key (``flow[1].assign.pool``)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class ConfigErrors(LeadRelayError):
    """Every problem found in one app.yaml, so an admin can fix them all in one pass."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class LeadError(LeadRelayError):
    """A lead payload is unusable; ``field`` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class StoreError(LeadRelayError):
    """The store could not be opened or written."""


class CrmError(LeadRelayError):
    """A CRM API call failed. ``retryable`` says whether trying again later can succeed."""

    def __init__(
        self, message: str, *, retryable: bool, status: int | None = None, setup: bool = False
    ) -> None:
        self.retryable = retryable
        self.status = status
        self.setup = setup  # leadrelay's own credentials or configuration are at fault
        super().__init__(message)

    @property
    def is_final(self) -> bool:
        """True when no redelivery can help: the record itself was refused.

        Credentials, permissions and configuration are not final: once an admin fixes them,
        the CRM's redelivery succeeds.
        """
        return not self.retryable and not self.setup and self.status not in (401, 403)


class SignatureError(LeadRelayError):
    """An inbound request is not provably from the CRM it claims to come from."""
