"""Files only their owner may read: the store holds lead emails, names and decisions.

SQLite creates a database ``0644`` (less the umask) and gives its ``-wal`` and ``-shm`` files
the database file's mode, so creating the database file ``0600`` before SQLite opens it keeps
all three owner-only. The lock files beside it are opened here the same way. An existing file
keeps the mode it has: an operator may have chosen another on purpose.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

OWNER_ONLY = 0o600


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents, owner-only (existing ones are left)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def create_private(path: Path) -> None:
    """Create ``path`` empty and owner-only unless it exists (never truncates)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, OWNER_ONLY))


def open_private(path: Path | str) -> BinaryIO:
    """``open(path, "a+b")``, creating the file owner-only."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, OWNER_ONLY)
    return os.fdopen(fd, "a+b")
