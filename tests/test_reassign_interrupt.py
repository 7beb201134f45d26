"""`leadrelay reassign` stopped by Ctrl-C or SIGTERM mid-write: nothing moved goes unannounced.

A real process, a real signal: the fake HubSpot signals the command the moment its first owner
write arrives, before answering it, so the signal lands while the batch is on the wire.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter

import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO, config_data, rep
from fakes.hubspot_api import FakeHubSpot
from fakes.webhooks import webhook_receiver  # noqa: F401 (fixture)

from connector.cli import main

OWNER = {"alice": "101", "bob": "102", "chen": "103"}
BATCH_UPDATE = "/crm/v3/objects/contacts/batch/update"


class InterruptingHubSpot(FakeHubSpot):
    """Sends ``signum`` to ``target`` when the first owner write arrives, then answers it."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.signum = signal.SIGINT
        self.target = 0
        self.ready = threading.Event()
        self.signalled = False

    def _respond(self, request):
        if request.method == "POST" and request.path == BATCH_UPDATE and not self.signalled:
            self.signalled = True
            self.ready.wait(10)
            os.kill(self.target, self.signum)
        return super()._respond(request)


@pytest.fixture
def crm(monkeypatch):
    fake = InterruptingHubSpot().start()
    for i in range(250):
        fake.add_contact(str(1000 + i), hubspot_owner_id="101", email=f"c{i}@acme{i}.com")
    monkeypatch.setenv("HUBSPOT_API_BASE", fake.url)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", fake.token)
    for name in [n for n in os.environ if n.startswith("SALESFORCE_")]:
        monkeypatch.delenv(name)
    yield fake
    fake.stop()


@pytest.fixture
def app_yaml(tmp_path, webhook_receiver):  # noqa: F811
    reps = [rep(name, hubspot_owner_id=OWNER[name], active=name != "alice") for name in OWNER]
    data = config_data(reps=reps, store=f"sqlite:///{tmp_path / 'state.sqlite'}")
    data["notify"] = [{"url": webhook_receiver.url, "events": ["reassigned"]}]
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_reassign_prints_and_announces_every_lead_it_moved(
    crm,
    app_yaml,
    webhook_receiver,  # noqa: F811
    signum,
):
    crm.signum = signum
    command = [sys.executable, "-c", "from connector.cli import run; run()",
               "--config", str(app_yaml), "reassign", "--from", "alice"]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO, env=dict(os.environ), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    crm.target = process.pid
    crm.ready.set()
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 128 + signum, stderr
    (write,) = crm.calls("POST", BATCH_UPDATE)  # the batch in flight, and no other
    moved = {item["id"] for item in write.body["inputs"]}
    assert len(moved) == 100
    lines = stdout.splitlines()
    assert {line.split()[1].rstrip(":") for line in lines} == moved
    assert all(" reassigned alice -> " in line for line in lines) and len(lines) == 100
    announced = [body["lead"]["id"] for body in webhook_receiver.received]
    assert sorted(announced) == sorted(moved)
    assert {body["event"] for body in webhook_receiver.received} == {"reassigned"}
    assert "interrupted: stopped after 100 lead(s)" in stderr
    assert "run the same command again" in stderr and "Traceback" not in stderr

    again = CliRunner().invoke(main, ["--config", str(app_yaml), "reassign", "--from", "alice"])
    assert again.exit_code == 0, again.output
    assert "150 reassigned" in again.stderr
    owners = Counter(contact["hubspot_owner_id"] for contact in crm.contacts.values())
    assert owners["101"] == 0 and owners["102"] + owners["103"] == 250
    announced = [body["lead"]["id"] for body in webhook_receiver.received]
    assert len(announced) == 250 == len(set(announced))
