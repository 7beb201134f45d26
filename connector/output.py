"""How the CLI prints decisions, distributions and the log (text, JSON lines or CSV)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable
from typing import Any

import click

from workflows.model import AssignmentRecord, Decision
from workflows.simulate import Distribution

LOG_COLUMNS = (
    "id", "decided_at", "crm", "lead_id", "previous_owner", "new_owner", "outcome", "rule",
    "strategy", "source", "idempotency_key", "reason", "sla", "ttft_s",
)  # fmt: skip
# OWASP's CSV injection guidance: a cell starting with one of these is a formula to a
# spreadsheet (=HYPERLINK(...) in a CRM owner's name); a leading single quote makes it text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Control characters would move a terminal's cursor, clear it, or break the table's rows.
_CONTROLS = dict.fromkeys([*range(0x20), 0x7F, *range(0x80, 0xA0)], "\ufffd")


def decision_json(decision: Decision) -> dict[str, Any]:
    """The stable JSON shape scripts depend on: lead, owner, rule, strategy, reason, skipped."""
    return {
        "lead": decision.lead_id,
        "owner": decision.rep_id,
        "owner_crm_id": decision.owner_crm_id,
        "outcome": decision.outcome,
        "queue": decision.queue,
        "rule": decision.rule,
        "pool": decision.pool,
        "strategy": decision.strategy,
        "reason": decision.reason,
        "candidates": decision.candidates,
        "skipped": decision.skipped,
    }


def result_line(decision: Decision, as_json: bool, verbose: bool = False) -> str:
    """One decision as a line of JSON, or as text for a person."""
    if as_json:
        return json.dumps(decision_json(decision))
    owner = decision.rep_id or decision.owner_crm_id or "nobody"
    if decision.queue:  # the queue's name first: its CRM id alone says little to a person
        crm_id = decision.owner_crm_id
        owner = f"queue {decision.queue}" + (f" {crm_id}" if crm_id != decision.queue else "")
    text = f"{decision.lead_id}: {owner} ({decision.outcome}) by rule {decision.rule}"
    if verbose:
        text += f"\n  why: {decision.reason}"
        for rep, why in decision.skipped.items():
            text += f"\n  skipped {rep}: {why}"
    return well_formed(text)


def print_distribution(totals: Distribution) -> None:
    """Per-rep, per-rule and per-outcome counts with shares."""
    click.echo(f"{totals.total} leads routed")
    for title, counter in (
        ("by rep", totals.by_rep),
        ("by rule", totals.by_rule),
        ("by outcome", totals.by_outcome),
    ):
        click.echo(f"\n{title}:")
        width = max((len(k) for k in counter), default=0)
        for key, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])):
            share = 100 * count / totals.total if totals.total else 0
            click.echo(f"  {key:<{width}}  {count:>6}  {share:5.1f}%")


def _row(record: AssignmentRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "decided_at": record.decided_at.isoformat(),
        "crm": record.crm,
        "lead_id": record.lead_id,
        "previous_owner": record.previous_owner or "",
        "new_owner": record.new_owner or "",
        "outcome": record.decision.outcome,
        "rule": record.decision.rule,
        "strategy": record.decision.strategy or "",
        "source": record.source,
        "idempotency_key": record.idempotency_key or "",
        "reason": record.decision.reason,
        "sla": _sla_text(record.extra.get("sla")),
        "ttft_s": _ttft_seconds(record.extra.get("sla")),
    }


def _ttft_seconds(sla: dict[str, Any] | None) -> str:
    value = (sla or {}).get("ttft_s")
    return "" if value is None else str(int(value))


def _sla_text(sla: dict[str, Any] | None) -> str:
    """``open``, ``contacted ttft 6m``, ``rotated``...: the SLA state of one assignment."""
    if not sla:
        return ""
    outcome = sla.get("outcome") or sla.get("status", "")
    seconds = sla.get("ttft_s")
    if seconds is None:
        return str(outcome)
    minutes = int(seconds) // 60
    hours, minutes = divmod(minutes, 60)
    return f"{outcome} ttft {hours}h{minutes:02d}m" if hours else f"{outcome} ttft {minutes}m"


def well_formed(text: str) -> str:
    """``text`` with each lone surrogate (CRMs let them through, the store keeps them) as U+FFFD,
    so that UTF-8 can encode it; a surrogate pair becomes the character it stands for."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def spreadsheet_cell(value: Any) -> str:
    """A CSV cell no spreadsheet reads as a formula, in well-formed Unicode."""
    text = well_formed(str(value))
    return f"'{text}" if text.startswith(FORMULA_START) else text


def print_log(records: Iterable[AssignmentRecord], fmt: str) -> None:
    """Stream log records as a table, JSON lines (lone surrogates as JSON escapes), or CSV."""
    if fmt == "json":
        for record in records:
            click.echo(json.dumps(record.to_dict()))  # ASCII: \ud800 stays a JSON escape
    elif fmt == "csv":
        # Every cell quoted, as OWASP advises, so a ";" cannot open a cell in locales whose
        # spreadsheets split on it.
        writer = csv.writer(sys.stdout, quoting=csv.QUOTE_ALL)
        writer.writerow(LOG_COLUMNS)
        for record in records:
            row = _row(record)
            writer.writerow([spreadsheet_cell(row[column]) for column in LOG_COLUMNS])
    else:
        # Source and previous owner show a sweep's or an operator's move for what it is.
        click.echo(
            f"{'id':>6}  {'time (UTC)':<19}  {'source':<15} {'lead':<20} {'from':<12} "
            f"{'owner':<12} {'rule':<28} {'sla (ttft)':<24} reason"
        )
        for record in records:
            row = {k: well_formed(str(v)).translate(_CONTROLS) for k, v in _row(record).items()}
            click.echo(
                f"{row['id']:>6}  {row['decided_at'][:19]:<19}  {row['source'][:15]:<15} "
                f"{row['lead_id'][:20]:<20} {(row['previous_owner'] or '-')[:12]:<12} "
                f"{(row['new_owner'] or '-')[:12]:<12} {row['rule'][:28]:<28} "
                f"{(row['sla'] or '-')[:24]:<24} {row['reason']}"
            )
