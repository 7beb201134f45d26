"""The console's statistics pages and ``GET /api/stats``, read as a person (HTML tables) and as
a script (JSON) would, from a store populated by routing real leads, two SLA sweeps, a failed
write-back and recorded outcomes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
import time_machine
from conftest import TUESDAY_10AM, config_data, rep
from fakes.webhooks import WebhookReceiver, webhook_receiver  # noqa: F401 (fixture)
from flask.testing import FlaskClient
from sweep_helpers import OWNER_IDS, MemoryCrm, sla_config_data

from connector import metrics
from connector.app import create_app
from connector.charts import Bar, bar_chart
from connector.ops_health import SWEEP_LAST, notifier_deliveries, without_secrets
from connector.shared import services_of
from connector.sweep_cli import locked_sweep
from workflows.config_builder import build_config
from workflows.delivery import Inbound, deliver
from workflows.model import Lead
from workflows.router import Router
from workflows.sqlite_store import SqliteStore
from workflows.sweep_model import SweepAction

TOKEN = "ops-token-for-the-stats-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = TUESDAY_10AM  # 10:00 in New York, app.yaml's timezone
NOW = T0 + timedelta(minutes=68)
PAGES = ("/ops/distribution", "/ops/sla", "/ops/outcomes", "/ops/health", "/api/stats")


class Tables(HTMLParser):
    """Every ``<table id=...>`` of a page as rows of cell texts, as a person reads them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs).get("id") or "", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def rows(self, table: str) -> dict[str, list[str]]:
        """The table's rows by their first cell."""
        return {row[0]: row[1:] for row in self.tables[table] if row}


def page(client: FlaskClient, url: str) -> Tables:
    answer = client.get(url, headers=AUTH)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return Tables(answer.get_data(as_text=True))


@dataclass
class Team:
    client: FlaskClient
    rotated: dict[str, str]  # lead id -> the rep the first sweep rotated it to
    sent_before: float  # webhook deliveries the process had sent before (counters are global)


@pytest.fixture
def team(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, webhook_receiver: WebhookReceiver
) -> Iterator[Team]:
    """Ten HubSpot contacts routed round robin to alice, bob, chen and dana at 10:00; four
    touched in time; two sweeps rotate, then escalate to maria, what nobody touched; one more
    lead passes its deadline unswept; one write-back fails; two contacts convert."""
    monkeypatch.setenv("LEADRELAY_OPS_TOKEN", TOKEN)
    data = sla_config_data(max_reassignments=1)
    data["notify"] = [{"url": webhook_receiver.url, "events": ["reassigned", "escalated"]}]
    config = build_config(data, source=tmp_path / "app.yaml")
    store = SqliteStore(tmp_path / "store.sqlite")
    with time_machine.travel(NOW, tick=False):
        app = create_app(config, store)
        services = services_of(app)
        sent_before = notifier_deliveries(metrics.current)["sent"]
        router, crm = services.router, MemoryCrm()
        owners = {}
        for n in range(1, 9):
            lead = Lead(id=f"C{n}", crm="hubspot", object_type="contact")
            result = router.route(lead, T0, source="hubspot", idempotency_key=f"cb-C{n}")
            owners[lead.id] = result.decision.rep_id
            crm.add(lead.id, OWNER_IDS[str(result.decision.rep_id)])
        assert list(owners.values()) == ["alice", "bob", "chen", "dana"] * 2
        for lead_id, minutes in (("C1", 5), ("C2", 7), ("C3", 3), ("C5", 9)):
            crm.touch(lead_id, T0 + timedelta(minutes=minutes))
        actions: list[SweepAction] = []
        readers = {"hubspot": crm}
        locked_sweep(router, readers, T0 + timedelta(minutes=20), services.notifier, actions.append)
        rotated = {a.lead_id: str(a.new_owner) for a in actions if a.action == "rotated"}
        assert rotated == {"C4": "alice", "C6": "chen", "C7": "dana", "C8": "alice"}
        crm.touch("C4", T0 + timedelta(minutes=30))  # its new owner calls, 10 minutes in
        locked_sweep(router, readers, T0 + timedelta(minutes=40), services.notifier)
        late = Lead(id="C9", crm="hubspot", object_type="contact")
        late_result = router.route(late, T0 + timedelta(minutes=50), source="hubspot")
        crm.fail_writes = True
        refused = Lead(id="C10", crm="hubspot", object_type="contact")
        failed = deliver(
            router,
            [Inbound(refused, "cb-C10")],
            T0 + timedelta(minutes=58),
            source="hubspot",
            write=crm.writer(),
        )
        assert failed[0].status == "failed"
        ids = {r.lead_id: r.id for r in store.log() if r.source == "hubspot"}
        rotation_of_c4 = next(
            r.id for r in store.log() if r.lead_id == "C4" and r.new_owner == "alice"
        )
        # What the CRM showed (the sweep records the contacts it settles too: first time wins).
        store.record_outcomes(
            {
                ids["C1"]: {"contacted_at": _iso(5), "converted_at": _iso(20)},
                ids["C2"]: {"contacted_at": _iso(7)},
                ids["C3"]: {"contacted_at": _iso(3), "converted_at": _iso(45)},
                ids["C5"]: {"contacted_at": _iso(9)},
                rotation_of_c4: {"contacted_at": _iso(30)},
            }
        )
        assert late_result.decision.rep_id == "bob"  # past its deadline at NOW
        yield Team(app.test_client(), rotated, sent_before)
    services.close()


