"""The console as a person uses it: Debian's chromium, driven headless by Playwright, against a
real ``leadrelay serve`` (gunicorn) over a populated store.

Sign in, filter the log by rep, open a decision, try a lead, sign out, and read the log with
JavaScript off; read the distribution chart's numbers and one fact from each statistics page:
each step checks what is on the screen against what the test itself routed. Two gunicorn
workers serve it, so the session cookie one signs is read by the other. The run saves a
screenshot of the log (``docs/console.png`` for the README when ``LEADRELAY_SCREENSHOT`` is
set, or when that file is missing).

Chromium comes from Debian (``make test`` installs it as root when missing), never from
Playwright's own download. Without it the test is skipped on a developer's machine and fails
in CI (``CI=true``), so a green CI run has really driven a browser.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from conftest import REPO, lead, rep
from served import serving

from connector.services import build_services
from workflows.config_loader import load_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "browser-test-token-5d1c93"
SCREENSHOT = REPO / "docs" / "console.png"

TEAM = {
    "store": "sqlite:///state.sqlite",
    "timezone": "America/New_York",
    "reps": [
        rep("alice", name="Alice Ng", hubspot_owner_id="101"),
        rep("bob", name="Bob Marsh", hubspot_owner_id="102", out_of_office=["2026-11-25"]),
        rep("chen", name="Chen Li", hubspot_owner_id="103", daily_cap=4),
        rep("rosa", name="Rosa Alvarez", hubspot_owner_id="104", languages=["es"]),
    ],
    "pools": {
        "na-smb": {"members": ["alice", "bob", "chen"], "strategy": "round_robin"},
        "spanish": {"members": ["rosa"], "strategy": "first_available"},
    },
    "flow": [
        {
            "name": "spanish",
            "when": {"language": "es"},
            "assign": {"pool": "spanish", "else": {"pool": "na-smb"}},
        },
        {
            "name": "enterprise",
            "when": {"employees": {"gte": 1000}},
            "assign": {"rep": "chen", "else": {"pool": "na-smb"}},
        },
        {"name": "everyone", "assign": {"pool": "na-smb"}},
    ],
    "fallback": {"rep": "alice"},
    # A first-touch SLA far in the future: every row has SLA state, and no sweep moves them.
    "sla": {"first_touch": "3650d", "clock": "wall"},
}
NEW_YORK = ZoneInfo("America/New_York")
LEADS = 24
SPACING = timedelta(minutes=17)  # 24 leads from 10:00 to 16:31, all in one New York day
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne"]


def chromium_or_skip() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    message = (
        f"the console's browser test needs Debian's chromium at {CHROMIUM}: "
        "`make test` installs it as root (apt-get install -y chromium)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True)
class Console:
    """The served console: its base URL, and who the test's routing gave each lead, when."""

    base: str
    routed: list[tuple[str, datetime]]


def first_lead_at(now: datetime) -> datetime:
    """10:00 in New York on the latest day whose leads are all decided by ``now`` (today from
    17:00, else yesterday): recent, so the statistics pages (today, this week, the last 30
    days) count them, and all in one day, so a daily cap fills."""
    local = now.astimezone(NEW_YORK)
    day = local.date() if local.hour >= 17 else local.date() - timedelta(days=1)
    return datetime.combine(day, time(10), NEW_YORK)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """A served leadrelay with 24 decisions in its log."""
    path = tmp_path_factory.mktemp("console") / "app.yaml"
    path.write_text(yaml.safe_dump(TEAM, sort_keys=False))
    services = build_services(load_config(path), env={})
    first = first_lead_at(datetime.now(UTC))
    routed = []
    try:
        for n in range(LEADS):
            spanish = n % 5 == 0
            one = lead(
                f"{9100 + n}",
                crm="hubspot",
                object_type="contact",
                email=f"buyer{n}@{COMPANIES[n % 8].lower()}.example",
                company=COMPANIES[n % 8],
                employees=5000 if n % 7 == 3 else 40,
                language="es" if spanish else None,
            )
            when = first + SPACING * n
            result = services.router.route(one, when, source="hubspot")
            assert result.decision.rep_id is not None
            routed.append((result.decision.rep_id, when))
        failed = {3: ("failed", "HubSpot answered 503; retrying")}
        services.store.set_writebacks(failed, first)
    finally:
        services.close()
    env = {**os.environ, "LEADRELAY_OPS_TOKEN": TOKEN}
    env.pop("LEADRELAY_SANDBOX", None)
    # Two workers: a session signed by one is read by the other, as behind any real server.
    with serving(path, env, workers=2) as served:
        yield Console(served.base, routed)
    assert "ops console: on at /ops (sign in with LEADRELAY_OPS_TOKEN)" in served.output
    assert TOKEN not in served.output


