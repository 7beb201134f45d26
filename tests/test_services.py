"""One place builds the services: the app, serve's sweeper and the CLI share what it builds."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import TUESDAY_10AM, config_data, lead
from fakes import salesforce_api
from fakes.webhooks import webhook_receiver  # noqa: F401 (fixture)

from connector.app import create_app
from connector.cli import main
from connector.hubspot_execute import hubspot_api
from connector.services import build_services
from connector.shared import services_of
from workflows.delivery import Inbound, deliver
from workflows.errors import StoreError

fake_salesforce = salesforce_api.fake_salesforce


def test_the_sweep_reads_with_the_clients_the_endpoints_write_with(
    make_config, store, fake_salesforce, monkeypatch
):
    # One HubSpot client per token (one limiter, one budget) and one Salesforce sign-in.
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-na1-one")
    app = create_app(make_config(), store)
    services = services_of(app)
    readers = services.readers()
    assert readers["hubspot"].api is hubspot_api(app, "pat-na1-one")
    assert readers["salesforce"].connection is services.salesforce_connection()
    assert services.hubspot_api("pat-na1-two") is not readers["hubspot"].api


def test_no_reader_for_a_crm_without_credentials(make_config, store):
    assert build_services(make_config(), {}, store).readers() == {}


def test_a_command_that_needs_no_store_never_opens_it(tmp_path, fake_salesforce):
    path = tmp_path / "app.yaml"
    data = salesforce_api.salesforce_config_data(store=f"sqlite:///{tmp_path / 'state.sqlite'}")
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["--config", str(path), "salesforce", "users"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "state.sqlite").exists()


def test_routing_from_the_command_line_reads_no_webhook_url(tmp_path, monkeypatch, caplog):
    # A dry run sends nothing: it must not warn that a webhook is off.
    monkeypatch.delenv("TEAM_HOOK", raising=False)
    path = tmp_path / "app.yaml"
    data = config_data(store="sqlite:///state.sqlite", notify=[{"url_env": "TEAM_HOOK"}])
    path.write_text(yaml.safe_dump(data))
    with caplog.at_level(logging.INFO, logger="leadrelay.notify"):
        result = CliRunner().invoke(main, ["--config", str(path), "route", '{"id": "L1"}'])
    assert result.exit_code == 0, result.output
    assert "TEAM_HOOK" not in caplog.text + result.output


def test_close_sends_what_is_queued_then_closes_the_store(
    make_config,
    tmp_path,
    webhook_receiver,  # noqa: F811
):
    config = make_config(
        store=f"sqlite:///{tmp_path / 'state.sqlite'}", notify=[{"url": webhook_receiver.url}]
    )
    services = build_services(config, {})
    deliver(
        services.router, [Inbound(lead("L1"), "k1")], TUESDAY_10AM, source="test",
        write=None, notify=lambda ds: services.notifier.deliveries("assigned", ds),
    )  # fmt: skip
    services.close()
    assert [body["lead"]["id"] for body in webhook_receiver.received] == ["L1"]
    assert services.notifier.stats["sent"] == 1


def test_the_app_opens_its_store_when_built_not_at_its_first_request(make_config, tmp_path):
    Path(tmp_path / "a-file").write_text("")
    config = make_config(store=f"sqlite:///{tmp_path / 'a-file' / 'state.sqlite'}")
    with pytest.raises(StoreError, match="a-file is not a directory"):
        create_app(config)