def _iso(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


# --- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", PAGES)
def test_no_statistics_without_the_ops_token(team: Team, url: str) -> None:
    anonymous = team.client.get(url)
    # A browser asking for a page may be sent to sign in instead; it never sees the numbers.
    sent_to_sign_in = anonymous.status_code == 302 and "sign-in" in anonymous.location
    assert anonymous.status_code == 401 or (url.startswith("/ops/") and sent_to_sign_in)
    wrong = team.client.get(url, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    assert "alice" not in anonymous.get_data(as_text=True) + wrong.get_data(as_text=True)


# --- the numbers -----------------------------------------------------------------------------


def test_distribution_shows_each_reps_leads_beside_the_pools_target_share(team: Team) -> None:
    tables = page(team.client, "/ops/distribution?period=today")
    reps = tables.rows("reps")
    # alice: C1 C5, rotated C4 C8; bob: C2 C6, C9; chen: C3 C7, rotated C6, C10;
    # dana: C4 C8, rotated C7; maria: the three escalations. Today, this week, this month.
    assert reps["alice"] == ["4", "4", "4"]
    assert reps["bob"] == ["3", "3", "3"]
    assert reps["chen"] == ["4", "4", "4"]
    assert reps["dana"] == ["3", "3", "3"]
    assert reps["maria"] == ["3", "3", "3"]
    assert reps["All"] == ["17", "17", "17"]
    pool = tables.rows("pool-team")  # maria is in no pool: 14 leads among its members
    assert pool["alice"] == ["4", "4", "4", "29%", "25%"]  # 4 of 14; round robin: 1 in 4
    assert pool["bob"][-2:] == ["21%", "25%"]
    chart = team.client.get("/ops/distribution?period=today", headers=AUTH).get_data(True)
    assert chart.count("<svg") == 2  # every rep, and the pool
    assert "4 leads, 29% (target 25%)" in chart


def test_sla_page_shows_touch_times_rotations_escalations_and_open_breaches(team: Team) -> None:
    sla = page(team.client, "/ops/sla").rows("sla")
    # Columns: leads, under an SLA, median time to first touch, p90, rotated away, escalated
    # away, escalations received, breaches open now.
    alice = sla["alice"]
    # C1 touched after 5 minutes, C5 after 9, the rotated C4 10 minutes after the rotation.
    assert alice[2].startswith("9m 00s") and "n=3" in alice[2] and "too few" in alice[2]
    assert alice[3] == "9m 48s"  # p90 of 300, 540, 600 s: 540 + 0.8 * 60
    assert alice[4:7] == ["1", "1", "0"]  # C8, rotated to her, escalated
    assert sla["bob"][4:8] == ["1", "0", "0", "1"]  # C6 rotated away; C9 past its deadline
    assert sla["chen"][4:8] == ["2", "1", "0", "0"]  # C7 rotated, C6 escalated
    assert sla["dana"][4:8] == ["3", "1", "0", "0"]  # C4 and C8 rotated, C7 escalated
    assert sla["maria"][4:8] == ["0", "0", "3", "0"]


def test_outcomes_per_source_with_counts_intervals_and_the_window(team: Team) -> None:
    rows = page(team.client, "/ops/outcomes?group=source&window=30m").rows("outcomes")
    # Columns: leads, contacted, median time to first touch, converted, converted too recently.
    hubspot = rows["hubspot"]
    assert hubspot[0] == "10"
    assert hubspot[1].startswith("40% (17%–69%) n=10")  # Wilson interval of 4 in 10
    assert "too few to judge" in hubspot[1]
    assert hubspot[2].startswith("6m 00s")  # median of 3, 5, 7, 9 minutes
    # Decided 30 minutes ago or more: C1-C8; converted within 30 minutes: C1 only (C3 at 45).
    assert hubspot[3].startswith("12% (2%–47%) n=8")  # 12.5%, rounded half to even
    assert hubspot[4] == "0"
    assert rows["sweep"][:2] == ["7", "14% (3%–51%) n=7 too few to judge"]  # C4, rotated
    wider = page(team.client, "/ops/outcomes?group=source&window=1h").rows("outcomes")
    assert wider["hubspot"][3].startswith("25% (7%–59%) n=8")  # C3 converted within the hour


def test_outcomes_per_rep_and_per_rule(team: Team) -> None:
    by_rep = page(team.client, "/ops/outcomes?group=rep").rows("outcomes")
    assert by_rep["alice"][0] == "4"
    assert by_rep["alice"][1].startswith("75% (30%–95%) n=4")  # C1, C5 and C4 of her four
    assert by_rep["alice"][2].startswith("9m 00s")
    by_rule = page(team.client, "/ops/outcomes?group=rule").rows("outcomes")
    assert list(by_rule) == ["Rule", "everyone"]  # the sweep's decisions keep the lead's rule
    assert by_rule["everyone"][0] == "17"


def test_health_shows_failed_write_backs_deliveries_last_sweep_and_config(team: Team) -> None:
    # Four rotations and three escalations were announced; the notifier posts in the background.
    sent = f"{team.sent_before + 7:.0f} since the server started"
    deadline = time.monotonic() + 10
    health = page(team.client, "/ops/health").rows("health")
    while health["Notifier deliveries sent"] != [sent] and time.monotonic() < deadline:
        time.sleep(0.05)
        health = page(team.client, "/ops/health").rows("health")
    assert health["Notifier deliveries sent"] == [sent]
    assert "Notifier deliveries failed" in health and "Notifier deliveries retried" in health
    failures = health["Write-backs failed, waiting for a retry"][0]
    assert failures.startswith("1 (oldest decided 2026-11-24 15:58 UTC)")
    last = health["Last sweep"][0]  # the second sweep, recorded by the sweep itself
    assert last.startswith("started 2026-11-24 16:08:00 UTC, took")
    assert last.endswith("contacted 1, escalated 3")
    config = services_of(team.client.application).config
    assert health["Config version"] == [config.version]
    assert health["Store"][0].startswith("sqlite:///")


def test_api_stats_gives_every_view_as_json(team: Team) -> None:
    answer = team.client.get("/api/stats?window=30m&since=2026-11-24", headers=AUTH)
    assert answer.status_code == 200
    stats = answer.get_json()
    assert stats["window_s"] == 1800
    assert stats["distribution"]["totals"] == {"today": 17, "week": 17, "month": 17}
    hubspot = next(r for r in stats["outcomes"]["source"] if r["key"] == "hubspot")
    assert hubspot["converted"] == {
        "hits": 1,
        "count": 8,
        "rate": 0.125,
        "low": pytest.approx(0.0224, abs=1e-4),
        "high": pytest.approx(0.4709, abs=1e-4),
        "judged": False,
    }
    assert stats["health"]["writebacks"]["failed"] == 1
    assert stats["health"]["last_sweep"]["run"]["counts"]["escalated"] == 3
    assert {row["rep"] for row in stats["sla"]} >= {"alice", "bob", "chen", "dana", "maria"}


def test_since_leaves_out_what_was_decided_before(team: Team) -> None:
    stats = team.client.get("/api/stats?since=2026-11-24T10:30", headers=AUTH).get_json()
    leads = {row["key"]: row["leads"] for row in stats["outcomes"]["source"]}
    assert leads == {"hubspot": 2, "sweep": 3}  # C9, C10 and the 10:40 escalations


# --- bad parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("/api/stats?window=0d", "window"),
        ("/api/stats?window=soon", "window"),
        ("/api/stats?window=99999999999999d", "window"),
        ("/api/stats?window=400d", "window"),
        ("/api/stats?since=tomorrow", "since"),
        ("/api/stats?since=in 2h", "since"),
        ("/api/stats?since=1d&since=2d", "since"),
        ("/api/stats?sinse=1d", "sinse"),
        ("/ops/outcomes?group=team", "group"),
        ("/ops/outcomes?window=-1d", "window"),
        ("/ops/distribution?period=year", "period"),
        ("/ops/sla?since=2026-13-01", "since"),
    ],
)
def test_a_bad_parameter_is_refused_naming_it(team: Team, url: str, named: str) -> None:
    answer = team.client.get(url, headers=AUTH)
    assert answer.status_code == 400
    assert named in answer.get_data(as_text=True)
    assert "Traceback" not in answer.get_data(as_text=True)