def test_an_ops_person_signs_in_filters_opens_a_decision_and_tries_a_lead(console, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    chromium = chromium_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(15_000)

            # Not signed in: the console sends the browser to its sign-in form.
            page.goto(f"{console.base}/ops/reps")
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            page.get_by_label("Console token").fill("not the token")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("alert")).to_contain_text("is not right")
            page.get_by_label("Console token").fill(TOKEN)
            page.get_by_role("button", name="Sign in").click()
            # ... and back to the page first asked for.
            expect(page.get_by_role("heading", name="Who can take leads now")).to_be_visible()
            expect(page.locator("#rep-rosa")).to_contain_text("Rosa Alvarez")

            # The log, newest first; filtered by rep with the form.
            page.get_by_role("link", name="Assignments").click()
            expect(page.get_by_role("heading", name="Assignments")).to_be_visible()
            assert page.locator("li.assignment").count() == 24
            newest = page.locator("li.assignment").first
            newest.locator("summary").click()
            opened = newest.locator("dl.decision")
            expect(opened.locator("dt", has_text="skipped Chen Li")).to_be_visible()
            expect(opened).to_contain_text("daily cap reached: 4 of 4 today")
            page.screenshot(path=str(tmp_path / "console.png"))
            page.get_by_label("rep").select_option(label="Chen Li")
            page.get_by_role("button", name="Filter").click()
            assert "rep=chen" in page.url
            rows = page.locator("li.assignment")
            count = rows.count()
            assert 0 < count < 24
            for i in range(count):
                expect(rows.nth(i).locator(".owners")).to_contain_text("Chen Li")

            # A decision opens to the whole story; closed, its details are hidden.
            enterprise = rows.filter(has_text="enterprise").first
            details = enterprise.locator("dl.decision")
            expect(details).to_be_hidden()
            enterprise.locator("summary").click()
            expect(details).to_be_visible()
            expect(details).to_contain_text("why")
            expect(details).to_contain_text("enterprise: rep chen")
            expect(details).to_contain_text("status: open")
            expect(details).to_contain_text("write-back")

            # Try a lead: the decision path, as the router would decide it now.
            page.get_by_role("link", name="Rules").click()
            expect(page.locator("#rule-spanish")).to_contain_text("else")
            form = page.locator("form.try-lead")
            form.get_by_label("language", exact=True).fill("es")
            form.get_by_label("email", exact=True).fill("ana@example.es")
            form.get_by_label("at", exact=True).fill("2026-11-24T11:00")
            form.get_by_role("button", name="Try it").click()
            decision = page.locator("#decision")
            expect(decision).to_contain_text("Rosa Alvarez")
            expect(decision).to_contain_text("spanish: pool spanish (first_available) chose rosa")

            # Nothing the try did shows in the log.
            page.get_by_role("link", name="Assignments").click()
            assert page.locator("li.assignment").count() == 24

            # Signing out ends it: the console asks to sign in again.
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            page.goto(f"{console.base}/ops")
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            # With JavaScript off, the log still reads and a decision still opens.
            plain = browser.new_context(java_script_enabled=False).new_page()
            plain.goto(f"{console.base}/ops/sign-in")
            plain.get_by_label("Console token").fill(TOKEN)
            plain.get_by_role("button", name="Sign in").click()
            plain.goto(f"{console.base}/ops?source=hubspot&rule=enterprise")
            rows = plain.locator("li.assignment")
            assert rows.count() > 0
            rows.first.locator("summary").click()
            expect(rows.first.locator("dl.decision")).to_contain_text("candidates")
        finally:
            browser.close()
    if os.environ.get("LEADRELAY_SCREENSHOT") or not SCREENSHOT.exists():
        shutil.copyfile(tmp_path / "console.png", SCREENSHOT)


PERIODS = ("today", "week", "month")  # the distribution table's columns, in order
NAMES = {spec["id"]: spec["name"] for spec in TEAM["reps"]}
NA_SMB = TEAM["pools"]["na-smb"]["members"]


