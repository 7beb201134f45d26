"""Exactly one sweep at a time, across threads and processes: the store's ``sweep`` lock.

Every gunicorn worker runs a scheduler, but only the one that takes the lock sweeps; the others
skip that run. The lock is released when the sweep ends, or when the process dies, so a crash
never leaves the sweep stuck.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from workflows.store import Store

SWEEP_LOCK = "sweep"


def sweep_lock(store: Store) -> AbstractContextManager[bool]:
    """Yields True holding the sweep lock of ``store``, or False at once when another sweep
    holds it."""
    return store.lock(SWEEP_LOCK)
