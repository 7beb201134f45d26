"""A HubSpot contact whose company is gone (the company read answers 404) goes to the account
rule's ``else:``, in every mode that reads companies, never ``outcome: failed``."""

from __future__ import annotations

import pytest
from fakes.hubspot_api import fake_hubspot  # noqa: F401 (fixture)
from fakes.hubspot_requests import (
    action_body,
    hubspot_app,  # noqa: F401 (fixture)
    post_action,
    with_properties,
)

from connector.hubspot_flusher import Flusher
from connector.shared import services_of

ACCOUNT_ELSE_TEAM = [
    {"name": "customers", "assign": {"account_owner": True, "else": {"pool": "team"}}},
]
GONE = "customers: account owner: company 77 not found; "


def flush(client) -> None:
    services = services_of(client.application)
    api = lambda: services.hubspot_api(services.hubspot_token())  # noqa: E731
    Flusher(lambda: services.store, api, every=1.0).flush()


@pytest.mark.parametrize("mode", ["api", "batch"])
def test_a_contact_whose_company_is_gone_goes_to_else_not_failed(
    hubspot_app, fake_hubspot, store, mode
):
    fake_hubspot.add_contact("904")  # company 77 was deleted or merged away: HubSpot says 404
    client = hubspot_app(hubspot={"write_owner": mode}, flow=ACCOUNT_ELSE_TEAM)
    response = post_action(client, with_properties(action_body(), associatedcompanyid="77"))
    assert response.status_code == 200, response.json
    if mode == "batch":
        flush(client)
        (completed,) = fake_hubspot.batch_completed
        fields = completed["outputFields"]
    else:
        fields = response.json["outputFields"]
    assert (fields["outcome"], fields["owner_id"], fields["hs_execution_state"]) == (
        "assigned", "101", "SUCCESS",
    )  # fmt: skip
    assert fields["reason"].startswith(GONE)
    assert fake_hubspot.contacts["904"]["hubspot_owner_id"] == "101"
    assert len(fake_hubspot.calls("GET", "/crm/v3/objects/companies/77")) == 1
    (record,) = store.log()
    assert record.decision.reason.startswith(GONE)


def test_a_company_that_answers_an_error_other_than_404_is_retried_not_sent_to_else(
    hubspot_app, fake_hubspot, store
):
    fake_hubspot.add_contact("904")
    fake_hubspot.fail_next(500, path="/crm/v3/objects/companies", times=10)
    client = hubspot_app(hubspot={"write_owner": "api"}, flow=ACCOUNT_ELSE_TEAM)
    response = post_action(client, with_properties(action_body(), associatedcompanyid="77"))
    assert response.status_code == 503  # HubSpot retries; nothing decided meanwhile
    assert list(store.log()) == []
