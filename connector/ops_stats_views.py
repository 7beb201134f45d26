"""The console's statistics: ``/ops/distribution``, ``/ops/sla``, ``/ops/outcomes``,
``/ops/health`` and ``GET /api/stats`` (all of them as JSON, for scripts and BI tools).

Each view reads its parameters (a bad one is a 400 naming it), streams the facts it needs from
the store once through the pure counters of ``workflows.ops_stats``, and renders. ``register``
puts the routes on the console's blueprints (which keep them behind its sign-in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from connector import metrics, ops_health
from connector.charts import Bar, bar_chart
from connector.cli_time import TimeError, parse_cli_time
from connector.shared import leadrelay
from workflows.config import Config
from workflows.config_schema import _as_duration  # app.yaml's own duration syntax
from workflows.ops_distribution import PERIODS, Distribution, DistributionCounter, Period
from workflows.ops_stats import (
    DEFAULT_LOOKBACK,
    DEFAULT_WINDOW,
    GROUPINGS,
    OutcomeCounter,
    SlaCounter,
    WritebackCounter,
    console_stats,
    facts_since,
    feed,
)
from workflows.stats_intervals import MIN_TO_JUDGE, Median, Proportion
from workflows.store import AssignmentQuery

LONGEST_WINDOW = timedelta(days=365)
WINDOW_CHOICES = ("7d", "14d", "30d", "60d", "90d")
_Choice = TypeVar("_Choice", bound=str)


@dataclass(frozen=True)
class StatsParams:
    """What a statistics view was asked for, checked."""

    now: datetime
    since: datetime
    window: timedelta
    text: dict[str, str]  # the parameters as given, to fill the forms back in


def register(pages: Blueprint, api: Blueprint) -> None:
    """Add the statistics pages to ``pages`` and ``/api/stats`` to ``api``."""
    pages.add_url_rule("/distribution", "distribution", distribution_page)
    pages.add_url_rule("/sla", "sla", sla_page)
    pages.add_url_rule("/outcomes", "outcomes", outcomes_page)
    pages.add_url_rule("/health", "health", health_page)
    api.add_url_rule("/stats", "stats", stats_api)


# --- views -----------------------------------------------------------------------------------


def distribution_page() -> ResponseReturnValue:
    args = _args("period")
    period = _choice(args, "period", PERIODS, default="week")
    services = leadrelay()
    now = datetime.now(UTC)
    counter = DistributionCounter(services.config, now)
    earliest = min(counter.starts.values())
    feed(services.store.facts(AssignmentQuery(since=earliest)), counter)
    dist = counter.result()
    return render_template(
        "ops/distribution.html",
        dist=dist,
        period=period,
        periods=PERIODS,
        charts=_distribution_charts(dist, period, services.config),
        name=_namer(services.config),
        **_formatters(),
    )


def sla_page() -> ResponseReturnValue:
    params = _stats_params("since")
    services = leadrelay()
    active = (r.id for r in services.config.reps.values() if r.active)
    counter = SlaCounter(params.now, params.since, active)
    feed(services.store.facts(AssignmentQuery(since=params.since)), counter)
    return render_template(
        "ops/sla.html",
        rows=counter.result(),
        params=params,
        name=_namer(services.config),
        min_to_judge=MIN_TO_JUDGE,
        **_formatters(),
    )


def outcomes_page() -> ResponseReturnValue:
    params = _stats_params("since", "window", "group")
    group = _choice(params.text, "group", GROUPINGS, default="rep")
    services = leadrelay()
    counter = OutcomeCounter(params.now, params.since, params.window)
    feed(services.store.facts(AssignmentQuery(since=params.since)), counter)
    return render_template(
        "ops/outcomes.html",
        rows=counter.result(group),
        group=group,
        groupings=GROUPINGS,
        params=params,
        window_choices=WINDOW_CHOICES,
        name=_namer(services.config) if group == "rep" else str,
        min_to_judge=MIN_TO_JUDGE,
        **_formatters(),
    )


def health_page() -> ResponseReturnValue:
    params = _stats_params("since")
    services = leadrelay()
    writebacks = WritebackCounter(params.since)
    feed(services.store.facts(AssignmentQuery(since=params.since)), writebacks)
    health = _health()
    return render_template(
        "ops/health.html",
        health=health,
        writebacks=writebacks.result(),
        params=params,
        **_formatters(),
    )


def stats_api() -> ResponseReturnValue:
    params = _stats_params("since", "window")
    services = leadrelay()
    config = services.config
    earliest = facts_since(params.now, params.since, config.timezone)
    facts = services.store.facts(AssignmentQuery(since=earliest))
    stats = console_stats(facts, config, now=params.now, since=params.since, window=params.window)
    return jsonify(
        now=params.now.isoformat(),
        since=params.since.isoformat(),
        window_s=params.window.total_seconds(),
        min_to_judge=MIN_TO_JUDGE,
        distribution=plain(stats.distribution),
        sla=plain(stats.sla),
        outcomes=plain(stats.outcomes),
        health={"writebacks": plain(stats.writebacks), **plain(_health())},
    )


# --- parameters ------------------------------------------------------------------------------


def _args(*allowed: str) -> dict[str, str]:
    """The query's parameters, each given at most once and all of them known (a typo in a
    script's URL is an error, not a silently ignored filter); empty values count as unset."""
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        expected = ", ".join(allowed) if allowed else "none"
        abort(400, f"unknown parameter {unknown[0]!r} (expected: {expected})")
    values: dict[str, str] = {}
    for name in allowed:
        given = request.args.getlist(name)
        if len(given) > 1:
            abort(400, f"{name}: given {len(given)} times; give it once")
        if given and given[0].strip():
            values[name] = given[0].strip()
    return values


