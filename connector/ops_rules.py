"""``/ops/rules``: the live flow, readable, and "try a lead": a dry run through the live rules
that shows the decision path and changes nothing.

The dry run is the router's own (``dry_run=True``, as ``leadrelay route``): it reads the
live rotation state under the routing lock and records nothing. Not a store snapshot: that
copies the whole store (seconds at a million log rows) under the same lock, on every click.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import render_template, request
from flask.typing import ResponseReturnValue

from connector.ops_blueprints import pages
from connector.ops_flow_view import chain_text, pool_views, rule_views, sla_text
from connector.ops_try_lead import CRMS, FORM_FIELDS, read_tried_lead
from connector.shared import leadrelay
from workflows.errors import LeadError
from workflows.model import Decision


@pages.route("/rules", methods=["GET", "POST"])
def rules_page() -> ResponseReturnValue:
    services = leadrelay()
    config = services.config
    decision: Decision | None = None
    problem: LeadError | None = None
    tried_at = None
    if request.method == "POST":
        try:
            tried = read_tried_lead(request.form, config, datetime.now(UTC))
            result = services.router.route(tried.lead, tried.at, source="console", dry_run=True)
            decision, tried_at = result.decision, tried.at
        except LeadError as exc:
            problem = exc
    page = render_template(
        "ops/rules.html",
        rules=rule_views(config.flow.rules, config),
        pools=pool_views(config),
        fallback=chain_text(config.fallback, config),
        sla=sla_text(config.sla, config),
        fields=FORM_FIELDS,
        crms=CRMS,
        form=request.form,
        decision=decision,
        tried_at=tried_at,
        rep_names={rep.id: rep.name for rep in config.reps.values()},
        problem=problem,
    )
    return page, 400 if problem else 200
