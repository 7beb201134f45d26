"""API calls per routed record, with and without app.yaml's follow-up ``task:``.

Routes N records (default 1000) through the HTTP endpoints (the real Flask app, in process)
against the loopback fakes the tests use, and counts what the fake CRMs received:

- HubSpot, ``write_owner: batch``: N signed workflow-action executions, then the flusher
  (owners by ``batch/update``, tasks by ``tasks/batch/create``, executions by the batch
  callback completion, 100 each per call).
- Salesforce Outbound Messages: N leads in messages of 100 notifications (Salesforce's most
  per message); owners and tasks through sObject Collections, both in one composite call.

Run: ``.venv/bin/python bench/task_calls.py [--records 1000]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import responses  # noqa: E402
from conftest import config_data, rep  # noqa: E402
from fakes.hubspot_api import start_fake  # noqa: E402
from fakes.hubspot_requests import SECRET, action_body, post_action, with_properties  # noqa: E402
from fakes.salesforce_api import ORG_ID, REP_USERS, FakeSalesforce  # noqa: E402

from adapters.hubspot.client import HubSpotApi, api_base  # noqa: E402
from adapters.hubspot.limits import RateLimiter  # noqa: E402
from connector.app import create_app  # noqa: E402
from connector.hubspot_flusher import Flusher, batch_follow_up  # noqa: E402
from connector.shared import services_of  # noqa: E402
from workflows.config_builder import build_config  # noqa: E402

TASK = {"subject": "Call {first_name} at {company} ({rule})", "due": "15m", "type": "call"}
HUBSPOT_OWNERS = {"alice": "101", "bob": "102", "chen": "103"}


def _config(tmp: Path, with_task: bool, **overrides: Any) -> Any:
    data = config_data(store=f"sqlite:///{tmp / 'state.sqlite'}", **overrides)
    if with_task:
        data["task"] = TASK
    return build_config(data, source=tmp / "app.yaml")


def hubspot_batch(records: int, with_task: bool) -> float:
    """API calls per record in batch mode: N executions answered BLOCK, then flushed."""
    fake = start_fake()
    os.environ.update(HUBSPOT_API_BASE=fake.url, HUBSPOT_ACCESS_TOKEN=fake.token,
                      HUBSPOT_CLIENT_SECRET=SECRET,
                      LEADRELAY_PUBLIC_URL="https://leads.example.com")  # fmt: skip
    try:
        with tempfile.TemporaryDirectory() as tmp:
            reps = [rep(n, hubspot_owner_id=o) for n, o in HUBSPOT_OWNERS.items()]
            config = _config(Path(tmp), with_task, reps=reps, hubspot={"write_owner": "batch"})
            app = create_app(config=config)
            services = services_of(app)
            # The calls are counted, not paced: a budget that never makes anyone wait.
            api = HubSpotApi(access_token=fake.token, host=api_base(config),
                             limiter=RateLimiter(per_second=10_000, burst=10_000))  # fmt: skip
            services.hubspot_apis[(fake.token, api_base(config))] = api
            client = app.test_client()
            for number in range(records):
                contact = str(100_000 + number)
                fake.add_contact(contact, hubspot_owner_id="")
                body = with_properties(action_body(callbackId=f"ap-bench-{number}"),
                                       firstname=f"Lead {number}", company="Acme")  # fmt: skip
                body["object"]["objectId"] = int(contact)
                assert post_action(client, body).status_code == 200
            follow_up = batch_follow_up(services) if with_task else None
            flusher = Flusher(lambda: services.store, lambda: api, every=1.0, follow_up=follow_up)
            flusher.flush()
            assert len(fake.batch_completed) == records, len(fake.batch_completed)
            assert len(fake.tasks) == (records if with_task else 0)
            services.close()
        return len(fake.requests) / records
    finally:
        fake.stop()


NOTIFICATION = """   <Notification>
    <Id>04l5g{n:010d}AAA</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>00Q5g{n:010d}EAA</sf:Id>
     <sf:Company>Company {n}</sf:Company>
     <sf:Country>US</sf:Country>
     <sf:FirstName>Pat</sf:FirstName>
     <sf:LastName>Buyer {n}</sf:LastName>
     <sf:OwnerId>00G5g000003Qe1AEAS</sf:OwnerId>
    </sObject>
   </Notification>
"""


def outbound_message(first: int, count: int) -> bytes:
    notes = "".join(NOTIFICATION.format(n=n) for n in range(first, first + count))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{ORG_ID}</OrganizationId><ActionId>04k5g000000KmQpAAK</ActionId>"
        f"{notes}</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


def salesforce_outbound(records: int, with_task: bool, per_message: int = 100) -> float:
    """API calls per record: N leads in Outbound Messages of ``per_message`` notifications."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeSalesforce(mock)
        for name in [n for n in os.environ if n.startswith(("SALESFORCE_", "LEADRELAY_"))]:
            del os.environ[name]
        os.environ.update(fake.direct_env())
        with tempfile.TemporaryDirectory() as tmp:
            reps = [rep(n, salesforce_user_id=u) for n, u in REP_USERS.items()]
            config = _config(Path(tmp), with_task, reps=reps, salesforce={"org_ids": [ORG_ID]})
            app = create_app(config=config)
            client = app.test_client()
            for first in range(1, records + 1, per_message):
                body = outbound_message(first, min(per_message, records + 1 - first))
                answer = client.post("/salesforce/outbound", data=body,
                                     content_type="text/xml; charset=utf-8")  # fmt: skip
                assert answer.status_code == 200, answer.get_data(as_text=True)
            assert len(fake.owners) == records
            assert len(fake.tasks) == (records if with_task else 0)
            services_of(app).close()
        return len(fake.requests) / records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    n = parser.parse_args().records
    logging.disable(logging.WARNING)  # the fakes' request lines and the console's notice
    print(f"API calls per routed record, {n} records through the HTTP endpoints (fakes)")
    print(f"{'':34} {'without task':>13} {'with task':>10} {'more per 100':>13}"
          f" {'more per 200':>13}")  # fmt: skip
    for name, run in (("HubSpot batch mode", hubspot_batch),
                      ("Salesforce outbound (100/message)", salesforce_outbound)):  # fmt: skip
        without, with_task = run(n, False), run(n, True)
        more = with_task - without
        print(f"{name:34} {without:13.4f} {with_task:10.4f} {more * 100:13.2f} {more * 200:13.2f}")


if __name__ == "__main__":
    main()
