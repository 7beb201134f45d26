"""Made-up leads: names, companies and where they come from. None is a real person or firm.

A short hand-written list rather than a fake-data library: the demo needs a few dozen
plausible rows, and a list keeps the product's dependencies as they are.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FIRST = (
    "Lena", "Tomás", "Aiko", "Marcus", "Ingrid", "Ravi", "Sofia", "Jonah", "Amara", "Pieter",
    "Camille", "Diego", "Hana", "Oskar", "Priya", "Luca", "Nadia", "Felix", "Yara", "Owen",
)  # fmt: skip
LAST = (
    "Vogel", "Brandão", "Kimura", "Whitfield", "Solberg", "Iyer", "Marchetti", "Pell", "Osei",
    "de Wit", "Laurent", "Fuentes", "Sato", "Lindgren", "Menon", "Ferri", "Haddou", "Kramer",
)  # fmt: skip
COMPANY = (
    "Kaltwerk", "Bluefjord Analytics", "Tidewater Logistics", "Nimbus Kitchens", "Orrery Labs",
    "Quillstone Legal", "Harbor & Pine", "Vantablue Energy", "Copperleaf Health", "Brightmoor",
    "Lumen Fabrication", "Saltmarsh Media", "Northwind Cycles", "Glasswing Software",
)  # fmt: skip
COUNTRIES = ("US", "US", "CA", "MX", "BR", "GB", "DE", "FR", "NL", "SE", "PT", "IN", "JP", "AU")
EMPLOYEES = (5, 12, 40, 85, 150, 320, 600, 1200, 2500, 8000)
# HubSpot contacts' numemployees is a dropdown of ranges; its lower bound is what routing reads.
HUBSPOT_RANGES = {
    5: "1-5", 12: "5-25", 40: "25-50", 85: "50-100", 150: "100-500", 320: "100-500",
    600: "500-1000", 1200: "1000+", 2500: "1000+", 8000: "1000+",
}  # fmt: skip
SOURCES_HUBSPOT = ("ORGANIC_SEARCH", "PAID_SEARCH", "REFERRALS", "SOCIAL_MEDIA", "DIRECT_TRAFFIC")
SOURCES_SALESFORCE = ("Web", "Partner Referral", "Trade Show", "Phone Inquiry", "Advertisement")


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    company: str
    country: str
    employees: int

    @property
    def email(self) -> str:
        domain = "".join(c for c in self.company.lower() if c.isalnum())
        local = "".join(c for c in self.first.lower() if c.isascii() and c.isalnum())
        return f"{local}@{domain}.example"


def person(rng: random.Random) -> Person:
    return Person(
        rng.choice(FIRST),
        rng.choice(LAST),
        rng.choice(COMPANY),
        rng.choice(COUNTRIES),
        rng.choice(EMPLOYEES),
    )
