"""The store interface: rotation state, daily counts, idempotency keys and the assignment log.

Two implementations are planned (embedded sqlitedict now, PostgreSQL for several instances);
both hand out *transactions* that serialize every routing decision across threads and
processes, so no two leads ever get the same turn. A transaction buffers its writes and applies
them all at once in ``record``: a decision is either wholly on disk or not at all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from workflows.model import AssignmentRecord


@dataclass(frozen=True)
class LogQuery:
    """Filters for reading the assignment log back."""

    since: datetime | None = None
    rep: str | None = None
    lead: str | None = None
    crm: str | None = None


ALL = LogQuery()


@dataclass(frozen=True)
class DueAssignment:
    """An assignment whose first-touch deadline has passed and that is not settled yet."""

    record: AssignmentRecord
    sla: dict[str, Any]  # deadline, due_key, clock, first_touch_s, max_reassignments, rotations
    owners: tuple[str, ...]  # every rep this lead was ever assigned to, oldest first
    key: str  # its deadline-index key: pass as ``after`` to read on past it
    writeback: dict[str, Any] | None = None  # the record's CRM write-back status, if any


class StoreTransaction(Protocol):
    """Reads and one final write, under the store's exclusive routing lock."""

    def prefetch(
        self,
        *,
        pools: Iterable[str] = (),
        idempotency_key: str | None = None,
        email: str | None = None,
        domain: str | None = None,
        lead: tuple[str, str] | None = None,
        reps: Iterable[str] = (),
    ) -> None:
        """Load what a decision will read in one round trip (an optimisation, never required)."""

    def seen(self, idempotency_key: str) -> AssignmentRecord | None:
        """The record first made under this key, if any."""

    def pool_state(self, pool: str) -> dict[str, Any]:
        """A private copy of a pool's rotation state (empty for a new pool)."""

    def daily_count(self, rep: str) -> tuple[str, int]:
        """(the rep's local day of their last assignment, leads assigned that day)."""

    def previous_owner(self, email: str | None, domain: str | None) -> str | None:
        """The rep who last owned a lead with this email, else this domain."""

    def lead_owners(self, crm: str, lead_id: str) -> list[str]:
        """Every rep this lead was ever assigned to, oldest first."""

    def record(
        self,
        record: AssignmentRecord,
        *,
        pool_states: dict[str, dict[str, Any]],
        daily_counts: dict[str, tuple[str, int]],
        writeback: str | None = None,
        sla: dict[str, Any] | None = None,
        aliases: Sequence[str] = (),
    ) -> AssignmentRecord:
        """Append ``record`` (id given here) with the state it advances and, when given, its
        initial write-back status (``pending`` or ``not_needed``) and its SLA terms
        (``workflows.sla_clock.sla_terms``), which put it on the deadline index. ``aliases``
        are more idempotency keys that name the same decision (``seen`` finds it by each)."""

    def writeback(self, record_id: int) -> dict[str, Any] | None:
        """The write-back status of a record, as this transaction sees it."""

    def claim_writeback(self, record_id: int, lease: timedelta) -> bool:
        """Take the right to write this record's owner to the CRM for ``lease``.

        True only when the write is still to do (pending or failed) and no other delivery
        holds a live claim: two deliveries of one lead never write it at the same time.
        """


class Store(Protocol):
    """Where leadrelay keeps everything that must survive a restart."""

    def transaction(self) -> AbstractContextManager[StoreTransaction]:
        """Exclusive across threads and processes; writes nothing unless ``record`` is called."""

    def log(self, query: LogQuery = ALL) -> Iterator[AssignmentRecord]:
        """Assignment records oldest first, streamed."""

    def set_writebacks(
        self, updates: dict[int, tuple[str, str]], *, final: Collection[int] = ()
    ) -> None:
        """Record what happened when decisions were written to the CRM, in one commit.

        ``updates`` maps a log record id to (status, detail); status is ``written`` or
        ``failed``. Kept beside the append-only log row, so a CRM retry can tell "decided but
        not yet written" apart; each update counts one attempt. ``final`` names the failures
        no retry can fix (the CRM refused that owner for that record): marked ``final``.
        """

    def writeback(self, record_id: int) -> dict[str, Any] | None:
        """The latest write-back status of a record: status, detail, attempts, at."""

    def due(self, now: datetime, limit: int, after: str = "") -> list[DueAssignment]:
        """Up to ``limit`` open assignments with a deadline at or before ``now``, earliest
        first, starting after the deadline-index key ``after`` (``""``: from the start)."""

    def settle(self, updates: dict[int, dict[str, Any]]) -> None:
        """Merge ``updates`` into the SLA state of log records, in one commit.

        A status other than ``open`` takes the record off the deadline index; a new
        ``due_key`` moves it there. The append-only log rows are never touched.
        """

    def sla(self, record_id: int) -> dict[str, Any] | None:
        """The SLA state of a log record (None when no SLA applied)."""

    def copy_to(self, path: Path) -> Store:
        """A scratch copy of the whole store (for dry runs that must not touch live state)."""

    def close(self) -> None: ...


def store_file(url: str) -> Path:
    """The database file of a ``sqlite:///path?options`` store URL; the store's other files
    (locks, the HubSpot budget) sit beside it."""
    return Path(url.removeprefix("sqlite:///").partition("?")[0])
