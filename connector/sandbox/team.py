"""The sandbox's team and its app.yaml: fictional reps in three pools, working hours built
around the moment the demo starts, and an SLA short enough to watch rotations in a minute."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

ORG_ID = "00DDEMO00000001AAA"  # the stand-in org's id, in salesforce.org_ids
PORTAL_ID = "90000001"  # the stand-in portal's id, in hubspot.portal_ids
QUEUE_ID = "00GDEMO00000001AAA"  # the web-to-lead queue that owns new Salesforce leads
# Outside working hours now (``off``) and on leave today (``away``): the console shows both.
ON, OFF, AWAY = "on", "off", "away"


@dataclass(frozen=True)
class DemoRep:
    id: str
    name: str
    timezone: str
    shift: str  # ON, OFF or AWAY
    weight: int = 1
    languages: tuple[str, ...] = ("en",)

    @property
    def email(self) -> str:
        return f"{self.id}@sandbox.example"

    @property
    def owner_id(self) -> str:
        """The HubSpot owner id the stand-in portal knows this rep by."""
        return str(201 + TEAM.index(self))

    @property
    def user_id(self) -> str:
        """The Salesforce user id (``005...``, 18 characters) in the stand-in org."""
        return f"005DEMO{TEAM.index(self) + 1:08d}AAA"


# Made-up people; any likeness to a real one is a coincidence.
TEAM = (
    DemoRep("ana", "Ana Sousa", "Europe/Lisbon", ON, weight=2, languages=("en", "pt")),
    DemoRep("chloe", "Chloé Martin", "Europe/Paris", ON, languages=("en", "fr")),
    DemoRep("emil", "Emil Lund", "Europe/Stockholm", AWAY, languages=("en", "sv")),
    DemoRep("ben", "Ben Okafor", "America/New_York", ON, weight=2),
    DemoRep("rosa", "Rosa Quintero", "America/Mexico_City", ON, languages=("en", "es")),
    DemoRep("farid", "Farid Haddad", "America/Los_Angeles", OFF),
    DemoRep("dev", "Dev Raman", "Asia/Kolkata", ON, weight=3),
    DemoRep("mika", "Mika Tanaka", "Asia/Tokyo", ON),
    DemoRep("morgan", "Morgan Reyes", "UTC", ON),  # the manager: escalations land here
)
EMEA = ("GB", "IE", "DE", "FR", "NL", "SE", "ES", "PT", "IT")
AMERICAS = ("US", "CA", "MX", "BR")


def _hours(rep: DemoRep, now: datetime) -> str:
    """Every day, a shift around the rep's local time now (ON) or well away from it (OFF)."""
    local = now.astimezone(ZoneInfo(rep.timezone))
    start = (local.hour - 3) % 24 if rep.shift != OFF else (local.hour + 3) % 24
    end = (start + 9) % 24  # a span past midnight wraps
    return f"Mon-Sun {start:02d}:00-{end:02d}:00"


def _rep(rep: DemoRep, now: datetime) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": rep.id,
        "name": rep.name,
        "email": rep.email,
        "hubspot_owner_id": rep.owner_id,
        "salesforce_user_id": rep.user_id,
        "timezone": rep.timezone,
        "languages": list(rep.languages),
        "weight": rep.weight,
    }
    if rep.id == "morgan":
        data["hours"] = "always"
    else:
        data["hours"] = _hours(rep, now)
        data["daily_cap"] = 40
    if rep.shift == AWAY:
        today = now.astimezone(ZoneInfo(rep.timezone)).date()
        data["out_of_office"] = [f"{today}..{today + timedelta(days=4)}"]
    return data


def sweep_every(first_touch: timedelta) -> int:
    """Seconds between sweeps: about four per first-touch period, at most one every 2 s."""
    return max(2, int(first_touch.total_seconds() // 4))


def demo_config(now: datetime, store: Path, first_touch: timedelta) -> dict[str, Any]:
    """The demo's app.yaml as data. ``first_touch`` is short (seconds) so the sweep's work
    shows within a minute."""
    return {
        "store": f"sqlite:///{store}",
        "timezone": "UTC",
        "reps": [_rep(rep, now) for rep in TEAM],
        "pools": {
            "emea": {"members": ["ana", "chloe", "emil"], "strategy": "weighted"},
            "americas": {"members": ["ben", "rosa", "farid"], "strategy": "weighted"},
            "enterprise": {"members": ["dev", "mika", "ben"], "strategy": "least_loaded"},
        },
        "flow": [
            {
                "name": "enterprise",
                "when": {"employees": {"gte": 1000}},
                "assign": {"pool": "enterprise", "else": {"rep": "morgan"}},
            },
            {
                "name": "referrals",
                "when": {"source": {"in": ["REFERRALS", "Partner Referral"]}},
                "assign": {"rep": "chloe", "else": {"pool": "emea"}},
            },
            {
                "name": "emea",
                "when": {"country": {"in": list(EMEA)}},
                "assign": {"pool": "emea", "else": {"pool": "enterprise"}},
            },
            {
                "name": "americas",
                "when": {"country": {"in": list(AMERICAS)}},
                "assign": {"pool": "americas", "else": {"rep": "morgan"}},
            },
        ],
        "fallback": {"pool": "enterprise", "else": {"rep": "morgan"}},
        # No real portal behind it: the whole budget HubSpot would allow a private app.
        "hubspot": {"portal_ids": [PORTAL_ID], "max_calls_per_10s": 250},
        "salesforce": {"org_ids": [ORG_ID]},
        "sla": {
            "first_touch": f"{int(first_touch.total_seconds())}s",
            "clock": "working_hours",
            "max_reassignments": 1,
            "escalate_to": {"rep": "morgan"},
            "sweep_every": f"{sweep_every(first_touch)}s",
        },
    }


def write_demo_config(path: Path, data: dict[str, Any]) -> None:
    header = (
        "# leadrelay SANDBOX configuration, written by `leadrelay demo` for this run only.\n"
        "# Fictional reps; the CRMs are local stand-ins. Not your app.yaml.\n"
    )
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
