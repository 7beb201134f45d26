"""The demo's stream of leads: new contacts and Leads in the stand-ins, delivered to the
running server as each CRM delivers them, some twice; later some are worked (contacted),
a few converted, the rest left alone for the SLA sweep to rotate and escalate."""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from adapters.hubspot.contact import contact_properties
from connector.sandbox.deliveries import Request, hubspot_execution, outbound_message
from connector.sandbox.hubspot_standin import HubSpotStandIn, hubspot_time
from connector.sandbox.people import (
    HUBSPOT_RANGES,
    SOURCES_HUBSPOT,
    SOURCES_SALESFORCE,
    Person,
    person,
)
from connector.sandbox.salesforce_standin import SalesforceStandIn
from connector.sandbox.team import ORG_ID, PORTAL_ID, QUEUE_ID, TEAM
from workflows.config import Config

DUPLICATE_SHARE = 0.2  # deliveries the CRM sends again (a retry after a lost answer)
CONTACTED_SHARE = 0.45  # leads a rep works before the first-touch deadline
CONVERTED_SHARE = 0.1  # of those, leads that go on to convert
CRM_ATTEMPTS = 4  # the CRMs retry far longer (days); a demo gives up sooner
REP_BY_CRM_ID = {r.owner_id: r.id for r in TEAM} | {r.user_id: r.id for r in TEAM}


@dataclass
class Lead:
    """One lead of the stream, as the demo tracks it."""

    crm: str  # hubspot or salesforce
    record_id: str
    who: Person
    send: Callable[[], Request]  # builds the delivery (HubSpot signs each one anew)
    failures: int = 0  # deliveries the server did not accept (the CRM tries again)


@dataclass
class Tally:
    """What the stream did, for the closing summary."""

    sent: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    contacted: int = 0
    converted: int = 0
    refused: int = 0  # given up: refused for good, or still failing after CRM_ATTEMPTS
    retried: int = 0
    moved: int = 0  # owner changes the server made after the first assignment (the sweep)

    def describe(self) -> str:
        return (
            f"{self.sent['hubspot']} HubSpot contacts and {self.sent['salesforce']} Salesforce"
            f" leads sent, {self.duplicates} redelivered, {self.contacted} worked by their rep,"
            f" {self.converted} converted, {self.moved} moved by the SLA sweep,"
            f" {self.retried} retried after a failure, {self.refused} refused"
        )


