"""The assignment log in the console (``/ops``) and the API (``/api/assignments``, its CSV):
newest first, every filter, cursor paging, the whole decision, bad filters named."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from conftest import TUESDAY_10AM, config_data, lead, rep
from ops_helpers import (
    BEARER,
    make_ops_app,  # noqa: F401 (fixture)
    ops_env,  # noqa: F401 (fixture)
    sign_in,
)

from connector import ops_assignments
from connector.ops_filters import PARAMETERS
from connector.shared import services_of

T0 = TUESDAY_10AM
BOB_SF = "005000000000002AAA"
LOG = config_data(
    reps=[
        rep(name, name=full, hubspot_owner_id=f"10{n}", salesforce_user_id=f"005{n:012d}AAA")
        for n, (name, full) in enumerate(
            [("alice", "Alice Ng"), ("bob", "Bob Marsh"), ("chen", "Chen Li")], start=1
        )
    ],
    pools={"team": {"members": ["alice", "bob", "chen"], "strategy": "round_robin"}},
    flow=[
        {
            "name": "enterprise",
            "when": {"employees": {"gte": 1000}},
            "flow": [{"name": "na", "assign": {"pool": "team"}}],
        },
        {"name": "everyone", "assign": {"pool": "team"}},
    ],
    sla={"first_touch": "15m", "clock": "wall", "max_reassignments": 2},
)


@pytest.fixture
def log_app(make_ops_app):
    """Seven decisions, one a minute from T0: ids 1..7."""
    app = make_ops_app(LOG)
    services = services_of(app)
    router, store = services.router, services.store
    made = [
        (lead("H1", crm="hubspot", object_type="contact", employees=5000), "hubspot"),  # alice
        (lead("S1", crm="salesforce", object_type="lead"), "salesforce"),  # bob
        (lead("F1", crm="salesforce", object_type="lead"), "salesforce-flow"),  # chen
        (lead("H1", crm="hubspot", object_type="contact", owner="101"), "sweep"),  # alice->bob
        (lead("S1", crm="salesforce", object_type="lead", owner=BOB_SF), "reassign"),  # bob->chen
        (lead('=HYPERLINK("http://x")', crm="hubspot", object_type="contact"), "hubspot"),
    ]
    for minute, (one, source) in enumerate(made):
        away = frozenset(r.id for r in [services.config.rep_by_crm_id(one.crm, one.owner)] if r)
        router.route(one, T0 + timedelta(minutes=minute), source=source, exclude=away)
    router.route(
        lead("K1", crm="hubspot", object_type="contact", owner="103"),
        T0 + timedelta(days=1),
        source="hubspot",
        keep_reason="owned by a rep: kept",
    )
    store.set_writebacks({1: ("failed", "HubSpot answered 503")}, T0 + timedelta(minutes=1))
    store.record_outcomes({1: {"contacted_at": (T0 + timedelta(minutes=6)).isoformat()}})
    return app


def api(app, query=""):
    answer = app.test_client().get(f"/api/assignments{query}", headers=BEARER)
    assert answer.status_code == 200, answer.json
    return answer.json


def ids(app, query=""):
    return [item["id"] for item in api(app, query)["assignments"]]


def test_the_api_answers_newest_first_with_the_whole_record(log_app):
    answer = api(log_app)
    assert [a["id"] for a in answer["assignments"]] == [7, 6, 5, 4, 3, 2, 1]
    assert answer["next"] is None
    first = answer["assignments"][-1]
    assert (first["lead_id"], first["new_owner"], first["source"]) == ("H1", "alice", "hubspot")
    assert first["decision"]["rule"] == "enterprise/na"
    assert first["writeback"]["status"] == "failed"
    assert first["writeback"]["attempts"] == 1
    assert first["outcomes"]["contacted_at"].startswith("2026-11-24T15:06")
    assert first["extra"]["sla"]["status"] == "open"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?rep=alice", [6, 4, 1]),  # given to alice, or taken from her
        ("?rep=chen", [7, 5, 3]),
        ("?rule=enterprise", [1]),
        ("?rule=enterprise/na", [1]),
        ("?rule=enter", []),  # a rule and the rules under it, not a prefix of its name
        ("?outcome=kept", [7]),
        ("?outcome=assigned", [6, 5, 4, 3, 2, 1]),
        ("?source=flow", [3]),
        ("?source=salesforce-flow", [3]),
        ("?source=sweep", [4]),
        ("?source=reassign", [5]),
        ("?source=hubspot", [7, 6, 1]),
        ("?crm=salesforce", [5, 3, 2]),
        ("?object=contact", [7, 6, 4, 1]),
        ("?object=deal", []),  # a kind leadrelay routes, none in this log
        ("?crm=hubspot&rep=bob", [4]),
        ("?since=2026-11-24T10:02", [7, 6, 5, 4, 3]),
        ("?until=2026-11-24T10:02", [2, 1]),
        ("?since=2026-11-25", [7]),  # a date: local midnight in app.yaml's timezone
        ("?until=2026-11-24", [6, 5, 4, 3, 2, 1]),  # a date: to the end of that day
        ("?since=2026-11-24T10:01&until=2026-11-24T10:03&source=", [3, 2]),  # blank: any
    ],
)
def test_each_filter_narrows_the_log(log_app, query, expected):
    assert ids(log_app, query) == expected


def test_a_rep_no_longer_in_app_yaml_can_still_be_searched(log_app, make_ops_app):
    assert ids(log_app, "?rep=zed") == []
    page = log_app.test_client().get("/ops?rep=zed", headers=BEARER)
    assert page.status_code == 200
    assert "rep &#39;zed&#39; is not in app.yaml: showing the records that name them" in page.text
    # chen leaves the team: the log still answers for chen.
    without_chen = {**LOG, "reps": LOG["reps"][:2]}
    without_chen["pools"] = {"team": {"members": ["alice", "bob"], "strategy": "round_robin"}}
    later = make_ops_app(without_chen)
    assert ids(later, "?rep=chen") == [7, 5, 3]


def test_cursor_paging_walks_the_whole_log_once(log_app):
    seen, before = [], None
    while True:
        page = api(log_app, "?limit=3" + (f"&before={before}" if before else ""))
        seen += [item["id"] for item in page["assignments"]]
        before = page["next"]
        if before is None:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    assert api(log_app, "?rep=chen&limit=2")["next"] == 5
    assert ids(log_app, "?rep=chen&limit=2&before=5") == [3]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("?rep=" + "z" * 201, "rep"),
        ("?outcome=won", "outcome"),
        ("?source=email", "source"),
        ("?crm=pipedrive", "crm"),
        ("?object=invoice", "object"),
        ("?since=last+tuesday", "since"),
        ("?until=2026-13-01", "until"),
        ("?since=2026-11-25&until=2026-11-24", "until"),
        ("?before=-1", "before"),
        ("?before=abc", "before"),
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?limit=%EF%BC%95", "limit"),  # a full-width digit
        ("?rpe=alice", "rpe"),
        ("?until=9999-12-31", "until"),
    ],
)
def test_a_bad_filter_is_400_naming_the_parameter(log_app, query, parameter):
    answer = log_app.test_client().get(f"/api/assignments{query}", headers=BEARER)
    assert answer.status_code == 400
    assert answer.json["error"].startswith(f"{parameter}: ")
    csv_answer = log_app.test_client().get(f"/api/assignments.csv{query}", headers=BEARER)
    assert csv_answer.status_code == 400
    page = log_app.test_client().get(f"/ops{query}", headers=BEARER)
    assert page.status_code == 400
    assert page.mimetype == "text/html"
    assert f'<p class="problem" role="alert">{parameter}: ' in page.text


def test_the_log_page_shows_each_row_and_expands_to_the_whole_decision(log_app):
    client = log_app.test_client()
    sign_in(client)
    page = client.get("/ops")
    assert page.status_code == 200
    text = page.text
    order = [text.index(f'id="a{n}"') for n in (7, 6, 5, 4, 3, 2, 1)]
    assert order == sorted(order)
    sweep = text[text.index('id="a4"') : text.index('id="a3"')]
    assert '<span class="owners">Alice Ng → <strong>Bob Marsh</strong></span>' in sweep
    assert '<span class="source">sweep</span>' in sweep
    assert '<span class="what">hubspot contact <code>H1</code></span>' in sweep
    flow = text[text.index('id="a3"') : text.index('id="a2"')]
    assert '<span class="source">flow</span>' in flow
    first = text[text.index('id="a1"') :]
    assert '<span class="when">2026-11-24 10:00:00</span>' in first
    assert '<span class="rule">enterprise/na</span>' in first
    assert "<dt>strategy</dt><dd>round_robin in pool team</dd>" in first
    assert "<dt>candidates</dt><dd>alice</dd>" in first
    assert '<span class="owners">no owner → <strong>Alice Ng</strong></span>' in first
    assert "failed, 1 attempt: HubSpot answered 503 (last 2026-11-24T15:01:00+00:00)" in first
    assert "<li>status: open</li>" in first and "<li>clock: wall</li>" in first
    assert "<li>contacted: 2026-11-24T15:06:00+00:00</li>" in first
    kept = text[text.index('id="a7"') : text.index('id="a6"')]
    assert "owned by a rep: kept" in kept


@pytest.mark.parametrize("path", ["/ops", "/ops/", "/ops/assignments"])
def test_the_log_page_answers_at_each_of_its_addresses(log_app, path):
    page = log_app.test_client().get(path, headers=BEARER)
    assert page.status_code == 200
    assert "<h1>Assignments</h1>" in page.text


def test_the_log_page_filters_by_a_form_and_pages_with_an_older_link(log_app):
    client = log_app.test_client()
    sign_in(client)
    page = client.get("/ops?rep=chen&limit=2&source=")
    text = page.text
    assert 'id="a7"' in text and 'id="a5"' in text and 'id="a3"' not in text
    assert '<option value="chen" selected>Chen Li</option>' in text
    paths = '<option value="enterprise"><option value="enterprise/na"><option value="everyone">'
    assert paths in text
    older = text[text.index('<p class="paging"><a href="') + 27 :].split('"')[0]
    assert older == "?rep=chen&amp;limit=2&amp;before=5"
    rest = client.get("/ops" + older.replace("&amp;", "&")).text
    assert 'id="a3"' in rest and 'id="a5"' not in rest
    assert 'rel="next"' not in rest
    assert "No assignments match." in client.get("/ops?rule=nothing-like-it").text


def test_the_csv_streams_every_matching_record_with_formula_safe_cells(log_app, monkeypatch):
    monkeypatch.setattr(ops_assignments, "CSV_BATCH", 2)  # several pages of the store
    answer = log_app.test_client().get("/api/assignments.csv", headers=BEARER)
    assert answer.status_code == 200
    assert answer.is_streamed
    assert answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [int(row["id"]) for row in rows] == [7, 6, 5, 4, 3, 2, 1]
    assert rows[1]["lead_id"] == '\'=HYPERLINK("http://x")'
    assert rows[-1]["writeback"] == "failed" and rows[-1]["sla_status"] == "open"
    assert answer.text.splitlines()[0].startswith('"id","decided_at","crm"')
    chen = log_app.test_client().get("/api/assignments.csv?rep=chen", headers=BEARER).text
    assert [row["id"] for row in csv.DictReader(io.StringIO(chen))] == ["7", "5", "3"]


def test_the_page_and_the_csv_escape_what_the_crm_sent(log_app):
    client = log_app.test_client()
    services_of(log_app).router.route(
        lead("<img src=x onerror=alert(1)>", crm="hubspot", object_type="contact"), T0
    )
    text = client.get("/ops", headers=BEARER).text
    assert "<img src=x" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text


def test_a_lone_surrogate_from_a_crm_shows_as_a_replacement_character(log_app):
    # CRMs let them through and the store keeps them; UTF-8 cannot encode them.
    services_of(log_app).router.route(lead("\ud800x", crm="hubspot", object_type="contact"), T0)
    client = log_app.test_client()
    page = client.get("/ops", headers=BEARER)
    assert page.status_code == 200
    assert "<code>\ufffdx</code>" in page.text
    assert client.get("/api/assignments", headers=BEARER).json["assignments"][0]["lead_id"] == (
        "\ud800x"
    )
    csv_text = client.get("/api/assignments.csv", headers=BEARER).text
    assert '"\ufffdx"' in csv_text


HOSTILE = [
    "\x00", "x" * 10_000, "%", "1e9", "-0", "0x10", " 9 ", "NaN", "2026-02-30",
    "2026-11-24T25:00", "in 3000d", "99999999999999999999999", "∞", "<script>", "\ufffd",
]  # fmt: skip


def test_no_filter_value_makes_a_server_error(log_app):
    client = log_app.test_client()
    sign_in(client)
    for name in (*PARAMETERS, "unknown"):
        for value in HOSTILE:
            for path in ("/ops", "/api/assignments", "/api/assignments.csv"):
                answer = client.get(path, query_string={name: value})
                answer.get_data()  # the CSV streams: read it all
                assert answer.status_code in (200, 400), (path, name, value)
                assert value not in answer.text or len(value) < 50  # never echoed whole
