"""Keep secrets out of every log line of a served leadrelay.

Salesforce can only authenticate an Outbound Message by a secret in its URL (``?token=``), and
gunicorn's access log writes each request line; gunicorn's error log quotes the request line
of a malformed request, and a client library's error may quote a URL or a header. So one
filter, on every handler that writes our logs, takes out of the finished line (and of any
traceback):

- the value of every secret leadrelay reads from the environment (also URL-encoded);
- the value of any query parameter whose name says it is a secret (``token``, ``key``, ...),
  configured or not: a caller's wrong token may be one of another system's;
- the credentials after ``Bearer`` or ``Basic``.

gunicorn installs it through its own ``logger_class`` setting (see ``serve.py``).
"""

from __future__ import annotations

import logging
import os
import re
import weakref
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

from gunicorn import glogging
from gunicorn.config import Config as GunicornConfig

from adapters.hubspot.contact import ACCESS_TOKEN_ENV, CLIENT_SECRET_ENV, DEVELOPER_KEY_ENV
from connector.salesforce_flow import TOKEN_ENV as FLOW_TOKEN_ENV
from connector.salesforce_outbound import TOKEN_ENV as OUTBOUND_TOKEN_ENV

REDACTED = "[redacted]"
# The handlers leadrelay put on the root logger: a reload takes them off again, and a second
# call adds none twice.
_ON_ROOT: weakref.WeakSet[logging.Handler] = weakref.WeakSet()
SECRET_ENVS = (
    OUTBOUND_TOKEN_ENV,
    FLOW_TOKEN_ENV,
    CLIENT_SECRET_ENV,
    ACCESS_TOKEN_ENV,
    DEVELOPER_KEY_ENV,
    "SALESFORCE_ACCESS_TOKEN",
    "SALESFORCE_CONSUMER_KEY",
    "SALESFORCE_CONSUMER_SECRET",
    "SALESFORCE_PASSWORD",
    "SALESFORCE_SECURITY_TOKEN",
    "LEADRELAY_OPS_TOKEN",
    "LEADRELAY_OPS_SECRET",
)
# Shorter values would take ordinary words out of every line; no real secret is this short.
MIN_SECRET_LENGTH = 4

_SECRET_NAME = r"[^=&#\s\"']*(?:token|secret|passw|pwd|key|sig|auth|session|code)[^=&#\s\"']*"
_QUERY_SECRET = re.compile(rf"(?i)([?&;]{_SECRET_NAME}=)[^&#\s\"']+")
_CREDENTIALS = re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s\"',;]+")
# A password inside a URL (``postgresql://user:password@host/db``): a store URL from
# LEADRELAY_STORE or app.yaml may carry one, and a driver's error message may quote the URL.
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(@)")


class Redactor:
    """Takes secrets out of text: the given values, secret query parameters, credentials."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = {
            form
            for secret in secrets
            if len(secret) >= MIN_SECRET_LENGTH
            for form in (secret, quote(secret, safe=""), quote(secret), quote_plus(secret))
        }
        # Longest first, so a secret that contains another is taken out whole.
        ordered = sorted(values, key=len, reverse=True)
        self._values = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    @classmethod
    def from_environment(
        cls, names: Iterable[str], environ: Mapping[str, str] | None = None
    ) -> Redactor:
        env = os.environ if environ is None else environ
        return cls(env.get(name, "") for name in names)

    def __call__(self, text: str) -> str:
        if self._values is not None:
            text = self._values.sub(REDACTED, text)
        text = _QUERY_SECRET.sub(rf"\g<1>{REDACTED}", text)
        text = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}\g<2>", text)
        return _CREDENTIALS.sub(rf"\g<1>\g<2>{REDACTED}", text)


class RedactingFilter(logging.Filter):
    """A handler filter: the record leaves with its message and traceback redacted."""

    _formatter = logging.Formatter()

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class RedactingLogger(glogging.Logger):
    """gunicorn's logger, every line redacted; our own loggers write through it too.

    ``secret_envs`` names the variables whose values are secrets (``serve`` adds the
    ``url_env`` of each webhook).
    """

    secret_envs: tuple[str, ...] = SECRET_ENVS

    def setup(self, cfg: GunicornConfig) -> None:
        super().setup(cfg)
        redacting = RedactingFilter(Redactor.from_environment(self.secret_envs))
        # gunicorn made these handlers afresh (a reload replaces them): no filter stacks up.
        handlers = [*self.error_log.handlers, *self.access_log.handlers]
        for handler in handlers:
            handler.addFilter(redacting)
        # leadrelay's loggers, Flask's, werkzeug's and the CRM clients' reach the root logger:
        # there they go to gunicorn's error log, through the same filter, at its level for ours.
        root = logging.getLogger()
        for handler in list(root.handlers):
            if handler in _ON_ROOT:
                root.removeHandler(handler)
        for handler in self.error_log.handlers:
            _ON_ROOT.add(handler)
            root.addHandler(handler)
        logging.getLogger("leadrelay").setLevel(self.loglevel)


def redact_command_line_logs(extra_secret_envs: Iterable[str] = ()) -> None:
    """For the other commands (sweep, reassign, ...): what Python would print of WARNING and
    above anyway, on stderr, but redacted like ``serve``'s logs."""
    handler = logging.StreamHandler()
    handler.addFilter(
        RedactingFilter(Redactor.from_environment([*SECRET_ENVS, *extra_secret_envs]))
    )
    root = logging.getLogger()
    if not any(h in _ON_ROOT for h in root.handlers):
        _ON_ROOT.add(handler)
        root.addHandler(handler)


def redacting_logger(extra_secret_envs: Iterable[str] = ()) -> type[RedactingLogger]:
    """A ``logger_class`` for gunicorn that also treats ``extra_secret_envs`` as secrets."""
    names = tuple(dict.fromkeys([*SECRET_ENVS, *extra_secret_envs]))
    return type("LeadRelayLogger", (RedactingLogger,), {"secret_envs": names})
