"""Outgoing webhooks about assignments, reassignments and escalations: what to announce.

``Notifier.deliveries`` only builds the messages and queues them; one background thread hands
them to ``send`` (the HTTP POST lives in ``adapters/webhook.py``), retrying with exponential
back-off up to each hook's ``max_attempts``. Only decisions that changed the owner notify,
once: a replay notifies only if its write-back happened just now. Failures are logged and
counted in ``stats`` (never silently dropped), and a hook's URL, which for Slack is a secret,
is never logged: only its host. Record links come from ``link``, given by each CRM's adapter.
"""

from __future__ import annotations

import atexit
import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from workflows.config import Config
from workflows.delivery import Delivery
from workflows.webhook_url import url_problem

log = logging.getLogger("leadrelay.notify")

EVENTS = ("assigned", "reassigned", "escalated")
MAX_QUEUED = 10_000  # beyond this, new messages are counted as failed rather than held
MAX_BACKOFF = 300.0
# Told of each change to ``stats`` (the counter's name, by how much): how the edge exports
# them as metrics. Called on the notifier's own thread; must be quick and must not raise.
StatsListener = Callable[[str, int], None]


@dataclass(frozen=True)
class SendResult:
    """What one attempt to post a webhook came to, as the sender saw it.

    ``problem`` is for logs and must never quote the URL (its path can be a secret).
    """

    ok: bool
    problem: str = ""
    retryable: bool = False
    retry_after: float | None = None  # seconds the receiver asked us to wait


Send = Callable[[str, dict[str, Any]], SendResult]
"""Post one JSON body to a webhook URL; never raises for the receiver's or network's faults."""
Link = Callable[[str, str], "str | None"]
"""The lead's page in its CRM, ``link(crm, lead_id)``, or None when unknown."""


def no_link(crm: str, lead_id: str) -> str | None:
    """No CRM links (a notifier built without the CRM adapters)."""
    return None


@dataclass(frozen=True)
class Hook:
    """One resolved ``notify:`` entry."""

    url: str
    format: str  # "json" or "slack"
    events: frozenset[str]
    max_attempts: int

    @property
    def host(self) -> str:
        """What logs may show of the URL (its path can be a secret)."""
        return urlsplit(self.url).hostname or "?"


@dataclass
class _Job:
    hook: Hook
    body: dict[str, Any]
    what: str  # for logs: "assigned event for lead hubspot:123"
    attempt: int = 0


def resolve_hooks(config: Config, environ: Mapping[str, str] | None = None) -> list[Hook]:
    """The hooks of ``config.notify`` whose URL is known (``url_env`` read from the env).

    A URL from the environment that is no http(s) URL leaves its hook off, logged (``check``
    and ``serve`` refuse to start with one: see ``environment_errors``).
    """
    env = os.environ if environ is None else environ
    hooks = []
    for index, spec in enumerate(config.notify):
        # (A value read from a file often ends in a newline.)
        url = (spec.url or env.get(spec.url_env or "", "")).strip()
        if not url:
            log.warning("notify[%d]: $%s is not set; this webhook is off", index, spec.url_env)
            continue
        problem = url_problem(url)
        if problem:
            log.error("notify[%d].url_env: $%s %s; this webhook is off", index, spec.url_env,
                      problem)  # fmt: skip
            continue
        hooks.append(Hook(url, spec.format, frozenset(spec.events), spec.max_attempts))
    return hooks


