"""What the CRM clients count for ``/metrics``: waits for the HubSpot API budget, and answers
that said "too many requests" (HubSpot's 429, Salesforce's REQUEST_LIMIT_EXCEEDED).

Counted here, where they happen, with prometheus_client (no CRM library). Every series is
labelled, so none holds a value before a process's first call: under gunicorn that is in a
worker, after ``leadrelay serve`` chose prometheus_client's multiprocess mode
(``connector/metrics.py``), so every worker's counts reach the scrape.
"""

from __future__ import annotations

from prometheus_client import Counter

BUDGET_WAITS = Counter(
    "leadrelay_crm_budget_waits",
    "API calls that waited for the shared CRM API budget before going out.",
    ["crm"],
)
BUDGET_WAIT_SECONDS = Counter(
    "leadrelay_crm_budget_wait_seconds",
    "Seconds API calls spent waiting for the shared CRM API budget.",
    ["crm"],
)
RATE_LIMITED = Counter(
    "leadrelay_crm_rate_limited",
    "CRM answers refusing a call for its rate limit (HubSpot 429, Salesforce"
    " REQUEST_LIMIT_EXCEEDED).",
    ["crm"],
)


def budget_waited(crm: str, seconds: float) -> None:
    """One call of ``crm`` waited ``seconds`` for the API budget."""
    BUDGET_WAITS.labels(crm=crm).inc()
    BUDGET_WAIT_SECONDS.labels(crm=crm).inc(seconds)


def rate_limited(crm: str) -> None:
    """``crm`` refused one call for its rate limit."""
    RATE_LIMITED.labels(crm=crm).inc()
