"""Who can take leads now (``/ops/reps``, ``/api/reps``), the rules page and "try a lead"."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from conftest import TUESDAY_10AM, config_data, lead, rep
from ops_helpers import (
    BEARER,
    csrf_of,
    make_ops_app,  # noqa: F401 (fixture)
    ops_env,  # noqa: F401 (fixture)
    sign_in,
)

from connector.shared import services_of

TEAM = config_data(
    reps=[
        rep("alice", name="Alice Ng", timezone="America/Los_Angeles", hours="Mon-Fri 09:00-17:00"),
        rep("bob", name="Bob Marsh", out_of_office=["2026-11-23..2026-11-27"]),
        rep("chen", name="Chen Li", daily_cap=1),
        rep("dana", active=False),
        rep("erin", languages=["es"]),
    ],
    pools={
        "team": {"members": ["alice", "bob", "chen", "dana"], "strategy": "round_robin"},
        "spanish": {"members": ["erin"], "strategy": "first_available"},
    },
    flow=[
        {"name": "vip", "when": {"country": "JP"}, "assign": {"rep": "chen"}},
        {
            "name": "enterprise",
            "when": {"employees": {"gte": 1000}},
            "flow": [
                {
                    "name": "na",
                    "when": {"country": ["US", "CA"]},
                    "assign": {"rep": "alice", "else": {"pool": "team"}},
                },
            ],
        },
        {
            "name": "spanish",
            "when": {"language": "es"},
            "assign": {"pool": "spanish", "require": {"languages": ["es"]}},
        },
        {"name": "everyone", "assign": {"pool": "team"}},
    ],
    fallback={"rep": "erin"},
)


@pytest.fixture
def team_app(make_ops_app):
    app = make_ops_app(TEAM)
    services_of(app).router.route(lead("L0", country="JP"), TUESDAY_10AM)  # chen's 1 of 1
    return app


def reps_at(app, moment):
    with time_machine.travel(moment, tick=False):
        answer = app.test_client().get("/api/reps", headers=BEARER)
    assert answer.status_code == 200
    return {item["id"]: item for item in answer.json["reps"]}


def test_who_can_take_leads_now_answers_for_each_rep_on_their_own_clock(team_app):
    reps = reps_at(team_app, TUESDAY_10AM)
    assert list(reps) == ["alice", "bob", "chen", "dana", "erin"]
    alice = reps["alice"]
    assert alice["local_time"] == "2026-11-24 07:00 (Tue)"  # 10:00 in New York
    assert (alice["working"], alice["can_take"]) == (False, False)
    assert alice["why_not"].startswith("outside working hours: Tue 07:00 in America/Los_Angeles")
    assert alice["pools"] == ["team"]
    assert reps["bob"]["out_of_office"] == "2026-11-23..2026-11-27"
    assert reps["bob"]["can_take"] is False
    chen = reps["chen"]
    assert (chen["assigned_today"], chen["daily_cap"], chen["can_take"]) == (1, 1, False)
    assert chen["why_not"] == "daily cap reached: 1 of 1 today"
    assert (reps["dana"]["active"], reps["dana"]["can_take"]) == (False, False)
    erin = reps["erin"]
    assert (erin["can_take"], erin["why_not"], erin["pools"]) == (True, None, ["spanish"])


def test_a_daily_cap_counts_from_the_reps_own_midnight(team_app):
    before_midnight = reps_at(team_app, TUESDAY_10AM + timedelta(hours=13, minutes=59))
    assert before_midnight["chen"]["assigned_today"] == 1
    next_morning = reps_at(team_app, TUESDAY_10AM + timedelta(hours=14))
    assert (next_morning["chen"]["assigned_today"], next_morning["chen"]["can_take"]) == (0, True)
    assert next_morning["alice"]["local_time"] == "2026-11-24 21:00 (Tue)"


def test_the_reps_page_reads_as_a_table_a_person_can_scan(team_app):
    client = team_app.test_client()
    with time_machine.travel(TUESDAY_10AM, tick=False):
        sign_in(client)
        page = client.get("/ops/reps")
    assert page.status_code == 200
    text = page.text
    row = text[text.index('id="rep-bob"') : text.index('id="rep-chen"')]
    assert "no: out of office 2026-11-23..2026-11-27" in row
    chen = text[text.index('id="rep-chen"') : text.index('id="rep-dana"')]
    assert "1 / 1" in chen and "daily cap reached" in chen
    assert 'id="rep-erin" class="available"' in text


def test_the_rules_page_shows_the_flow_with_conditions_and_else_targets(team_app):
    page = team_app.test_client().get("/ops/rules", headers=BEARER)
    assert page.status_code == 200
    text = page.text
    na = text[text.index('id="rule-enterprise/na"') :]
    assert "{country: [US, CA]}" in na[:400]
    assert "rep Alice Ng</span>, else <span" in na[:600]
    assert "pool team (round_robin)" in na[:600]
    assert "{employees: {gte: 1000}}" in text
    assert "pool spanish (first_available), needs speaks es" in text
    assert 'fallback: <span class="target">rep erin</span>' in text
    assert "<td>team</td><td>round_robin</td><td>Alice Ng, Bob Marsh, Chen Li, dana</td>" in text


def state_of(app):
    """Everything a dry run could change: the log, rotation pointers, daily counts."""
    store = services_of(app).store
    with store.transaction() as tx:
        pools = {pool: tx.pool_state(pool) for pool in ("team", "spanish")}
        counts = {r: tx.daily_count(r) for r in ("alice", "bob", "chen", "dana", "erin")}
    return [r.to_dict() for r in store.log()], pools, counts


def try_lead(client, **form):
    page = client.get("/ops/rules")
    return client.post("/ops/rules", data={"csrf_token": csrf_of(page.text), **form})


def test_try_a_lead_shows_the_decision_path_and_changes_nothing(team_app):
    client = team_app.test_client()
    sign_in(client)
    services_of(team_app).router.route(lead("L1"), TUESDAY_10AM)  # the pool has moved on
    before = state_of(team_app)
    answers = []
    for lead_form in [
        {"id": "T1", "country": "US", "employees": "2,500", "at": "2026-11-24T10:00"},
        {"id": "T2", "country": "DE", "at": "2026-11-30T12:00"},  # Monday: everyone back
    ] * 2:
        answer = try_lead(client, **lead_form)
        assert answer.status_code == 200
        text = answer.text
        answers.append(text[text.index('id="decision"') : text.index("</dl>")])
    assert answers[:2] == answers[2:]  # nothing moved between the tries
    tuesday, monday = answers[:2]
    assert "<h3>erin" in tuesday
    assert "rule</dt><dd>fallback</dd>" in tuesday
    assert "enterprise/na: rep alice skipped: outside working hours" in tuesday
    assert "enterprise/na: pool team (round_robin): nobody available" in tuesday
    assert "skipped Bob Marsh</dt><dd>out of office 2026-11-23..2026-11-27" in tuesday
    assert "skipped Chen Li</dt><dd>daily cap reached: 1 of 1 today" in tuesday
    assert "rule</dt><dd>everyone</dd>" in monday
    assert "pool team (round_robin) chose" in monday
    assert state_of(team_app) == before


def test_try_a_lead_reads_raw_properties_for_the_rules(make_ops_app):
    app = make_ops_app(
        config_data(
            flow=[
                {
                    "name": "partners",
                    "when": {"raw.partner_tier": "gold"},
                    "assign": {"rep": "chen"},
                },
                {"name": "everyone", "assign": {"pool": "team"}},
            ]
        )
    )
    client = app.test_client()
    sign_in(client)
    answer = try_lead(client, raw="partner_tier = gold\nraw.region=EMEA", at="2026-11-24T10:00")
    assert "rule</dt><dd>partners</dd>" in answer.text
    assert "<h3>chen" in answer.text


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"employees": "lots"}, "employees"),
        ({"score": "1e999"}, "score"),
        ({"crm": "pipedrive"}, "crm"),
        ({"raw": "just words"}, "raw line 1"),
        ({"raw": "country=US"}, "raw line 1"),
        ({"at": "next tuesday"}, "at"),
        ({"at": "9999-12-31T23:00"}, "at"),
    ],
)
def test_try_a_lead_names_the_field_that_is_wrong(team_app, form, field):
    client = team_app.test_client()
    sign_in(client)
    answer = try_lead(client, **form)
    assert answer.status_code == 400
    assert f'<p class="problem" role="alert">{field}: ' in answer.text
    assert 'id="decision"' not in answer.text
    # The form comes back as it was sent, to be corrected.
    for name, value in form.items():
        if name != "crm":  # a choice of a list that has no such entry
            assert value.split("\n")[0] in answer.text


def test_try_a_lead_escapes_what_it_shows(team_app):
    client = team_app.test_client()
    sign_in(client)
    answer = try_lead(client, id="<script>alert(1)</script>", company="<b>x</b>")
    assert "<script>alert(1)</script>" not in answer.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text


def test_no_form_value_makes_a_server_error(team_app):
    client = team_app.test_client()
    sign_in(client)
    token = csrf_of(client.get("/ops/rules").text)
    hostile = ["\x00", "x" * 10_000, "1e999", "NaN", "-inf", "2026-02-30", "∞", "a=b=c\n=d"]
    for name in ("id", "crm", "employees", "score", "annual_revenue", "at", "raw", "email"):
        for value in hostile:
            answer = client.post("/ops/rules", data={"csrf_token": token, name: value})
            assert answer.status_code in (200, 400), (name, value)
