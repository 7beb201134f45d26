"""Rows the sweep and `reassign` make say why they moved the lead, in the decision's reason
(so `leadrelay log`, the console and the API show it), on one ASCII line."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from click.testing import CliRunner
from conftest import TUESDAY_10AM, lead, rep
from fakes import hubspot_api
from sweep_helpers import OWNER_IDS, MemoryCrm, sla_config_data

from connector.cli import main
from workflows.model import Lead
from workflows.reassign import Owned, Reassignment, one_line
from workflows.router import Router
from workflows.sweep import sweep

fake_hubspot = hubspot_api.fake_hubspot
POOL = "everyone: pool team (round_robin)"


def assign(router: Router, crm: MemoryCrm, lead_id: str = "C1") -> str:
    contact = Lead(id=lead_id, crm="hubspot", object_type="contact")
    result = router.route(contact, TUESDAY_10AM, source="hubspot", idempotency_key=f"cb-{lead_id}")
    owner = result.decision.rep_id
    assert owner is not None
    crm.add(lead_id, OWNER_IDS[owner])
    return owner


def sweep_at(router: Router, crm: MemoryCrm, minutes: int, **kwargs):
    actions: list = []
    sweep(router, {"hubspot": crm}, TUESDAY_10AM + timedelta(minutes=minutes),
          on_action=actions.append, **kwargs)  # fmt: skip
    return actions


def reasons(router: Router) -> list[tuple[str, str | None, str | None, str]]:
    return [(r.source, r.previous_owner, r.new_owner, r.reason) for r in router.store.log()]


def test_each_rotation_row_names_the_missed_sla_and_which_rotation_it_is(make_router):
    router, crm = make_router(sla_config_data()), MemoryCrm()
    assign(router, crm)
    sweep_at(router, crm, 20)
    sweep_at(router, crm, 40)

    assert reasons(router)[1:] == [
        ("sweep", "alice", "bob",
         f"first touch missed: 15 min on the wall clock, 1st rotation; {POOL} chose bob"),
        ("sweep", "bob", "chen",
         f"first touch missed: 15 min on the wall clock, 2nd rotation; {POOL} chose chen"),
    ]  # fmt: skip
    # The old row's SLA says the same: it ended because of that move.
    first_sla = next(iter(router.store.log())).extra["sla"]
    assert first_sla["detail"] == reasons(router)[1][3]


def test_an_escalation_after_the_cap_says_how_many_rotations_went_without_first_touch(
    make_router,
):
    router, crm = make_router(sla_config_data()), MemoryCrm()
    assign(router, crm)
    for minutes in (20, 40, 60):
        sweep_at(router, crm, minutes)

    assert reasons(router)[-1] == (
        "sweep", "chen", "maria",
        "escalated after 2 rotations without first touch (15 min on the wall clock each);"
        " everyone: rep maria",
    )  # fmt: skip


def test_an_escalation_with_no_rotations_allowed_says_so(make_router):
    router, crm = make_router(sla_config_data(max_reassignments=0)), MemoryCrm()
    assign(router, crm)
    sweep_at(router, crm, 20)
    assert reasons(router)[-1][3] == (
        "escalated: first touch missed: 15 min on the wall clock, and max_reassignments is 0;"
        " everyone: rep maria"
    )


def test_a_stranded_lead_says_everyone_it_could_rotate_to_has_had_it(make_router):
    data = sla_config_data(max_reassignments=5)
    data["fallback"] = {"pool": "team"}
    data["pools"]["team"]["members"] = ["alice", "bob"]
    router, crm = make_router(data), MemoryCrm()
    assign(router, crm)
    sweep_at(router, crm, 20)
    sweep_at(router, crm, 40)

    assert reasons(router)[-1] == (
        "sweep", "bob", "maria",
        "stranded: first touch missed: 15 min on the wall clock, and everyone it could rotate"
        " to has had it: escalated; everyone: rep maria",
    )  # fmt: skip


def test_a_working_hours_sla_reads_as_a_person_writes_it(make_router):
    router = make_router(sla_config_data(first_touch="1h30m", clock="working_hours"))
    crm = MemoryCrm()
    assign(router, crm)
    sweep_at(router, crm, 100)
    assert reasons(router)[-1][3] == (
        f"first touch missed: 1 h 30 min on the working-hours clock, 1st rotation; {POOL} chose bob"
    )


def test_a_dry_run_shows_the_reason_the_row_would_get(make_router):
    router, crm = make_router(sla_config_data()), MemoryCrm()
    assign(router, crm)
    (preview,) = sweep_at(router, crm, 20, dry_run=True)
    (done,) = sweep_at(router, crm, 20)
    assert preview.detail == done.detail == reasons(router)[-1][3]


def alice_leaves(make_config, store) -> Router:
    return Router(make_config(reps=[rep("alice", active=False), rep("bob"), rep("chen")]), store)


def moved_by_operator(router: Router, why: str | None) -> list[str]:
    job = Reassignment(router, "alice", TUESDAY_10AM, why=why)
    book = [Owned(lead("L1", owner="alice")), Owned(lead("L2", owner="alice"))]
    list(job.run(book, lambda batch: {item.id: None for item, _ in batch}))
    return [record.reason for record in router.store.log()]


def test_a_reassigned_row_says_an_operator_moved_it_and_why(make_config, store):
    router = alice_leaves(make_config, store)
    assert moved_by_operator(router, "alice left the team") == [
        "reassigned by an operator from alice: alice left the team;"
        " everyone: pool team (round_robin) chose bob; skipped alice: excluded: previously owned"
        " this lead",
        "reassigned by an operator from alice: alice left the team;"
        " everyone: pool team (round_robin) chose chen",
    ]


def test_a_reassigned_row_without_a_why_still_says_who_moved_it(make_config, store):
    router = alice_leaves(make_config, store)
    (first, _) = moved_by_operator(router, None)
    assert first.startswith("reassigned by an operator from alice; everyone: pool team")


def test_an_operators_why_becomes_one_ascii_line():
    assert one_line("moved to\n\tEMEA –\x07 für  now") == "moved to EMEA \\u2013 f\\xfcr now"
    assert one_line("x" * 500) == "x" * 197 + "..."


@pytest.fixture
def app_yaml(tmp_path):
    reps = [rep("alice", hubspot_owner_id="101", active=False),
            rep("bob", hubspot_owner_id="102"), rep("chen", hubspot_owner_id="103")]  # fmt: skip
    data = {
        "store": "sqlite:///state.sqlite",
        "timezone": "America/New_York",
        "reps": reps,
        "pools": {"team": {"members": ["alice", "bob", "chen"]}},
        "flow": [{"name": "everyone", "assign": {"pool": "team"}}],
        "fallback": {"rep": "bob"},
    }
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def leadrelay(app_yaml, *args):
    return CliRunner().invoke(main, ["--config", str(app_yaml), *args])


def test_reassign_cli_records_the_why_and_the_log_table_shows_source_and_previous_owner(
    app_yaml, fake_hubspot, monkeypatch
):
    monkeypatch.delenv("SALESFORCE_CLIENT_ID", raising=False)
    fake_hubspot.add_contact("1001", hubspot_owner_id="101", email="c@acme.com")
    moved = leadrelay(app_yaml, "reassign", "--from", "alice", "--why", "left the team")
    assert moved.exit_code == 0, moved.output

    header, row = leadrelay(app_yaml, "log").output.splitlines()
    assert header.split()[:7] == ["id", "time", "(UTC)", "source", "lead", "from", "owner"]
    assert row.split()[2:6] == ["reassign", "1001", "alice", "bob"]
    assert "reassigned by an operator from alice: left the team; everyone:" in row


def test_reassign_cli_refuses_a_why_longer_than_a_log_row_keeps(app_yaml):
    result = leadrelay(app_yaml, "reassign", "--from", "alice", "--why", "x" * 201)
    assert result.exit_code == 2
    assert "--why" in result.output and "at most 200 characters, got 201" in result.output
