"""The console's statistics: ``/ops/distribution``, ``/ops/sla``, ``/ops/outcomes``,
``/ops/health`` and ``GET /api/stats`` (all of them as JSON, for scripts and BI tools).

Each view reads its parameters (a bad one is a 400 naming it), has the store count what it
needs (``Store.fact_tallies``: a million records in a few seconds, not half a minute),
rolls the counted groups up through the pure counters of ``workflows.ops_stats``, and renders.
What a view computed is kept for ``CACHE_SECONDS`` per process, for the same parameters while
no record was appended: a dashboard refreshed every few seconds costs one count, not one each
(an SLA settled or an outcome seen meanwhile shows at the latest that much later). ``register``
puts the routes on the console's blueprints (which keep them behind its sign-in).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from connector import metrics, ops_health
from connector.cli_time import TimeError, parse_cli_time
from connector.ops_stats_format import distribution_charts, formatters, namer, plain
from connector.shared import leadrelay
from workflows.config_schema import _as_duration  # app.yaml's own duration syntax
from workflows.ops_distribution import PERIODS, Distribution, DistributionCounter
from workflows.ops_stats import (
    DEFAULT_LOOKBACK,
    DEFAULT_WINDOW,
    GROUPINGS,
    RECENT_LOOKBACK,
    OutcomeCounter,
    OutcomeRow,
    RepSla,
    SlaCounter,
    WritebackBacklog,
    WritebackCounter,
    console_stats_of_tallies,
    console_tally_query,
    feed_tallies,
)
from workflows.stats_intervals import MIN_TO_JUDGE
from workflows.store import AssignmentQuery, Store, TallyQuery

LONGEST_WINDOW = timedelta(days=365)
WINDOW_CHOICES = ("7d", "14d", "30d", "60d", "90d")
CACHE_SECONDS = 30.0
_Choice = TypeVar("_Choice", bound=str)
_Computed = TypeVar("_Computed")


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

    def count() -> Distribution:
        counter = DistributionCounter(services.config, datetime.now(UTC))
        starts = tuple(counter.starts.values())
        query = TallyQuery(min(starts), counter.now, DEFAULT_WINDOW, starts, ttfts=False)
        feed_tallies(services.store.fact_tallies(query), counter)
        return counter.result()

    dist = _cached("distribution", {}, count)
    return render_template(
        "ops/distribution.html",
        dist=dist,
        period=period,
        periods=PERIODS,
        charts=distribution_charts(dist, period, services.config),
        name=namer(services.config),
        **formatters(),
    )


def sla_page() -> ResponseReturnValue:
    params = _stats_params("since", lookback=RECENT_LOOKBACK)
    services = leadrelay()

    def count() -> tuple[StatsParams, list[RepSla]]:
        active = (r.id for r in services.config.reps.values() if r.active)
        counter = SlaCounter(params.now, params.since, active)
        query = TallyQuery(params.since, params.now, params.window)
        feed_tallies(services.store.fact_tallies(query), counter)
        return params, counter.result()

    shown, rows = _cached("sla", params.text, count)
    return render_template(
        "ops/sla.html",
        rows=rows,
        params=shown,
        name=namer(services.config),
        min_to_judge=MIN_TO_JUDGE,
        **formatters(),
    )


def outcomes_page() -> ResponseReturnValue:
    params = _stats_params("since", "window", "group")
    group = _choice(params.text, "group", GROUPINGS, default="rep")
    services = leadrelay()

    def count() -> tuple[StatsParams, list[OutcomeRow]]:
        counter = OutcomeCounter(params.now, params.since, params.window)
        query = TallyQuery(params.since, params.now, params.window)
        feed_tallies(services.store.fact_tallies(query), counter)
        return params, counter.result(group)

    shown, rows = _cached("outcomes", params.text, count)
    return render_template(
        "ops/outcomes.html",
        rows=rows,
        group=group,
        groupings=GROUPINGS,
        params=shown,
        window_choices=WINDOW_CHOICES,
        name=namer(services.config) if group == "rep" else str,
        min_to_judge=MIN_TO_JUDGE,
        **formatters(),
    )


def health_page() -> ResponseReturnValue:
    params = _stats_params("since", lookback=RECENT_LOOKBACK)
    services = leadrelay()

    def count() -> tuple[StatsParams, WritebackBacklog]:
        counter = WritebackCounter(params.since)
        query = TallyQuery(params.since, params.now, params.window, ttfts=False)
        feed_tallies(services.store.fact_tallies(query), counter)
        return params, counter.result()

    shown, writebacks = _cached("health", params.text, count)
    health = _health()
    return render_template(
        "ops/health.html",
        health=health,
        writebacks=writebacks,
        params=shown,
        **formatters(),
    )


def stats_api() -> ResponseReturnValue:
    params = _stats_params("since", "window")
    services = leadrelay()
    config = services.config

    def count() -> dict[str, Any]:
        now, since, window = params.now, params.since, params.window
        query = console_tally_query(config, now=now, since=since, window=window)
        stats = console_stats_of_tallies(
            services.store.fact_tallies(query),
            config,
            now=params.now,
            since=params.since,
            window=params.window,
        )
        return dict(
            now=params.now.isoformat(),
            since=params.since.isoformat(),
            window_s=params.window.total_seconds(),
            min_to_judge=MIN_TO_JUDGE,
            distribution=plain(stats.distribution),
            sla=plain(stats.sla),
            outcomes=plain(stats.outcomes),
            writebacks=plain(stats.writebacks),
        )

    counted = dict(_cached("stats", params.text, count))
    writebacks = counted.pop("writebacks")
    return jsonify(**counted, health={"writebacks": writebacks, **plain(_health())})


# --- the per-process cache -------------------------------------------------------------------

_cache: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[Store, int | None, float, Any]] = {}
_cache_lock = threading.Lock()
_clock = time.monotonic


def _cached(view: str, text: dict[str, str], compute: Callable[[], _Computed]) -> _Computed:
    """What ``compute`` gave for this view and these parameters (as given) less than
    ``CACHE_SECONDS`` ago, on this store, when no record was appended since; else computed.

    Keyed by the parameters as given, not the times they resolve to: "the last 30 days" is
    a new time range every second, and the answer of a few seconds ago is the one wanted."""
    store = leadrelay().store
    newest = store.assignments(AssignmentQuery(), limit=1)
    last_id = newest[0].id if newest else None
    key = (view, tuple(sorted(text.items())))
    with _cache_lock:
        entry = _cache.get(key)
    if entry is not None:
        held_store, held_id, expires, value = entry
        if held_store is store and held_id == last_id and _clock() < expires:
            return cast(_Computed, value)
    value = compute()
    with _cache_lock:
        now = _clock()
        for stale in [k for k, (_, _, expires, _) in _cache.items() if expires <= now]:
            del _cache[stale]  # a script asking for many ``since`` values fills no memory
        _cache[key] = (store, last_id, _clock() + CACHE_SECONDS, value)
    return value


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


def _stats_params(*allowed: str, lookback: timedelta = DEFAULT_LOOKBACK) -> StatsParams:
    text = _args(*allowed)
    config = leadrelay().config
    now = datetime.now(UTC)
    since = now - lookback
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
        hubspot_outbox=ops_health.hubspot_outbox(
            services.store, services.config.hubspot.write_owner == "batch"
        ),
        config_version=services.config.version,
        store=ops_health.without_secrets(services.config.store_url),
    )
