"""Realistic synthetic leads: a week of inbound traffic across regions, sizes and languages.

Writes docs/examples/leads.csv (``python bench/sample_leads.py 400 > docs/examples/leads.csv``);
the benchmarks use it too. Deterministic for a given seed.
"""

from __future__ import annotations

import csv
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

COUNTRIES = ["US"] * 10 + ["CA"] * 2 + ["GB", "DE", "FR", "NL", "IE", "ES", "JP", "AU", "SG", "MX"]
INDUSTRIES = [
    "Software",
    "Healthcare",
    "Financial Services",
    "Retail",
    "Manufacturing",
    "Education",
]
# HubSpot's hs_analytics_source values, so the sample app.yaml's rules read like real ones.
SOURCES = [
    "ORGANIC_SEARCH", "DIRECT_TRAFFIC", "ORGANIC_SEARCH", "PAID_SEARCH", "OFFLINE", "REFERRALS",
    "REFERRALS", "SOCIAL_MEDIA",
]  # fmt: skip
SIZES = [5, 12, 30, 60, 150, 400, 800, 1500, 5000]
FIRST = ["Ana", "Ben", "Carla", "Dev", "Emma", "Farid", "Gia", "Hugo", "Ines", "Jon", "Kai", "Lea"]
LAST = ["Smith", "Garcia", "Müller", "Kim", "Rossi", "Dubois", "Sato", "Patel", "Brown", "Silva"]
COMPANIES = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "tyrell",
    "wonka",
    "cyberdyne",
    "soylent",
    "vandelay",
    "pied-piper",
    "gringotts",
    "monarch",
]


def sample_leads(count: int, seed: int = 7, start: datetime | None = None) -> Iterator[dict]:
    """``count`` lead rows (common-model field names), spread over one week from ``start``."""
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # a Monday
    for i in range(count):
        company = rng.choice(COMPANIES) + ("" if rng.random() < 0.3 else f"-{rng.randint(1, 400)}")
        country = rng.choice(COUNTRIES)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        free_mail = rng.random() < 0.15
        domain = "gmail.com" if free_mail else f"{company}.com"
        language = "es" if country in ("ES", "MX") or rng.random() < 0.06 else "en"
        created = _arrival(rng, start)
        yield {
            "id": f"lead-{i + 1:05d}",
            "email": f"{first.lower()}.{last.lower()}{i}@{domain}",
            "first_name": first,
            "last_name": last,
            "company": company.replace("-", " ").title(),
            "country": country,
            "industry": rng.choice(INDUSTRIES),
            "employees": rng.choice(SIZES),
            "annual_revenue": rng.choice([0.5, 2, 10, 50, 250, 1000]) * 1_000_000,
            "score": rng.randint(0, 100),
            "source": rng.choice(SOURCES),
            "language": language,
            "created_at": created.isoformat(timespec="minutes"),
        }


def _arrival(rng: random.Random, start: datetime) -> datetime:
    # Most inbound leads arrive on weekdays in North American business hours (13-23 UTC);
    # the rest trickle in around the clock.
    if rng.random() < 0.8:
        day, minute = rng.randint(0, 4), rng.randint(13 * 60, 23 * 60 - 1)
    else:
        day, minute = rng.randint(0, 6), rng.randint(0, 24 * 60 - 1)
    return start + timedelta(days=day, minutes=minute)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    rows = sorted(sample_leads(count), key=lambda row: row["created_at"])  # file order = time
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)


if __name__ == "__main__":
    main()
