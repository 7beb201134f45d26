"""One assignment as the console shows it: a row (who, from whom, by which rule, why) and the
whole decision behind it (candidates, skipped reps, SLA, write-back, outcomes); the API's
JSON and CSV shapes of the same record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from workflows.config import Config
from workflows.model import AssignmentRecord
from workflows.store import OutcomeTimes, Store, TaskRow, WriteBack

SOURCE_LABELS = {"salesforce-flow": "flow"}
CSV_COLUMNS = (
    "id", "decided_at", "crm", "object_type", "lead_id", "previous_owner", "new_owner",
    "outcome", "rule", "strategy", "pool", "source", "reason", "sla_status", "sla_outcome",
    "ttft_s", "rotations", "writeback", "writeback_attempts", "config_version", "queue",
)  # fmt: skip


@dataclass(frozen=True)
class AssignmentRow:
    """A log record with what the console shows beside it."""

    record: AssignmentRecord
    when: str  # in app.yaml's timezone
    previous: str  # rep names, or the CRM's owner id when no rep has it
    new: str
    source: str
    sla: dict[str, Any] | None
    writeback: WriteBack | None
    outcomes: OutcomeTimes | None
    task: TaskRow | None = None  # the follow-up task app.yaml's ``task:`` made (or moved)

    @property
    def sla_lines(self) -> list[tuple[str, str]]:
        """The SLA state as (label, value) lines, in the order a person asks about them."""
        sla = self.sla or {}
        lines = [
            ("deadline", sla.get("deadline")),
            ("clock", str(sla.get("clock", "")).replace("_", " ") or None),
            ("status", sla.get("status")),
            ("outcome", sla.get("outcome")),
            ("time to first touch", _seconds(sla.get("ttft_s"))),
            ("rotations", str(sla["rotations"]) if "rotations" in sla else None),
            ("detail", sla.get("detail")),
        ]
        return [(label, str(value)) for label, value in lines if value]


def _seconds(value: Any) -> str | None:
    if value is None:
        return None
    minutes, seconds = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def rep_name(config: Config, rep: str | None, none: str = "nobody") -> str:
    if not rep:
        return none
    known = config.reps.get(rep)
    return known.name if known else rep


def owner_name(config: Config, record: AssignmentRecord) -> str:
    """Who the record gave the lead to: a rep's name, or the queue it parked it in."""
    if record.decision.queue:
        return f"queue {record.decision.queue}"
    return rep_name(config, record.new_owner)


def rows(records: list[AssignmentRecord], config: Config, store: Store) -> list[AssignmentRow]:
    """The page's rows: each record with its write-back and outcomes read from the store."""
    tz = ZoneInfo(config.timezone)
    return [
        AssignmentRow(
            record=record,
            when=f"{record.decided_at.astimezone(tz):%Y-%m-%d %H:%M:%S}",
            previous=rep_name(config, record.previous_owner, none="no owner"),
            new=owner_name(config, record),
            source=SOURCE_LABELS.get(record.source, record.source),
            sla=record.extra.get("sla"),
            writeback=store.writeback(record.id),
            outcomes=store.outcomes(record.id),
            task=store.task(record.id),
        )
        for record in records
    ]


def record_json(record: AssignmentRecord, store: Store) -> dict[str, Any]:
    """The API's shape: the log record as ``leadrelay log --format json`` prints it, with
    its write-back status and outcomes."""
    data = record.to_dict()
    data["writeback"] = store.writeback(record.id)
    data["outcomes"] = store.outcomes(record.id)
    data["task"] = store.task(record.id)
    return data


def csv_row(record: AssignmentRecord, writeback: WriteBack | None) -> dict[str, Any]:
    sla: dict[str, Any] = record.extra.get("sla") or {}
    decision = record.decision
    ttft = sla.get("ttft_s")
    return {
        "id": record.id,
        "decided_at": _iso(record.decided_at),
        "crm": record.crm,
        "object_type": record.object_type,
        "lead_id": record.lead_id,
        "previous_owner": record.previous_owner or "",
        "new_owner": record.new_owner or "",
        "outcome": decision.outcome,
        "rule": decision.rule,
        "strategy": decision.strategy or "",
        "pool": decision.pool or "",
        "source": record.source,
        "reason": decision.reason,
        "sla_status": sla.get("status", ""),
        "sla_outcome": sla.get("outcome", ""),
        "ttft_s": "" if ttft is None else int(ttft),
        "rotations": sla.get("rotations", ""),
        "writeback": (writeback or {}).get("status", ""),
        "writeback_attempts": (writeback or {}).get("attempts", ""),
        "config_version": record.config_version or "",
        "queue": decision.queue or "",
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat()
