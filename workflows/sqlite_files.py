"""The embedded store's files beside its database: named locks, shared values, and the check
that a path can hold a database at all.

Every one is created owner-only (``workflows.private_files``) and named ``<db>.<name>``, so
a store's files stay together and are backed up, moved and removed together.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workflows.errors import StoreError
from workflows.private_files import OWNER_ONLY, make_private_dirs, open_private

# ":" for namespaced values such as "sweep:last" (a plain file-name character on POSIX).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
_MAX_VALUE = 64 * 1024  # a shared value is small: a few numbers, a short JSON document


def checked_name(name: str) -> str:
    """``name`` when it can name a file beside the database (no path, no leading dot)."""
    if not _NAME.fullmatch(name):
        raise StoreError(f"not a usable lock or value name: {name!r}")
    return name


@contextmanager
def held_lock(path: Path) -> Iterator[bool]:
    """Yield True holding an flock on ``path``, or False at once when someone else holds it.

    flock belongs to the open file, so two opens in one process exclude each other too, and
    the kernel releases it when the holder dies.
    """
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


class SharedFile:
    """A small value in a file every process opens: read-modify-write under its ``flock``.

    The file stays open between uses (one ``flock`` per use, no ``open``); a forked child
    opens its own, since it would otherwise share the parent's open file and its lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1
        self._pid = -1
        self._threads = threading.Lock()  # flock excludes other open files, not threads

    @property
    def where(self) -> str:
        return str(self.path)

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self._threads:
            if self._pid != os.getpid():
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, OWNER_ONLY)
                self._pid = os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def read(self) -> bytes:
        return os.pread(self._fd, _MAX_VALUE, 0)

    def write(self, data: bytes) -> None:
        if len(data) > _MAX_VALUE:
            raise StoreError(f"a shared value holds at most {_MAX_VALUE} bytes, not {len(data)}")
        os.pwrite(self._fd, data, 0)
        if os.fstat(self._fd).st_size != len(data):
            os.ftruncate(self._fd, len(data))

    def close(self) -> None:
        if self._pid == os.getpid():
            os.close(self._fd)
        self._pid = -1


class SharedFiles:
    """The shared values of the database at ``database``: ``<database>.<name>`` files.

    Usable without opening the database, so an operator can lift a HubSpot pause even when the
    database itself is broken or not created yet.
    """

    def __init__(self, database: Path) -> None:
        self.database = database
        self._files: dict[str, SharedFile] = {}

    @contextmanager
    def shared_value(self, name: str) -> Iterator[SharedFile]:
        """``<db>.<name>``: a small owner-only file, read and written under its own flock."""
        shared = self._files.get(name)
        if shared is None:
            path = Path(f"{self.database}.{checked_name(name)}")
            shared = self._files[name] = SharedFile(path)
        with shared.locked():
            yield shared

    def shared_names(self, prefix: str) -> list[str]:
        return shared_file_names(self.database, prefix)

    def close(self) -> None:
        for shared in self._files.values():
            shared.close()


def shared_file_names(database: Path, prefix: str) -> list[str]:
    """The names of the existing files ``<database>.<prefix>*``, sorted."""
    start = f"{database.name}."
    pattern = f"{glob.escape(start + prefix)}*"
    return sorted(path.name[len(start) :] for path in database.parent.glob(pattern))


def unusable(path: Path) -> str | None:
    """Why ``path`` cannot hold a SQLite database, or None. Asked before sqlitedict opens it:
    its worker thread would print a traceback on a file that is not a database."""
    blocker = _first_non_directory(path.parent)
    if blocker is not None:
        return f"{blocker} is not a directory"
    if path.is_dir():
        return "it is a directory, not a database file"
    if path.exists():
        return _not_sqlite(path)
    return None


def _first_non_directory(directory: Path) -> Path | None:
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def _not_sqlite(path: Path) -> str | None:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        conn.close()
    return None
