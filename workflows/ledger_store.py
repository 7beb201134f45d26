"""What every store built on the ledger's rows answers the same way, through its own
transaction: write-backs, the HubSpot outbox, the SLA deadline index and settlements.

The embedded and the PostgreSQL store differ in how a transaction reads and commits
(``SqliteTransaction`` and its PostgreSQL subclass), not in what these methods ask of it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import cast

from workflows import ledger, task_ledger
from workflows.model import AssignmentRecord, WritebackStatus
from workflows.sqlite_transaction import SqliteTransaction
from workflows.store import (
    DueAssignment,
    OutboxChange,
    OutboxItem,
    SlaState,
    SlaUpdate,
    TaskClaim,
    TaskRow,
    TaskUpdate,
    TaskWanted,
    WriteBack,
)

# Keys read per round when scanning the outbox past items others hold.
_PAGE = 500


class LedgerStore(ABC):
    """The ledger-backed half of a store; a subclass gives its ``transaction``."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[SqliteTransaction]:
        """The store's routing transaction."""

    def set_writebacks(
        self,
        updates: dict[int, tuple[WritebackStatus, str]],
        now: datetime,
        *,
        final: Collection[int] = (),
    ) -> None:
        """Record CRM write-back outcomes of log records, in one commit."""
        if not updates:
            return
        with self.transaction() as tx:
            tx.prefetch_keys(map(ledger.writeback_key, updates))
            previous = {record_id: tx.writeback(record_id) for record_id in updates}
            tx.apply(ledger.writeback_rows(updates, previous, final, now))

    def writeback(self, record_id: int) -> WriteBack | None:
        """The latest write-back status of a log record, if one was set."""
        with self.transaction() as tx:
            return tx.writeback(record_id)

    def outbox_claim(self, limit: int, lease: timedelta, now: datetime) -> dict[int, OutboxItem]:
        """Claim up to ``limit`` free outbox items, oldest first, in one commit."""
        claimed: dict[int, OutboxItem] = {}
        with self.transaction() as tx:
            low, high = ledger.outbox_range()
            while len(claimed) < limit:
                # Items other flushers hold, or waiting to retry, are skipped: read on past them.
                keys = tx.scan_keys(low, high, _PAGE)
                tx.prefetch_keys(keys)
                items = {ledger.outbox_id(key): tx.get(key) for key in keys}
                claimed.update(ledger.outbox_claims(items, limit - len(claimed), lease, now))
                if len(keys) < _PAGE:
                    break
                low = keys[-1]
            tx.apply(ledger.Rows({ledger.outbox_key(i): item for i, item in claimed.items()}))
        return claimed

    def outbox_update(
        self,
        done: Collection[int],
        now: datetime,
        changes: Mapping[int, OutboxChange] | None = None,
    ) -> None:
        """Remove what is done, release the rest with their changes, in one commit."""
        changes = changes or {}
        if not done and not changes:
            return
        with self.transaction() as tx:
            tx.prefetch_keys(map(ledger.outbox_key, changes))
            previous = {i: tx.get(ledger.outbox_key(i)) for i in changes}
            tx.apply(ledger.outbox_rows(done, changes, previous))

    def claim_tasks(
        self, wanted: Mapping[int, TaskWanted], lease: timedelta, now: datetime
    ) -> dict[int, TaskClaim]:
        """Claim follow-up task work (a creation, or a move of the lead's task), one commit."""
        if not wanted:
            return {}
        with self.transaction() as tx:
            tx.prefetch_keys(
                ledger.lead_key(w["crm"], w["lead_id"], w.get("object_type", ""))
                for w in wanted.values()
            )
            logs = {
                record_id: task_ledger.earlier_logs(
                    tx.history(want["crm"], want["lead_id"], want.get("object_type", ""))[
                        "log_ids"
                    ],
                    record_id,
                )
                for record_id, want in wanted.items()
            }
            ids = {log_id for ids in logs.values() for log_id in ids}
            tx.prefetch_keys(map(task_ledger.task_key, ids))
            rows = {log_id: tx.get(task_ledger.task_key(log_id)) for log_id in ids}
            claims, out = task_ledger.claim_tasks(wanted, rows, logs, lease, now)
            tx.apply(out)
        return claims

    def set_tasks(self, updates: Mapping[int, TaskUpdate], now: datetime) -> None:
        """Record how claimed task work ended, in one commit."""
        if not updates:
            return
        with self.transaction() as tx:
            tx.prefetch_keys(map(task_ledger.task_key, updates))
            previous = {i: tx.get(task_ledger.task_key(i)) for i in updates}
            tx.apply(task_ledger.task_rows(updates, previous, now))

    def task(self, record_id: int) -> TaskRow | None:
        """The follow-up task row of a log record."""
        with self.transaction() as tx:
            value = tx.get(task_ledger.task_key(record_id))
            return cast(TaskRow, dict(value)) if value else None

    def due(self, now: datetime, limit: int, after: str = "") -> list[DueAssignment]:
        """Open assignments due at ``now``, earliest deadline first, read in one lock hold."""
        with self.transaction() as tx:
            keys = tx.scan_keys(*ledger.due_range(now, after), limit)
            ids = [ledger.due_id(key) for key in keys]
            kinds = (ledger.log_key, ledger.sla_key, ledger.writeback_key)
            tx.prefetch_keys([kind(i) for i in ids for kind in kinds])
            rows = [(key, i, tx.get(ledger.log_key(i)), tx.sla(i)) for key, i in
                    zip(keys, ids, strict=True)]  # fmt: skip
            found = [(key, i, row, sla) for key, i, row, sla in rows if row and sla]
            tx.prefetch_keys(
                ledger.lead_key(row["crm"], row["lead_id"], row.get("object_type") or "")
                for _, _, row, _ in found
            )
            return [
                DueAssignment(
                    AssignmentRecord.from_dict(row),
                    sla,
                    tuple(tx.lead_owners(row["crm"], row["lead_id"], row.get("object_type") or "")),
                    key,
                    tx.writeback(i),
                )
                for key, i, row, sla in found
            ]

    def settle(self, updates: dict[int, SlaUpdate]) -> None:
        """Merge SLA updates (settled, rotated, rescheduled) in one commit."""
        if not updates:
            return
        with self.transaction() as tx:
            tx.prefetch_keys(map(ledger.sla_key, updates))
            tx.apply(ledger.settle_rows(updates, {i: tx.sla(i) for i in updates}))

    def sla(self, record_id: int) -> SlaState | None:
        """The SLA state of a log record, if an SLA applied to it."""
        with self.transaction() as tx:
            return tx.sla(record_id)
