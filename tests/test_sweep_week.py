"""A week of traffic on the working-hours clock, across a weekend and the end of US DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from conftest import at
from sweep_helpers import OWNER_IDS, MemoryCrm, sla_config_data

from workflows.model import Lead
from workflows.router import Router
from workflows.sla_clock import deadline
from workflows.sweep import sweep

NY = ZoneInfo("America/New_York")
TEAM = ("alice", "bob", "chen", "dana")
SWEEP_EVERY = timedelta(minutes=5)


def week_config(make_config):
    return make_config(sla_config_data(team_hours="Mon-Fri 09:00-17:00", clock="working_hours"))


def test_a_week_of_traffic_is_swept_on_working_time_only(make_config, store):
    config = week_config(make_config)
    router = Router(config, store)
    crm = MemoryCrm()
    start, end = at("2026-10-29 08:00"), at("2026-11-05 12:00")  # Thu to Thu, DST ends Sun
    arrivals = [start + timedelta(minutes=35 * n) for n in range(int(7 * 24 * 60 / 35))]
    arrivals.append(at("2026-10-30 16:55"))  # Friday, 5 working minutes before the weekend
    arrivals.sort()
    assigned: dict[str, tuple[str, datetime]] = {}  # lead -> (first owner, assigned at)
    actions = []
    now, number = start, 0

    def sweep_at(moment: datetime) -> None:
        found: list = []
        sweep(router, {"hubspot": crm}, moment, on_action=found.append)
        actions.extend((moment, action) for action in found)

    while now <= end:
        while arrivals and arrivals[0] <= now:
            arrived = arrivals.pop(0)
            lead_id = f"W{number}"
            number += 1
            result = router.route(
                Lead(id=lead_id, crm="hubspot", object_type="contact"), arrived, source="hubspot"
            )
            owner = result.decision.rep_id
            assert owner is not None
            crm.add(lead_id, OWNER_IDS[owner])
            assigned[lead_id] = (owner, arrived)
            if number % 3 == 0:  # a third are called 10 working minutes after assignment
                rep_ = config.reps[owner]
                crm.touch(lead_id, deadline(arrived, timedelta(minutes=10), "working_hours", rep_))
        sweep_at(now)
        now += SWEEP_EVERY

    assert actions, "the week produced no sweep actions"
    by_kind: dict[str, int] = {}
    for moment, action in actions:
        by_kind[action.action] = by_kind.get(action.action, 0) + 1
        owner = config.reps[action.owner]
        local = moment.astimezone(NY)
        if action.owner in TEAM:
            # Deadlines of 9-to-5 reps fall in their hours: nothing is swept at night or on
            # the weekend, and nothing later than one sweep interval after the deadline.
            assert local.weekday() < 5, (action, local)
            assert local.time() > datetime.strptime("09:00", "%H:%M").time(), (action, local)
            assert local.time() <= datetime.strptime("17:05", "%H:%M").time(), (action, local)
        if action.action == "contacted":
            assert action.ttft == timedelta(minutes=10), action
        if action.action in ("rotated", "escalated") and action.record_id:
            first_owner, arrived = assigned[action.lead_id]
            if action.owner == first_owner:
                due = deadline(arrived, timedelta(minutes=15), "working_hours", owner)
                assert moment - SWEEP_EVERY < due <= moment, (action, due, moment)
    assert by_kind.get("contacted", 0) > 10
    assert by_kind.get("rotated", 0) > 10
    assert by_kind.get("escalated", 0) > 0
    assert by_kind.get("failed", 0) == 0

    friday = next(
        (moment, a) for moment, a in actions if assigned[a.lead_id][1] == at("2026-10-30 16:55")
    )
    # 5 working minutes on Friday, 10 on Monday morning: after the DST change, in EST.
    assert friday[0] == at("2026-11-02 09:10")
    assert friday[0].astimezone(UTC) == datetime(2026, 11, 2, 14, 10, tzinfo=UTC)

    # Every lead: at most two rotations, to reps it never had, then the manager.
    history: dict[str, list] = {}
    for record in store.log():
        history.setdefault(record.lead_id, []).append(record)
    for records in history.values():
        sweeps = [r for r in records if r.source == "sweep"]
        assert len(sweeps) <= 3
        team_owners = [r.new_owner for r in records if r.new_owner != "maria"]
        assert len(team_owners) == len(set(team_owners))
        if len(sweeps) == 3:
            assert sweeps[-1].new_owner == "maria"