def counts_by_period(routed: list[tuple[str, datetime]], now: datetime) -> dict[str, Counter[str]]:
    """Each rep's leads decided today, this week (from Monday) and this month, in New York."""
    local = now.astimezone(NEW_YORK)
    today = datetime.combine(local.date(), time(0), NEW_YORK)
    starts = {
        "today": today,
        "week": today - timedelta(days=local.weekday()),
        "month": today.replace(day=1),
    }
    return {
        period: Counter(rep_id for rep_id, when in routed if when >= start)
        for period, start in starts.items()
    }


def test_an_ops_person_reads_the_distribution_and_every_statistics_page(console, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    chromium = chromium_or_skip()
    expected = counts_by_period(console.routed, datetime.now(UTC))
    everything = Counter(rep_id for rep_id, _ in console.routed)
    # The chart shows one period: the shortest that holds every lead (on the 1st of a month
    # before 17:00 in New York, none does, and this month's zeros are what must show).
    period = next((p for p in PERIODS if sum(expected[p].values()) == LEADS), "month")
    shown = expected[period]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(15_000)
            page.goto(f"{console.base}/ops/sign-in")
            page.get_by_label("Console token").fill(TOKEN)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Assignments")).to_be_visible()

            # Distribution, from the nav, for the chosen period.
            page.get_by_role("link", name="Distribution").click()
            expect(page.get_by_role("heading", name="Distribution")).to_be_visible()
            page.get_by_label("Chart period").select_option(period)
            page.get_by_role("button", name="Show").click()
            expect(page.get_by_label("Chart period")).to_have_value(period)

            # The chart of every rep: each bar's label names the rep, its value label the count.
            chart = page.locator('svg.chart[aria-label^="Leads per rep"]')
            expect(chart.locator("g.bar")).to_have_count(len(NAMES))
            for rep_id, name in NAMES.items():
                bar = chart.locator(f'g.bar[data-label="{name}"]')
                expect(bar.locator("text").first).to_have_text(name)
                expect(bar.locator("text.value")).to_have_text(str(shown[rep_id]))

            # The table: every rep's count in every period, and the totals.
            for rep_id in NAMES:
                cells = page.locator(f'#reps tbody tr[data-rep="{rep_id}"] td')
                counts = [str(expected[p][rep_id]) for p in PERIODS]
                expect(cells).to_have_text([NAMES[rep_id], *counts])
            totals = [str(sum(expected[p].values())) for p in PERIODS]
            expect(page.locator("#reps tfoot th")).to_have_text(["All", *totals])

            # The na-smb pool's chart: each member's count and share of the members' leads,
            # against a round robin's equal target.
            pool_total = sum(shown[m] for m in NA_SMB)
            pool_chart = page.locator('svg.chart[aria-label^="Pool na-smb"]')
            for member in NA_SMB:
                share = f"{shown[member] * 100 / pool_total:.0f}%" if pool_total else "-"
                value = pool_chart.locator(f'g.bar[data-label="{NAMES[member]}"] text.value')
                expect(value).to_have_text(f"{shown[member]} leads, {share} (target 33%)")
            page.screenshot(path=str(tmp_path / "distribution.png"))

            # SLA: every lead of the last 30 days, each under the first-touch SLA.
            page.get_by_role("link", name="SLA", exact=True).click()
            expect(page.get_by_role("heading", name="First-touch SLA")).to_be_visible()
            for rep_id in NAMES:
                row = page.locator(f'#sla tr[data-rep="{rep_id}"] td')
                expect(row.nth(1)).to_have_text(str(everything[rep_id]))
                expect(row.nth(2)).to_have_text(str(everything[rep_id]))

            # Outcomes: the leads per rep (nothing contacted yet).
            page.get_by_role("link", name="Outcomes").click()
            expect(page.get_by_role("heading", name="Outcomes")).to_be_visible()
            chen = page.locator('#outcomes tr[data-key="chen"] td')
            expect(chen.nth(1)).to_have_text(str(everything["chen"]))

            # Health: the one write-back the fixture marked failed.
            page.get_by_role("link", name="Health").click()
            expect(page.get_by_role("heading", name="Health")).to_be_visible()
            failed = page.locator('#health tr[data-key="writeback_failures"] td')
            expect(failed).to_have_text(re.compile(r"^\s*1\s"))

            # Who can take leads: Chen's count today against the daily cap.
            page.get_by_role("link", name="Who can take leads").click()
            expect(page.get_by_role("heading", name="Who can take leads now")).to_be_visible()
            today = page.locator("#rep-chen td").nth(5)
            expect(today).to_have_text(f"{expected['today']['chen']} / 4")
        finally:
            browser.close()
