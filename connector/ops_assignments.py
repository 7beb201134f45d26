"""The assignment log: ``/ops`` (newest first, filters, "Older" paging, each decision
expandable), ``GET /api/assignments`` (JSON, the same filters and cursor) and
``GET /api/assignments.csv`` (every matching record, streamed)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Response, abort, jsonify, render_template, request, stream_with_context
from flask.typing import ResponseReturnValue

from connector.ops_blueprints import api, pages
from connector.ops_filters import CRMS, OBJECTS, SOURCES, FilterError, LogFilters, read_filters
from connector.ops_flow_view import rule_paths
from connector.ops_rows import CSV_COLUMNS, csv_row, record_json, rows
from connector.output import spreadsheet_cell
from connector.shared import leadrelay
from workflows.model import OUTCOMES
from workflows.store import AssignmentQuery, Store

CSV_BATCH = 500


def _filters(*, default_limit: int = 50) -> LogFilters:
    services = leadrelay()
    for name, values in request.args.lists():
        if len(values) > 1:  # rep=a&rep=b would quietly answer for a alone
            abort(400, description=f"{name}: given {len(values)} times; give it once")
    try:
        return read_filters(
            request.args, services.config, datetime.now(UTC), default_limit=default_limit
        )
    except FilterError as exc:
        abort(400, description=str(exc))


@pages.get("/assignments")  # the page's name, for links and benches that spell it out
@pages.get("", strict_slashes=False)
def index() -> ResponseReturnValue:
    services = leadrelay()
    config = services.config
    filters = _filters()
    records = services.store.assignments(filters.query, before=filters.before, limit=filters.limit)
    older = None
    if len(records) == filters.limit:
        older = "?" + urlencode({**filters.given, "before": records[-1].id})
    return render_template(
        "ops/assignments.html",
        rows=rows(records, config, services.store),
        given=filters.given,
        notes=filters.notes,
        older=older,
        reps=list(config.reps.values()),
        rep_names={rep.id: rep.name for rep in config.reps.values()},
        rule_paths=[*rule_paths(config.flow.rules), "fallback"],
        outcomes=OUTCOMES,
        sources=[s for s in SOURCES if s != "salesforce-flow"],
        crms=CRMS,
        objects=OBJECTS,
        csv_link="/api/assignments.csv?"
        + urlencode({k: v for k, v in filters.given.items() if k not in ("before", "limit")}),
    )


@api.get("/assignments")
def assignments_api() -> ResponseReturnValue:
    services = leadrelay()
    filters = _filters()
    store = services.store
    records = store.assignments(filters.query, before=filters.before, limit=filters.limit)
    more = len(records) == filters.limit
    return jsonify(
        assignments=[record_json(record, store) for record in records],
        next=records[-1].id if more else None,
    )


@api.get("/assignments.csv")
def assignments_csv() -> ResponseReturnValue:
    services = leadrelay()
    filters = _filters()
    store = services.store
    lines = _csv_lines(store, filters.query, filters.before)
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="leadrelay-assignments.csv"'},
    )


def _csv_lines(store: Store, query: AssignmentQuery, before: int | None) -> Iterator[str]:
    """The header, then every matching record newest first, a page of the store at a time.

    Every cell quoted and none a spreadsheet formula (see ``connector.output``).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)

    def line(cells: list[object]) -> str:
        writer.writerow(cells)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(list(CSV_COLUMNS))
    while True:
        page = store.assignments(query, before=before, limit=CSV_BATCH)
        for record in page:
            row = csv_row(record, store.writeback(record.id))
            yield line([spreadsheet_cell(row[column]) for column in CSV_COLUMNS])
        if len(page) < CSV_BATCH:
            return
        before = page[-1].id
