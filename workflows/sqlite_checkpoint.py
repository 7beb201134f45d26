"""Copy the embedded store's write-ahead log back into the database, off the routing lock.

SQLite's automatic checkpoint runs inside whichever commit crosses its threshold: one decision
in every few dozen then copies pages and fsyncs while it holds the routing lock, and on average
that was nearly half of a decision's write cost. Instead, a daemon thread checkpoints once the
WAL holds ``WAL_ROWS`` rows written since the last one, or every second while there is any, in
two passes: a PASSIVE one (it blocks nobody) copies almost everything while decisions go on,
then a second one under the routing lock copies the few pages written meanwhile. Only a
complete checkpoint lets the next commit start the WAL file over; without the second pass it
grows for as long as decisions keep coming.

One process checkpoints at a time (a non-blocking ``flock`` on ``<db>.checkpoint``): two
passes of different processes would keep each other from completing. SQLite's own checkpoint
stays on at a high threshold (``SAFETY_PAGES``) as a safety net should this thread ever stop.
"""

from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from workflows.private_files import open_private

log = logging.getLogger("leadrelay.store")

# Rows written (about a page each in the WAL) that wake a checkpoint early; how often the
# thread looks otherwise; SQLite's own threshold, only reached if this thread falls behind.
WAL_ROWS = 4000
INTERVAL_SECONDS = 1.0
SAFETY_PAGES = 20_000


class WalCheckpointer:
    """Checkpoints one SQLite file in the background while its store is open."""

    def __init__(self, path: Path, locked: Callable[[], AbstractContextManager[object]]) -> None:
        self.path = path
        self._locked = locked  # holds the routing lock: no commit can start meanwhile
        self._wake = threading.Event()
        self._stop = False
        self._rows = 0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def committed(self, rows: int) -> None:
        """Count ``rows`` just committed; wake the checkpoint early when enough piled up."""
        if self._thread is None or not self._thread.is_alive():
            self._start()
        self._rows += rows  # a lost update between threads only delays a checkpoint
        if self._rows >= WAL_ROWS:
            self._rows = 0
            self._wake.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._stop or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(
                target=self._run, name="leadrelay-wal-checkpoint", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(INTERVAL_SECONDS)
            self._wake.clear()
            if self._stop:
                return
            try:
                self.run_once()
            except Exception:  # logged, and tried again on the next round
                log.exception("WAL checkpoint of %s failed", self.path)
                time.sleep(INTERVAL_SECONDS)

    def run_once(self) -> bool:
        """Both passes, unless another process is checkpointing; True when the WAL was
        copied back completely."""
        with open_private(f"{self.path}.checkpoint") as turn:
            try:
                fcntl.flock(turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # another process's turn: it copies our pages too
            conn = sqlite3.connect(str(self.path), isolation_level=None)
            try:
                self._checkpoint(conn)
                with self._locked():
                    return self._checkpoint(conn)
            finally:
                conn.close()

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection) -> bool:
        try:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.OperationalError as exc:
            log.debug("WAL checkpoint skipped: %s", exc)
            return False
        return not busy and frames == copied

    def close(self) -> None:
        """Stop the thread (SQLite checkpoints the rest when the last connection closes)."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