# --- hostile names and stored values ---------------------------------------------------------


def test_chart_labels_are_escaped() -> None:
    svg = bar_chart([Bar('<script>alert("x")</script>', 2, "2 & <b>3</b>", 1)], title="A<B")
    assert "<script>" not in svg and "<b>" not in svg
    assert "&lt;script&gt;" in svg and "2 &amp; &lt;b&gt;3&lt;/b&gt;" in svg
    assert "<title>A&lt;B</title>" in svg


def test_a_rep_named_like_markup_shows_as_text(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADRELAY_OPS_TOKEN", TOKEN)
    hostile = '<img src=x onerror="alert(1)">'
    data = config_data(reps=[rep("alice", name=hostile)], pools={}, fallback={"rep": "alice"})
    data["flow"] = []
    config = build_config(data, source=tmp_path / "app.yaml")
    store = SqliteStore(tmp_path / "store.sqlite")
    app = create_app(config, store)
    Router(config, store).route(Lead(id="L1"), datetime.now(UTC), source="api")
    for url in ("/ops/distribution", "/ops/sla", "/ops/outcomes"):
        html = app.test_client().get(url, headers=AUTH).get_data(as_text=True)
        assert "<img" not in html and "&lt;img src=x" in html, url
    services_of(app).close()


def test_an_unreadable_last_sweep_is_reported_not_a_crash(team: Team) -> None:
    store = services_of(team.client.application).store
    with store.shared_value(SWEEP_LAST) as value:
        value.write(b"{not json")
    health = page(team.client, "/ops/health").rows("health")
    assert health["Last sweep"][0].startswith("sweep:last is not a sweep summary")


def test_the_store_is_shown_without_its_secrets() -> None:
    shown = without_secrets("postgresql://lead:s3cret@db:5432/lr?sslmode=require&sslpassword=p")
    assert shown == "postgresql://lead:***@db:5432/lr?sslmode=require&sslpassword=***"
    assert without_secrets("sqlite:////var/lib/leadrelay.sqlite") == (
        "sqlite:////var/lib/leadrelay.sqlite"
    )
