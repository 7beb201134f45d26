"""Dry-run a CSV of leads through the config on a scratch copy of the state."""

from __future__ import annotations

import csv
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path

from adapters.model import Lead, parse_datetime
from workflows.config import Config
from workflows.errors import LeadError
from workflows.router import Router, RoutingResult
from workflows.sqlite_store import SqliteStore
from workflows.store import open_store


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


def read_leads(path: Path, default_tz: tzinfo) -> Iterator[Lead]:
    """Leads from a CSV whose headers are common-model field names; errors name the row.

    A ``created_at`` without an offset is read in ``default_tz`` (app.yaml's ``timezone``).
    """
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            values = {k.strip(): v for k, v in row.items() if k}
            values.setdefault("id", f"row-{number}")
            try:
                values["created_at"] = parse_datetime(
                    "created_at", values.get("created_at"), default_tz
                )
                yield Lead.from_dict(values)
            except LeadError as exc:
                raise LeadError(f"{path.name} line {number}: {exc.field}", str(exc)) from None


def count_rows(path: Path) -> int:
    """Number of data rows (for a progress bar)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


def simulate(
    config: Config, leads: Iterator[Lead], default_time: datetime
) -> Iterator[RoutingResult]:
    """Route every lead in order on a scratch copy of the live state; the live state is untouched.

    A lead's ``created_at`` is its routing time, so hours and leave apply as they would have.
    """
    with tempfile.TemporaryDirectory(prefix="leadrelay-sim-") as scratch_dir:
        scratch_path = Path(scratch_dir) / "scratch.sqlite"
        live_path = _sqlite_path(config.store_url)
        if live_path is not None and live_path.exists():
            live = open_store(config.store_url)
            try:
                scratch = live.copy_to(scratch_path)
            finally:
                live.close()
        else:
            scratch = SqliteStore(scratch_path)
        try:
            router = Router(config, scratch)
            for lead in leads:
                when = lead.created_at or default_time
                yield router.route(lead, when, source="simulate")
        finally:
            scratch.close()


def _sqlite_path(url: str) -> Path | None:
    return Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None

