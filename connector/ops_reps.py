"""``/ops/reps`` and ``/api/reps``: who can take leads now, and if not, why not.

Each rep's availability is the router's own answer (``workflows.availability``), on their
own clock; the day's count comes from the store under its routing lock, as a decision reads it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from flask import jsonify, render_template
from flask.typing import ResponseReturnValue

from connector.ops_blueprints import api, pages
from connector.shared import leadrelay
from workflows.availability import local_day, local_now, unavailability
from workflows.config import Config
from workflows.model import Rep
from workflows.store import Store


@dataclass(frozen=True)
class RepNow:
    """One rep as the router sees them at one moment."""

    id: str
    name: str
    timezone: str
    local_time: str  # 2026-11-24 10:00 (Tue)
    hours: str  # their working hours, "always" when unlimited
    working: bool  # inside their working hours now
    out_of_office: str | None  # the leave they are on today
    assigned_today: int
    daily_cap: int | None
    active: bool
    pools: list[str]
    can_take: bool
    why_not: str | None  # the router's reason when they cannot

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def rep_now(rep: Rep, now: datetime, counted: tuple[str, int], pools: list[str]) -> RepNow:
    """``rep`` at ``now``, given the store's (local day, count) of their last assignment."""
    local = local_now(rep, now)
    day, count = counted
    today = count if day == local_day(rep, now).isoformat() else 0
    away = next((str(r) for r in rep.out_of_office if r.contains(local.date())), None)
    skip = unavailability(rep, now, today)
    return RepNow(
        id=rep.id,
        name=rep.name,
        timezone=rep.timezone,
        local_time=f"{local:%Y-%m-%d %H:%M} ({local:%a})",
        hours=rep.hours.describe() if rep.hours is not None else "always",
        working=rep.hours is None or rep.hours.contains(local),
        out_of_office=away,
        assigned_today=today,
        daily_cap=rep.daily_cap,
        active=rep.active,
        pools=pools,
        can_take=skip is None,
        why_not=str(skip) if skip else None,
    )


def team_now(config: Config, store: Store, now: datetime) -> list[RepNow]:
    """Every rep of app.yaml at ``now``, in app.yaml's order."""
    pools = {
        rep: [pool.id for pool in config.pools.values() if rep in pool.members]
        for rep in config.reps
    }
    with store.transaction() as tx:  # writes nothing: no record() call
        tx.prefetch(reps=list(config.reps))
        counts = {rep: tx.daily_count(rep) for rep in config.reps}
    return [rep_now(rep, now, counts[rep.id], pools[rep.id]) for rep in config.reps.values()]


@pages.get("/reps")
def reps_page() -> ResponseReturnValue:
    services = leadrelay()
    now = datetime.now(UTC)
    return render_template(
        "ops/reps.html", reps=team_now(services.config, services.store, now), now=now
    )


@api.get("/reps")
def reps_api() -> ResponseReturnValue:
    services = leadrelay()
    now = datetime.now(UTC)
    team = team_now(services.config, services.store, now)
    return jsonify(at=now.isoformat(), reps=[rep.to_json() for rep in team])
