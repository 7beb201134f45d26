"""Exactly one sweep at a time, across threads and processes: a non-blocking flock.

The lock file sits beside the store (``<store>.sweep.lock``). Every gunicorn worker runs a
scheduler, but only the one that takes the lock sweeps; the others skip that run. The lock is
released when the sweep ends, or by the kernel when the process dies, so a crash never leaves
the sweep stuck.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workflows.private_files import make_private_dirs, open_private
from workflows.store import store_file


def lock_path(store_url: str) -> Path:
    """The sweep lock file for the store at ``store_url`` (``sqlite:///path``)."""
    return Path(f"{store_file(store_url)}.sweep.lock")


@contextmanager
def sweep_lock(path: Path) -> Iterator[bool]:
    """Yield True holding the lock, or False at once when another sweep holds it."""
    make_private_dirs(path.parent)
    with open_private(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
