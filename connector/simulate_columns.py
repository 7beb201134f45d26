"""Which lead field each column of a CSV for ``leadrelay simulate`` feeds, and what to warn.

Headers are lead field names or the CRMs' own export headers (``adapters.export_headers``),
or the ``raw.<name>`` a rule reads; all compared case- and space-insensitively. A column that
is no lead field and that no rule reads is named in one warning, so an export whose ``Pays``
column feeds nothing does not send every row to the fallback in silence.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from adapters.export_headers import header_key, lead_field
from adapters.hubspot.contact import referenced_fields
from workflows.config import Config
from workflows.simulate import Column

# Read by simulate itself: the lead's name, its routing time, the CRM whose owner ids apply.
ALWAYS_READ = frozenset({"id", "created_at", "crm"})


@dataclass(frozen=True)
class ColumnPlan:
    """The columns of one CSV, and the warnings about them."""

    columns: list[Column]
    warnings: list[str]


def plan_columns(headers: list[str], config: Config) -> ColumnPlan:
    """What each header feeds, for routing with ``config``."""
    reads = rule_reads(config)
    raw_reads = {header_key(name[4:]): name[4:] for name in reads if name.startswith("raw.")}
    columns: list[Column] = []
    unread: list[str] = []
    by_field: dict[str, list[str]] = defaultdict(list)
    for header in headers:
        name = header.strip()
        if not name:
            columns.append(Column("", None, ""))
            continue
        column = Column(name, lead_field(name), raw_reads.get(header_key(name), name))
        columns.append(column)
        if column.field:
            by_field[column.field].append(name)
        # A known lead field no rule reads is fine (a sample export has names in it); a column
        # that is no field and no raw.<name> a rule reads is probably a header we misread.
        if column.field is None and f"raw.{column.raw}" not in reads:
            unread.append(name)
    warnings = [
        f"columns {', '.join(names)} all hold {field}; each row uses the first with a value"
        for field, names in by_field.items()
        if len(names) > 1
    ]
    if unread:
        warnings.append(
            f"no rule reads the column(s) {', '.join(unread)}: they match no lead field and no"
            " raw.<name> in the rules, so they change nothing (headers are lead fields, or"
            " HubSpot's or Salesforce's export headers)"
        )
    return ColumnPlan(columns, warnings)


def rule_reads(config: Config) -> set[str]:
    """Lead fields and ``raw.<name>``s that routing with ``config`` reads."""
    reads = referenced_fields(config) | ALWAYS_READ
    if "domain" in reads:
        reads.add("email")  # the domain comes from the email
    if any(target.kind == "keep" for target in config.targets()):
        reads.add("owner")
    return reads
