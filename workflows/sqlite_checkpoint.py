"""Copy the embedded store's write-ahead log back into the database, off the routing lock.

SQLite's automatic checkpoint runs inside whichever commit crosses its threshold: one decision
in every few dozen then copies pages and fsyncs while it holds the routing lock, and on average
that was nearly half of a decision's write cost. Instead, a daemon thread checkpoints every
second, or sooner once many commits have piled up, in two passes: a PASSIVE one (it blocks
nobody) copies almost everything while decisions go on, then a second one under the routing
lock copies the few pages written meanwhile. Only a complete checkpoint lets the next commit
start the WAL file over; without the second pass it grows for as long as decisions keep coming.
Every process that writes runs one; a checkpoint that finds another under way skips its turn.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

log = logging.getLogger("leadrelay.store")

# Commits between two checkpoints at most (a commit writes ~10 pages to the WAL), and the
# longest the WAL goes unchecked while the store is idle.
EVERY_COMMITS = 500
INTERVAL_SECONDS = 1.0


class WalCheckpointer:
    """Checkpoints one SQLite file in the background while its store is open."""

    def __init__(self, path: Path, locked: Callable[[], AbstractContextManager[object]]) -> None:
        self.path = path
        self._locked = locked  # holds the routing lock: no commit can start meanwhile
        self._wake = threading.Event()
        self._stop = False
        self._commits = 0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def committed(self) -> None:
        """Count one commit; wake the checkpoint early when enough have piled up."""
        if self._thread is None:
            self._start()
        self._commits += 1  # a lost increment between threads only delays a checkpoint
        if self._commits >= EVERY_COMMITS:
            self._commits = 0
            self._wake.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="leadrelay-wal-checkpoint", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            while not self._stop:
                self._wake.wait(INTERVAL_SECONDS)
                self._wake.clear()
                self.checkpoint(conn)
                with self._locked():
                    self.checkpoint(conn)
        finally:
            conn.close()

    @staticmethod
    def checkpoint(conn: sqlite3.Connection) -> None:
        """One PASSIVE checkpoint on ``conn``; a busy database just waits for the next one."""
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.OperationalError as exc:
            log.debug("WAL checkpoint skipped: %s", exc)

    def close(self) -> None:
        """Stop the thread (SQLite checkpoints the rest when the last connection closes)."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
