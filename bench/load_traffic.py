"""The load's traffic: leads created in the sandbox's stand-in CRMs and delivered to leadrelay
as each CRM delivers them (signed HubSpot executions, Salesforce Outbound Messages, Flow
calls), retried as the CRMs retry (a failure, a lost answer) and sometimes sent twice. Every
answer is kept for the checks (bench/load_checks.py) and the figures."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from connector.sandbox.deliveries import Request, hubspot_execution, outbound_message
from connector.sandbox.hubspot_standin import HubSpotStandIn
from connector.sandbox.salesforce_standin import SalesforceStandIn

KINDS = ("hubspot", "outbound", "flow")
COUNTRIES = ("US", "DE")  # US: the round-robin pool; anything else: the weighted fallback
DUPLICATE_SHARE = 0.15  # delivered again after a 2xx (the CRM lost the answer)
# The CRMs retry a failed delivery with growing pauses, for days (HubSpot: 3 days, Salesforce:
# 24 hours); compressed here: from 0.3 s, growing by half each time, up to 5 s between tries.
FIRST_PAUSE, GROWTH, LONGEST_PAUSE = 0.3, 1.5, 5.0
# Long enough for a write-back claimed by an instance that then died to be free again (its
# lease, workflows/router.py WRITE_LEASE, is 60 s): the retry then writes it on the survivor.
GIVE_UP_AFTER = 100.0


@dataclass
class Answer:
    """One HTTP exchange."""

    status: int  # 0: no answer (connection refused or reset, time-out)
    body: str
    sent_at: float  # time.monotonic()
    seconds: float
    duplicate: bool  # sent again after a 2xx


@dataclass
class LoadLead:
    """One lead of the load and every answer its deliveries got."""

    kind: str  # hubspot, outbound, flow
    crm: str  # hubspot or salesforce: where the owner is written
    record_id: str
    pool: str  # the pool its country routes it to
    build: Callable[[], Request]
    answers: list[Answer] = field(default_factory=list)

    @property
    def accepted(self) -> list[Answer]:
        return [a for a in self.answers if 200 <= a.status < 300]


@dataclass(frozen=True)
class Endpoints:
    """Where to send, and the secrets the CRMs hold."""

    base: str  # the proxy
    salesforce_url: str  # the stand-in's instance URL (the Outbound Message names it)
    hubspot_secret: str
    outbound_token: str
    flow_token: str
    portal_id: str
    org_id: str
    queue_id: str


class Load:
    """Starts ``rate`` leads a second for ``duration`` seconds, each on its own thread of a
    pool (an open loop: a slow answer does not slow the arrivals down)."""

    def __init__(
        self,
        endpoints: Endpoints,
        hubspot: HubSpotStandIn,
        salesforce: SalesforceStandIn,
        properties: list[str],
        rng: random.Random,
    ) -> None:
        self.endpoints = endpoints
        self.hubspot = hubspot
        self.salesforce = salesforce
        self.properties = properties
        self.rng = rng
        self.leads: list[LoadLead] = []
        self._local = threading.local()
        self._serial = 0

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False  # loopback: no proxy from the environment
        return session

    # -- the leads ---------------------------------------------------------------------------
    def new_lead(self) -> LoadLead:
        self._serial += 1
        kind = KINDS[self._serial % len(KINDS)]
        country = self.rng.choice(COUNTRIES)
        pool = "rr" if country == "US" else "wt"
        name = f"load{self._serial}"
        email = f"{name}@load{self._serial}.example"  # own domain: no sticky owner
        if kind == "hubspot":
            lead = self._hubspot(name, email, country, pool)
        else:
            lead = self._salesforce(kind, name, email, country, pool)
        self.leads.append(lead)
        return lead

    def _hubspot(self, name: str, email: str, country: str, pool: str) -> LoadLead:
        e = self.endpoints
        contact_id = self.hubspot.create_contact(
            {
                "firstname": name,
                "lastname": "Load",
                "email": email,
                "company": f"{name} Ltd",
                "country": country,
                "hs_analytics_source": "DIRECT_TRAFFIC",
            }  # fmt: skip
        )
        stored = self.hubspot.contact(contact_id)
        sent = {prop: str(stored.get(prop) or "") for prop in self.properties}
        callback = f"ap-{e.portal_id}-{self.rng.randrange(10**10, 10**11)}-{self._serial}-0"

        def build() -> Request:
            return hubspot_execution(
                f"{e.base}/hubspot/action",
                e.hubspot_secret,
                callback_id=callback,
                portal_id=e.portal_id,
                contact_id=contact_id,
                properties=sent,
            )

        return LoadLead("hubspot", "hubspot", contact_id, pool, build)

    def _salesforce(self, kind: str, name: str, email: str, country: str, pool: str) -> LoadLead:
        e = self.endpoints
        fields = {"FirstName": name, "LastName": "Load", "Email": email, "Company": f"{name} Ltd",
                  "Country": country, "LeadSource": "Web", "OwnerId": e.queue_id}  # fmt: skip
        lead_id = self.salesforce.create_lead(fields)
        record = self.salesforce.lead(lead_id)
        if kind == "outbound":
            notification = f"04lLOAD{self._serial:08d}AAA"
            url = f"{e.base}/salesforce/outbound?token={e.outbound_token}"

            def build() -> Request:
                return outbound_message(
                    url, org_id=e.org_id, action_id="04kLOAD00000001AAA",
                    instance_url=e.salesforce_url, notifications=[(notification, record)],
                )  # fmt: skip

            return LoadLead("outbound", "salesforce", lead_id, pool, build)
        body = json.dumps(
            {
                "requestId": f"flow-{lead_id}",
                "writeBack": True,
                "Id": lead_id,
                **{k: v for k, v in record.items() if k in fields},
            }  # fmt: skip
        ).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {e.flow_token}"}

        def build_flow() -> Request:
            return Request(f"{e.base}/salesforce/route", body, headers)

        return LoadLead("flow", "salesforce", lead_id, pool, build_flow)

    # -- delivering --------------------------------------------------------------------------
    def _send(self, lead: LoadLead, duplicate: bool) -> Answer:
        request = lead.build()
        started = time.monotonic()
        try:
            response = self._session().post(
                request.url, data=request.body, headers=request.headers, timeout=30
            )
            status, body = response.status_code, response.text
        except requests.RequestException as exc:
            status, body = 0, f"{type(exc).__name__}: {exc}"
        answer = Answer(status, body, started, time.monotonic() - started, duplicate)
        lead.answers.append(answer)
        return answer

    def deliver(self, lead: LoadLead) -> None:
        """Deliver until accepted, as the CRM would (every failure is retried: HubSpot retries
        5xx and time-outs, Salesforce anything but an acknowledgement, a Flow's fault path
        calls again); then, sometimes, once more (an answer the CRM never got)."""
        first = time.monotonic()
        pause = FIRST_PAUSE
        while not 200 <= self._send(lead, duplicate=False).status < 300:
            if time.monotonic() - first > GIVE_UP_AFTER:
                return
            time.sleep(pause * self.rng.uniform(0.8, 1.2))
            pause = min(pause * GROWTH, LONGEST_PAUSE)
        if self.rng.random() < DUPLICATE_SHARE:
            time.sleep(self.rng.uniform(0.0, 0.3))
            self._send(lead, duplicate=True)

    def run(self, rate: float, duration: float, during: Callable[[float], None]) -> float:
        """Send for ``duration`` seconds; ``during(elapsed)`` is called about every 50 ms (to
        kill an instance, break the database...). Returns once every lead is accepted or given
        up; the result is when the sending started (time.monotonic())."""
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=64, thread_name_prefix="crm") as pool:
            sent = 0
            while (elapsed := time.monotonic() - started) < duration:
                due = int(elapsed * rate) + 1
                while sent < due:
                    pool.submit(self.deliver, self.new_lead())
                    sent += 1
                during(elapsed)
                time.sleep(min(0.05, 1.0 / rate))
        return started
