"""How the console's statistics read: percentages, durations, rep names, the distribution's
charts, and the JSON of ``/api/stats``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.charts import Bar, bar_chart
from workflows.config import Config
from workflows.ops_distribution import Distribution, Period
from workflows.stats_intervals import Median, Proportion

PERIOD_TEXT: dict[Period, str] = {"today": "today", "week": "this week", "month": "this month"}


def distribution_charts(dist: Distribution, period: Period, config: Config) -> dict[str, Any]:
    """An SVG bar chart of every rep's leads in ``period`` (key ``""``), and one per pool of
    its members' shares against their target shares."""
    name = namer(config)
    charts: dict[str, Any] = {
        "": bar_chart(
            [Bar(name(r.rep), r.counts[period], f"{r.counts[period]}") for r in dist.reps],
            title=f"Leads per rep, {PERIOD_TEXT[period]}",
        )
    }
    for pool in dist.pools:
        bars = []
        for member in pool.members:
            share, count = member.shares[period], member.counts[period]
            target = "no target (priority list)" if member.target is None else pct(member.target)
            text = f"{count} leads, {pct(share)} (target {target})"
            bars.append(Bar(name(member.rep), share or 0.0, text, member.target))
        title = f"Pool {pool.pool}: share of its members' leads, {PERIOD_TEXT[period]}"
        charts[pool.pool] = bar_chart(bars, title=title)
    return charts


def namer(config: Config) -> Callable[[str], str]:
    """A rep's name from app.yaml; the id for a rep no longer there."""

    def name(rep_id: str) -> str:
        rep = config.reps.get(rep_id)
        return rep.name if rep is not None else rep_id

    return name


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def duration(seconds: float | None) -> str:
    """``7m 05s``, ``2h 03m``, ``45s``; ``-`` for none."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def formatters() -> dict[str, Any]:
    """What every statistics template formats with."""
    return {"pct": pct, "duration": duration, "period_text": PERIOD_TEXT, "utc": UTC}


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
