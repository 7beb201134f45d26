"""Whether HubSpot's batch flusher stopped on refused credentials, kept where every process
(and ``leadrelay check``) can read it: a value the store shares.

A 401 (or a 403: the token lacks a scope) will not pass by retrying, so the flusher stops
and says why here; the executions wait in the outbox until the token is fixed and leadrelay
restarted. A flush that gets through clears it.
"""

from __future__ import annotations

import json
from datetime import datetime

from adapters.hubspot.contact import ACCESS_TOKEN_ENV
from workflows.config import Config
from workflows.errors import LeadRelayError
from workflows.store import SharedValues
from workflows.store_registry import open_shared_values, open_store

STOPPED = "hubspot-flusher.stopped"


def record_stop(store: SharedValues, reason: str, at: datetime) -> None:
    """Say, for every process, that the flusher stopped at ``at`` and why."""
    with store.shared_value(STOPPED) as value:
        value.write(json.dumps({"reason": reason, "at": at.isoformat()}).encode())


def clear_stop(store: SharedValues) -> None:
    """Forget a stop (a flush got through)."""
    with store.shared_value(STOPPED) as value:
        if value.read():
            value.write(b"")


def read_stop(store: SharedValues) -> dict[str, str] | None:
    """The recorded stop (``reason``, ``at``), None when the flusher is not stopped."""
    with store.shared_value(STOPPED) as value:
        data = value.read()
    if not data:
        return None
    try:
        found = json.loads(data)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def stop_warnings(store_url: str) -> list[str]:
    """What ``leadrelay check`` says about a stopped flusher."""
    try:
        store = open_shared_values(store_url)
    except LeadRelayError:
        return []  # ``check`` says what is wrong with the store URL itself
    try:
        stop = read_stop(store)
    except OSError as exc:
        return [f"cannot read the HubSpot flusher's state: {exc.strerror}"]
    finally:
        store.close()
    if stop is None:
        return []
    return [
        f"the HubSpot batch flusher stopped at {stop.get('at')}: {stop.get('reason')}. "
        "Executions wait in the outbox (nothing is lost): fix the token and restart leadrelay"
    ]


def outbox_warnings(config: Config) -> list[str]:
    """What ``leadrelay check`` says of executions left in the outbox by batch mode after a
    switch to another mode: ``serve`` still flushes them, given a token."""
    if config.hubspot.write_owner == "batch":
        return []  # items waiting a second for their flush are batch mode's normal state
    try:
        store = open_store(config.store_url)
    except LeadRelayError:
        return []  # ``check`` says what is wrong with the store URL itself
    try:
        waiting = store.outbox_size()
    except LeadRelayError as exc:
        return [f"cannot read the HubSpot outbox: {exc}"]
    finally:
        store.close()
    if not waiting:
        return []
    return [
        f"{waiting} HubSpot execution(s) decided in batch mode still wait in the outbox; "
        f"`leadrelay serve` writes and completes them (it needs {ACCESS_TOKEN_ENV}) whatever "
        f"hubspot.write_owner says now"
    ]
