"""A HubSpot budget in a file of its own, as the embedded store keeps each shared value: for
tests of the limiter alone, without a store around it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adapters.hubspot.limits import SharedBudget, read_pause
from adapters.hubspot.pause import Pause
from workflows.sqlite_files import SharedFile


def budget_at(path: Path | str) -> SharedBudget:
    """Opens the budget kept in ``path`` (``RateLimiter(shared=...)``)."""
    shared = SharedFile(Path(path))

    @contextmanager
    def opened() -> Iterator[SharedFile]:
        with shared.locked():
            yield shared

    return opened


def pause_at(path: Path) -> Pause | None:
    """The pause ``leadrelay check`` reads from the budget in ``path``."""
    with budget_at(path)() as value:
        return read_pause(value)
