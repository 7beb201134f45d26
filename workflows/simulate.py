"""Dry-run a CSV of leads through the config on a scratch copy of the state."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from workflows.config import Config
from workflows.errors import LeadError
from workflows.model import LEAD_FIELDS, Lead, parse_datetime
from workflows.router import Router, RoutingResult
from workflows.store_registry import open_snapshot


@dataclass
class Distribution:
    """How a simulation spread the leads."""

    total: int = 0
    by_rep: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[str] = field(default_factory=Counter)
    by_outcome: Counter[str] = field(default_factory=Counter)

    def add(self, result: RoutingResult) -> None:
        decision = result.decision
        self.total += 1
        self.by_rep[decision.rep_id or "(nobody)"] += 1
        self.by_rule[decision.rule] += 1
        self.by_outcome[decision.outcome] += 1


@dataclass(frozen=True)
class Column:
    """What one CSV column feeds: a lead field (or none), and the ``raw.<name>`` rules read."""

    header: str  # as the CSV titles it
    field: str | None
    raw: str

    @classmethod
    def plain(cls, header: str) -> Column:
        """A column whose header is a lead field name, or else only a raw property."""
        name = header.strip()
        return cls(name, name if name in LEAD_FIELDS else None, name)


def csv_headers(path: Path) -> list[str]:
    """The header row of a CSV (empty for an empty file)."""
    return next((row for _, row in _rows(path)), [])


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each row; a file that is not CSV in UTF-8 is a LeadError."""
    line = 1
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            for row in reader:
                yield line, row
                line = reader.line_num + 1
    except UnicodeDecodeError:
        raise LeadError(path.name, "not UTF-8 text: save or export it as CSV UTF-8") from None
    except csv.Error as exc:
        raise LeadError(f"{path.name} line {line}", f"not readable as CSV: {exc}") from None


def read_leads(
    path: Path, default_tz: tzinfo, columns: Sequence[Column] | None = None
) -> Iterator[Lead]:
    """Leads from a CSV, one per row; errors name the line and the column as the CSV titles it.

    ``columns`` (one per header, in order) says what each column feeds; by default headers are
    lead field names. Every column is also kept as ``raw.<header>``. When two columns feed one
    field, the first with a value wins. A ``created_at`` without an offset is read in
    ``default_tz`` (app.yaml's ``timezone``).
    """
    rows = _rows(path)
    headers = next(rows, (1, []))[1]
    plan = list(columns) if columns is not None else [Column.plain(h) for h in headers]
    for number, row in rows:
        if not row:  # a blank line
            continue
        values: dict[str, Any] = {}
        raw: dict[str, Any] = {}
        titles: dict[str, str] = {}
        for column, value in zip(plan, row, strict=False):
            if not column.header:
                continue
            if not raw.get(column.raw):
                raw[column.raw] = value
            if column.field and not values.get(column.field):
                values[column.field] = value
                titles[column.field] = column.header
        if not values.get("id"):
            values["id"] = f"row-{number}"
        try:
            values["created_at"] = parse_datetime(
                "created_at", values.get("created_at"), default_tz
            )
            lead = Lead.from_dict({**values, "raw": raw})
        except LeadError as exc:
            detail = str(exc).removeprefix(f"{exc.field}: ")
            where = f"{path.name} line {number}: {titles.get(exc.field, exc.field)}"
            raise LeadError(where, detail) from None
        yield lead


def count_rows(path: Path) -> int:
    """Number of data rows (for a progress bar)."""
    return max(0, sum(1 for _ in _rows(path)) - 1)


def simulate(
    config: Config, leads: Iterator[Lead], default_time: datetime
) -> Iterator[RoutingResult]:
    """Route every lead in order on a scratch copy of the live state; the live state is untouched.

    A lead's ``created_at`` is its routing time, so hours and leave apply as they would have.
    """
    scratch = open_snapshot(config.store_url)
    try:
        router = Router(config, scratch)
        for lead in leads:
            when = lead.created_at or default_time
            yield router.route(lead, when, source="simulate")
    finally:
        scratch.close()