class Traffic:
    """Sends leads to ``base`` (the server) one by one, and plays the reps' part later."""

    def __init__(
        self,
        *,
        base: str,
        config: Config,
        hubspot: HubSpotStandIn,
        salesforce: SalesforceStandIn,
        salesforce_url: str,
        hubspot_secret: str,
        outbound_token: str,
        first_touch: float,
        rng: random.Random,
        say: Callable[[str], None],
    ) -> None:
        self.base = base
        self.hubspot = hubspot
        self.salesforce = salesforce
        self.salesforce_url = salesforce_url
        self.hubspot_secret = hubspot_secret
        self.outbound_token = outbound_token
        self.first_touch = first_touch
        self.rng = rng
        self.say = say
        self.properties = contact_properties(config)  # what the registered action asks for
        self.tally = Tally()
        self._session = requests.Session()
        self._session.trust_env = False  # the server is on loopback: no proxy from the env
        self._later: list[tuple[float, int, str, Lead]] = []
        self._owners: dict[str, tuple[str | None, Lead]] = {}  # by record id
        self._watched_at = 0.0
        self._order = itertools.count()

    @property
    def pending(self) -> bool:
        return bool(self._later)

    # -- new leads --------------------------------------------------------------------------
    def new_lead(self) -> None:
        """Create one lead in a CRM, deliver it, and plan what happens to it next."""
        who = person(self.rng)
        lead = self._hubspot_lead(who) if self.rng.random() < 0.5 else self._salesforce_lead(who)
        self._deliver(lead, again=False)
        now = time.monotonic()
        if self.rng.random() < DUPLICATE_SHARE:
            self._plan(now + self.rng.uniform(0.5, 3.0), "redeliver", lead)
        if self.rng.random() < CONTACTED_SHARE:
            worked = now + self.rng.uniform(0.2, 0.6) * self.first_touch
            self._plan(worked, "contact", lead)
            if self.rng.random() < CONVERTED_SHARE / CONTACTED_SHARE:
                self._plan(worked + self.rng.uniform(2.0, 6.0), "convert", lead)

    def _hubspot_lead(self, who: Person) -> Lead:
        source = self.rng.choice(SOURCES_HUBSPOT)
        props = {
            "firstname": who.first, "lastname": who.last, "email": who.email,
            "company": who.company, "country": who.country,
            "numemployees": HUBSPOT_RANGES[who.employees], "hs_analytics_source": source,
            "hs_language": "en",
        }  # fmt: skip
        contact_id = self.hubspot.create_contact(props)
        callback_id = f"ap-{PORTAL_ID}-{self.rng.randrange(10**10, 10**11)}-7-0"
        stored = self.hubspot.contact(contact_id)
        sent = {name: str(stored.get(name) or "") for name in self.properties}

        def send() -> Request:
            return hubspot_execution(
                f"{self.base}/hubspot/action",
                self.hubspot_secret,
                callback_id=callback_id,
                portal_id=PORTAL_ID,
                contact_id=contact_id,
                properties=sent,
            )

        return Lead("hubspot", contact_id, who, send)

    def _salesforce_lead(self, who: Person) -> Lead:
        fields = {
            "FirstName": who.first, "LastName": who.last, "Email": who.email,
            "Company": who.company, "Country": who.country,
            "NumberOfEmployees": who.employees, "LeadSource": self.rng.choice(SOURCES_SALESFORCE),
            "OwnerId": QUEUE_ID,
        }  # fmt: skip
        lead_id = self.salesforce.create_lead(fields)
        record = self.salesforce.lead(lead_id)
        notification_id = f"04lDEMO{self.rng.randrange(10**8):08d}AAA"
        action_id = "04kDEMO00000001AAA"
        url = f"{self.base}/salesforce/outbound?token={self.outbound_token}"

        def send() -> Request:
            return outbound_message(
                url,
                org_id=ORG_ID,
                action_id=action_id,
                instance_url=self.salesforce_url,
                notifications=[(notification_id, record)],
            )

        return Lead("salesforce", lead_id, who, send)

    def _deliver(self, lead: Lead, again: bool) -> None:
        request = lead.send()
        if not again:
            self.tally.sent[lead.crm] += 1
        try:
            answer: requests.Response | None = self._session.post(
                request.url, data=request.body, headers=request.headers, timeout=30
            )
        except requests.RequestException as exc:
            answer = None
            self.say(f"{lead.crm}: could not reach the server: {exc}")
        if answer is not None:
            self.say(self._line(lead, answer, again))
        if answer is not None and answer.status_code == 200:
            self._owners.setdefault(lead.record_id, (self._owner(lead), lead))
            return
        # Both CRMs deliver again after a failure (HubSpot: 5xx, 429 and time-outs;
        # Salesforce: anything but an acknowledgement).
        lead.failures += 1
        retried = answer is None or answer.status_code >= 500 or answer.status_code == 429
        if lead.crm == "salesforce":
            retried = True
        if retried and lead.failures < CRM_ATTEMPTS:
            self._plan(time.monotonic() + self.rng.uniform(2.0, 5.0), "retry", lead)
        else:
            self.tally.refused += 1

    def _owner(self, lead: Lead) -> str | None:
        if lead.crm == "hubspot":
            return self.hubspot.contact(lead.record_id).get("hubspot_owner_id")
        return self.salesforce.lead(lead.record_id).get("OwnerId")

    def watch_owners(self) -> None:
        """Say when the server moved a lead after its first assignment: the SLA sweep."""
        if time.monotonic() - self._watched_at < 1.0:
            return
        self._watched_at = time.monotonic()
        for record_id, (before, lead) in list(self._owners.items()):
            now = self._owner(lead)
            if now == before:
                continue
            self._owners[record_id] = (now, lead)
            self.tally.moved += 1
            old, new = REP_BY_CRM_ID.get(str(before), before), REP_BY_CRM_ID.get(str(now), now)
            self.say(
                f"{'':6}SLA sweep moved {lead.who.first} {lead.who.last} ({lead.crm}"
                f" {record_id}) from {old} to {new}: first touch missed"
            )

    def _line(self, lead: Lead, answer: requests.Response, again: bool) -> str:
        who = lead.who
        what = f"{who.first} {who.last}, {who.company} ({who.country}, {who.employees} staff)"
        kind = "contact" if lead.crm == "hubspot" else "lead"
        head = f"{'again ' if again else ''}{lead.crm:<10} {kind} {lead.record_id}  {what}"
        if answer.status_code != 200:
            return f"{head}  -> HTTP {answer.status_code}: {answer.text[:200]}"
        if lead.crm == "hubspot":
            fields: dict[str, Any] = (answer.json() or {}).get("outputFields") or {}
            owner = REP_BY_CRM_ID.get(str(fields.get("owner_id")), fields.get("outcome"))
            return f"{head}  -> {owner} [{fields.get('rule')}]"
        owner_id = str(self.salesforce.lead(lead.record_id).get("OwnerId"))
        return f"{head}  -> {REP_BY_CRM_ID.get(owner_id, 'queue')} (acknowledged)"

    # -- later ------------------------------------------------------------------------------
    def _plan(self, at: float, action: str, lead: Lead) -> None:
        heapq.heappush(self._later, (at, next(self._order), action, lead))

    def run_due(self) -> None:
        """Do whatever is due: redeliveries, reps working leads, conversions."""
        while self._later and self._later[0][0] <= time.monotonic():
            _, _, action, lead = heapq.heappop(self._later)
            if action == "redeliver":
                self.tally.duplicates += 1
                self._deliver(lead, again=True)
            elif action == "retry":
                self.tally.retried += 1
                self._deliver(lead, again=True)
            elif action == "contact":
                self.tally.contacted += 1
                self._contact(lead)
            else:
                self.tally.converted += 1
                self._convert(lead)

    def _contact(self, lead: Lead) -> None:
        if lead.crm == "hubspot":
            stamp = hubspot_time(datetime.now(UTC))
            self.hubspot.update_contact(
                lead.record_id, {"hs_lead_status": "IN_PROGRESS", "notes_last_contacted": stamp}
            )
        else:
            today = datetime.now(UTC).date().isoformat()
            self.salesforce.update_lead(
                lead.record_id, {"Status": "Working - Contacted", "LastActivityDate": today}
            )
        self.say(f"{'':6}rep called {lead.who.first} {lead.who.last} ({lead.crm} {lead.record_id})")

    def _convert(self, lead: Lead) -> None:
        if lead.crm == "hubspot":
            self.hubspot.update_contact(lead.record_id, {"lifecyclestage": "opportunity"})
        else:
            self.salesforce.update_lead(
                lead.record_id, {"Status": "Closed - Converted", "IsConverted": True}
            )
        self.say(f"{'':6}{lead.who.company} converted ({lead.crm} {lead.record_id})")

    def close(self) -> None:
        self._session.close()
