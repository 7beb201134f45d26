"""The OpenAPI document served for Salesforce External Services, held against the real Flow
endpoint: schemathesis generates requests from it (fixed seed, small budget) and checks every
answer against it, so the document says what the endpoint really accepts and answers."""

from __future__ import annotations

from collections import Counter

import schemathesis
import yaml
from fakes import salesforce_api
from fakes.salesforce_api import salesforce_config_data
from hypothesis import HealthCheck, given, seed, settings
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate
from schemathesis import GenerationMode

from connector.app import create_app

fake_salesforce = salesforce_api.fake_salesforce  # the fixture, requested by name below

TOKEN = "flow-s3cret"
SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.filter_too_much]


def flow_app(make_config, store, monkeypatch, **overrides):
    monkeypatch.setenv("LEADRELAY_FLOW_TOKEN", TOKEN)
    return create_app(config=make_config(salesforce_config_data(**overrides)), store=store)


def test_schema_valid_requests_all_reach_routing_and_match_the_documented_answers(
    make_config, store, fake_salesforce, monkeypatch
):
    app = flow_app(make_config, store, monkeypatch)
    schema = schemathesis.openapi.from_wsgi("/salesforce/openapi.yaml", app)
    # The Named Credential's header, given as configuration rather than generated: schemathesis
    # then also checks that a call without it, or with a wrong one, is refused.
    schema.config.update(headers={"Authorization": f"Bearer {TOKEN}"})
    schema.config.generation.update(with_security_parameters=False)
    operation = schema["/salesforce/route"]["POST"]
    answers: Counter[int] = Counter()

    @seed(20261130)
    @settings(max_examples=30, deadline=None, database=None, suppress_health_check=SLOW_IS_FINE)
    @given(case=operation.as_strategy(GenerationMode.POSITIVE))
    def check(case: schemathesis.Case) -> None:
        response = case.call()
        answers[response.status_code] += 1
        # Every default check: no 5xx, documented status, content type and body, positive
        # data accepted, the token enforced.
        case.validate_response(response)
        assert response.status_code == 200, response.text
        assert response.json()["leadId"] == case.body["Id"]

    check()
    assert answers == {200: 30}


def test_the_served_document_is_valid_and_lists_this_deployments_entries(
    make_config, store, fake_salesforce, monkeypatch
):
    app = flow_app(make_config, store, monkeypatch)
    spec = yaml.safe_load(app.test_client().get("/salesforce/openapi.yaml").data)
    validate(spec)
    entry = spec["components"]["schemas"]["RouteRequest"]["properties"]["entry"]
    assert entry["enum"] == ["pool:team", "rule:everyone", "team", "everyone"]
    assert set(spec["paths"]["/salesforce/route"]["post"]["responses"]) == {
        "200", "400", "401", "409", "413", "415", "502", "503",
    }  # fmt: skip


def test_refusals_are_the_documented_error_shape(make_config, store, fake_salesforce, monkeypatch):
    client = flow_app(make_config, store, monkeypatch).test_client()
    spec = yaml.safe_load(client.get("/salesforce/openapi.yaml").data)
    error = OAS30Validator(spec["components"]["schemas"]["Error"])
    auth = {"Authorization": f"Bearer {TOKEN}"}
    too_big = client.post(
        "/salesforce/route", data=b" " * (2 << 20), content_type="application/json", headers=auth
    )
    not_json = client.post(
        "/salesforce/route", data=b"Id=1", content_type="text/plain", headers=auth
    )
    for response, status in ((too_big, 413), (not_json, 415)):
        assert response.status_code == status
        error.validate(response.get_json())


def test_a_wrong_method_is_a_405_naming_the_allowed_one(make_config, store, monkeypatch):
    response = flow_app(make_config, store, monkeypatch).test_client().get("/salesforce/route")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"] and "error" in response.get_json()