def environment_errors(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """``notify[i].url_env`` entries whose variable holds no usable URL (the value, a
    secret, is never quoted). An unset variable is not an error: that webhook is off."""
    env = os.environ if environ is None else environ
    errors = []
    for index, spec in enumerate(config.notify):
        url = env.get(spec.url_env, "") if spec.url_env else ""
        problem = url_problem(url) if url else None
        if problem:
            errors.append(f"notify[{index}].url_env: ${spec.url_env} {problem}")
    return errors


def environment_warnings(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """``notify[i].url_env`` entries whose variable is not set: those webhooks are off."""
    env = os.environ if environ is None else environ
    return [
        f"notify[{index}].url_env: ${spec.url_env} is not set; this webhook is off"
        for index, spec in enumerate(config.notify)
        if spec.url_env and not env.get(spec.url_env)
    ]


def changed_owner(delivery: Delivery) -> bool:
    """True when this delivery is the one that gave the lead its new owner.

    A first decision counts once written (or when the CRM sets the owner from our answer); a
    replay counts only when its write-back, failed or pending before, succeeded just now.
    """
    decision = delivery.result.decision
    if decision.outcome != "assigned" or not decision.rep_id:
        return False
    if decision.owner_crm_id is not None and decision.owner_crm_id == delivery.lead.owner:
        return False
    before = (delivery.result.writeback or {}).get("status")
    if delivery.status == "written":
        return before != "written"
    return delivery.status == "not_needed" and not delivery.result.replayed


class Notifier:
    """Sends outgoing webhooks about assignments without blocking the caller."""

    def __init__(
        self,
        hooks: Sequence[Hook] = (),
        config: Config | None = None,
        *,
        send: Send | None = None,
        link: Link = no_link,
        backoff: float = 1.0,
    ) -> None:
        if hooks and send is None:
            raise ValueError("a Notifier with webhooks needs a sender (adapters/webhook.py)")
        self.hooks = list(hooks)
        self.config = config
        self.backoff = backoff
        self._send = send
        self.link = link
        self._stats = {"queued": 0, "sent": 0, "retried": 0, "failed": 0}
        self.stats_listeners: list[StatsListener] = []
        self._heap: list[tuple[float, int, _Job]] = []
        self._seq = itertools.count()
        self._busy = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    @classmethod
    def from_config(
        cls,
        config: Config,
        environ: Mapping[str, str] | None = None,
        *,
        send: Send | None = None,
        link: Link = no_link,
    ) -> Notifier:
        """The notifier of ``config.notify`` (``url_env`` read from ``environ``)."""
        return cls(resolve_hooks(config, environ), config, send=send, link=link)

    @property
    def stats(self) -> dict[str, int]:
        """Counters: queued, sent, retried (attempts repeated), failed (given up or dropped)."""
        with self._cond:
            return {**self._stats, "pending": len(self._heap) + self._busy}

    def deliveries(self, event: str, deliveries: Sequence[Delivery]) -> None:
        """Queue notifications for ``event`` (assigned, reassigned, escalated)."""
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r} (one of {', '.join(EVENTS)})")
        hooks = [hook for hook in self.hooks if event in hook.events]
        if not hooks:
            return
        now = datetime.now(UTC)
        for delivery in deliveries:
            if not changed_owner(delivery):
                continue
            message = self.message(event, delivery, now)
            lead_name = f"{delivery.lead.crm}:{delivery.lead.id}"
            for hook in hooks:
                body = slack_body(message) if hook.format == "slack" else message
                self._queue(_Job(hook, body, f"{event} event for lead {lead_name}"))

    def message(self, event: str, delivery: Delivery, now: datetime) -> dict[str, Any]:
        """The JSON webhook body for one delivery."""
        decision, record, lead = delivery.result.decision, delivery.result.record, delivery.lead
        rep = self.config.reps.get(decision.rep_id or "") if self.config else None
        lead_part: dict[str, Any] = {"id": lead.id, "crm": lead.crm}
        link = self.link(lead.crm, lead.id)
        if link:
            lead_part["link"] = link
        for name in ("email", "company"):
            if getattr(lead, name):
                lead_part[name] = getattr(lead, name)
        when = record.decided_at if record is not None else now
        return {
            "event": event,
            "time": when.astimezone(UTC).isoformat(),
            "lead": lead_part,
            "owner": {
                "rep_id": decision.rep_id,
                "name": rep.name if rep else decision.rep_id,
                "email": rep.email if rep else None,
                "crm_id": decision.owner_crm_id,
            },
            "previous_owner": record.previous_owner if record is not None else lead.owner,
            "rule": decision.rule,
            "reason": decision.reason,
        }

    # -- the worker -----------------------------------------------------------------------
    def _queue(self, job: _Job) -> None:
        with self._cond:
            if self._closed or len(self._heap) >= MAX_QUEUED:
                self._add("failed")
                why = "notifier closed" if self._closed else f"{MAX_QUEUED} already queued"
                log.error("webhook to %s dropped (%s): %s lost", job.hook.host, why, job.what)
                return
            self._add("queued")
            heapq.heappush(self._heap, (time.monotonic(), next(self._seq), job))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="leadrelay-notify", daemon=True
                )
                self._thread.start()
                # A worker that exits normally sends what it can, and says what it could not.
                atexit.register(self.close)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed and not self._heap:
                        return
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    if wait is not None and (wait <= 0 or self._closed):
                        _, _, job = heapq.heappop(self._heap)
                        self._busy += 1
                        break
                    self._cond.wait(wait)
            try:
                self._attempt(job)
            except Exception:  # a bug here must not kill the worker
                log.exception("webhook to %s: unexpected error", job.hook.host)
                self._count("failed")
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _attempt(self, job: _Job) -> None:
        job.attempt += 1
        hook = job.hook
        assert self._send is not None  # hooks without a sender are refused in __init__
        result = self._send(hook.url, job.body)
        if result.ok:
            self._count("sent")
            return
        if not result.retryable or job.attempt >= hook.max_attempts:
            self._count("failed")
            log.error(
                "webhook to %s %s; gave up after %d attempt(s): %s lost",
                hook.host, result.problem, job.attempt, job.what,
            )  # fmt: skip
            return
        delay = _clamped(result.retry_after) or min(
            self.backoff * 2 ** (job.attempt - 1), MAX_BACKOFF
        )
        log.warning("webhook to %s %s; retrying in %.1f s", hook.host, result.problem, delay)
        with self._cond:
            self._add("retried")
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), job))
            self._cond.notify()

    def _count(self, name: str) -> None:
        with self._cond:
            self._add(name)

    def _add(self, name: str, amount: int = 1) -> None:
        # Callers hold self._cond.
        self._stats[name] += amount
        for listener in self.stats_listeners:
            try:
                listener(name, amount)
            except Exception:  # counting must never stop a webhook
                log.exception("a notifier stats listener failed")

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout``, retries no longer waiting) and stop.

        Whatever is still unsent then is counted as failed and logged.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            while (self._heap or self._busy) and time.monotonic() < deadline:
                self._cond.wait(max(deadline - time.monotonic(), 0.0))
            left = len(self._heap)
            self._heap.clear()
            if left:
                self._add("failed", left)
        if left:
            log.error("notifier closed with %d webhook(s) unsent; they are lost", left)


def slack_body(message: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body: one readable line, the lead linked when possible."""
    lead, owner = message["lead"], message["owner"]
    name = _escape(str(lead.get("company") or lead.get("email") or lead["id"]))
    label = f"<{lead['link']}|{name}>" if lead.get("link") else name
    verb = {"assigned": "assigned to", "reassigned": "reassigned to", "escalated": "escalated to"}
    who = _escape(str(owner.get("name") or owner.get("rep_id")))
    text = (
        f"Lead {label} ({lead['crm']}) {verb.get(message['event'], 'for')} *{who}*"
        f" by rule `{_escape(message['rule'])}`: {_escape(message['reason'])}"
    )
    return {"text": text}


def _escape(text: str) -> str:
    # Slack reads <...> as links and mentions: a lead's company name must not become one.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clamped(seconds: float | None) -> float | None:
    # A receiver asking for an hour (or a negative wait) must not stall the queue.
    return min(max(seconds, 0.0), MAX_BACKOFF) if seconds is not None else None