def _stats_params(*allowed: str) -> StatsParams:
    text = _args(*allowed)
    config = leadrelay().config
    now = datetime.now(UTC)
    since = now - DEFAULT_LOOKBACK
    if "since" in text:
        try:
            since = parse_cli_time(text["since"], ZoneInfo(config.timezone), now)
        except TimeError as exc:
            abort(400, f"since: {exc}")
        if since > now:
            abort(400, f"since: {text['since']!r} is in the future")
    window = _window(text["window"]) if "window" in text else DEFAULT_WINDOW
    return StatsParams(now, since, window, text)


def _window(text: str) -> timedelta:
    try:
        window = _as_duration(text)
    except (ValueError, OverflowError):
        window = None
    if not isinstance(window, timedelta):
        abort(400, f"window: expected a duration like 7d, 30d or 12h, got {text[:40]!r}")
    if not timedelta(0) < window <= LONGEST_WINDOW:
        abort(400, f"window: must be longer than zero and at most {LONGEST_WINDOW.days}d")
    return window


def _choice(
    args: dict[str, str], name: str, choices: tuple[_Choice, ...], default: _Choice
) -> _Choice:
    given = args.get(name)
    if given is None:
        return default
    for choice in choices:
        if given == choice:
            return choice
    abort(400, f"{name}: expected one of {', '.join(choices)}, got {given[:40]!r}")


# --- what the templates and the API show -----------------------------------------------------


def _health() -> ops_health.Health:
    services = leadrelay()
    return ops_health.Health(
        notifier=ops_health.notifier_deliveries(metrics.current),
        last_sweep=ops_health.last_sweep(services.store),
        config_version=services.config.version,
        store=ops_health.without_secrets(services.config.store_url),
    )


def _distribution_charts(dist: Distribution, period: Period, config: Config) -> dict[str, Any]:
    name = _namer(config)
    charts: dict[str, Any] = {
        "": bar_chart(
            [Bar(name(r.rep), r.counts[period], f"{r.counts[period]}") for r in dist.reps],
            title=f"Leads per rep, {_PERIOD_TEXT[period]}",
        )
    }
    for pool in dist.pools:
        bars = []
        for member in pool.members:
            share, count = member.shares[period], member.counts[period]
            target = "no target (priority list)" if member.target is None else _pct(member.target)
            text = f"{count} leads, {_pct(share)} (target {target})"
            bars.append(Bar(name(member.rep), share or 0.0, text, member.target))
        title = f"Pool {pool.pool}: share of its members' leads, {_PERIOD_TEXT[period]}"
        charts[pool.pool] = bar_chart(bars, title=title)
    return charts


_PERIOD_TEXT: dict[Period, str] = {"today": "today", "week": "this week", "month": "this month"}


def _namer(config: Config) -> Callable[[str], str]:
    def name(rep_id: str) -> str:
        rep = config.reps.get(rep_id)
        return rep.name if rep is not None else rep_id

    return name


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _formatters() -> dict[str, Any]:
    return {"pct": _pct, "duration": _duration, "period_text": _PERIOD_TEXT, "utc": UTC}


def plain(value: Any) -> Any:
    """JSON-ready data: dataclasses as objects (rates and verdict flags included), times as
    ISO text, durations as seconds."""
    if isinstance(value, Proportion):
        return {**_fields(value), "rate": value.rate, "judged": value.judged}
    if isinstance(value, Median):
        return {**_fields(value), "judged": value.judged}
    if is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
