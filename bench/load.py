"""Load and faults on the deployment of README's "Running several instances": leadrelay
instances (gunicorn, 2 workers each) behind nginx, one store, the CRMs faked on loopback by
the sandbox's stand-ins. A mix of signed HubSpot executions, Salesforce Outbound Messages and
Flow calls (retried after failures, some delivered twice), then the checks: no lead decided
twice, every retry answered with its first decision, every accepted lead's owner written to
its CRM, round robin exact and weighted within 1 of its weights, only retryable answers.

    python bench/load.py [--duration 30] [--rate 40] [--store postgresql|sqlite]
        [--instances 1|2] [--no-kill] [--db-fault none|terminate] [--restart-db]
        [--postgres URL] [--slow-clients]

With 2 instances one is SIGKILLed (master and workers) at 40 % of the run: its clients'
retries must complete on the survivor, which must also take the SLA sweep over.
``--db-fault terminate`` ends leadrelay's PostgreSQL connections (pg_terminate_backend) at
60 %; ``--restart-db`` restarts the machine's server instead (``pg_ctlcluster 15 main
restart``: every other user of that server sees it too). ``--slow-clients`` measures /healthz
probes while 20 clients trickle headers, straight to one instance and through nginx.
Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import psycopg  # noqa: E402
import yaml  # noqa: E402
from deployment import DeploymentError, Instance, Proxy, find_nginx, free_port  # noqa: E402
from load_checks import (  # noqa: E402
    LOAD_SOURCES,
    Figures,
    Owners,
    check_every_lead_accepted,
    check_one_decision_per_lead,
    check_only_retryable_failures,
    check_owners_written,
    check_retries_answer_first_decision,
    check_spread,
    figures,
    spread_summary,
)
from load_traffic import Endpoints, Load  # noqa: E402
from slow_clients import probe_while_slow  # noqa: E402

from adapters.hubspot.contact import contact_properties  # noqa: E402
from connector.sandbox.hubspot_standin import HubSpotStandIn, owner  # noqa: E402
from connector.sandbox.loopback import LoopbackServer  # noqa: E402
from connector.sandbox.run import Secrets, server_env  # noqa: E402
from connector.sandbox.salesforce_standin import SalesforceStandIn, user  # noqa: E402
from connector.sandbox.team import ORG_ID, PORTAL_ID, QUEUE_ID  # noqa: E402
from connector.sandbox.tls import server_context, write_ca_bundle, write_identity  # noqa: E402
from workflows.config_loader import load_config  # noqa: E402
from workflows.postgres_schema import upgrade  # noqa: E402
from workflows.store_registry import open_shared_values, open_store  # noqa: E402

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
POOLS: dict[str, dict[str, int]] = {
    "rr": {"ana": 1, "ben": 1, "chen": 1, "dara": 1},  # round robin: weights all 1
    "wt": {"eli": 3, "fay": 2, "gus": 1},
}
SWEEP_EVERY = 2  # seconds: the sweep runs often enough to see it move
KILL_AT, FAULT_AT = 0.4, 0.6  # of the run's duration


@dataclass
class Options:
    duration: float = 30.0
    rate: float = 40.0
    store: str = "postgresql"
    instances: int = 2
    kill: bool = True  # SIGKILL the last instance mid-run (with 2 instances)
    kill_at: float = KILL_AT  # of the duration
    db_fault: str = "none"  # none, terminate (pg_terminate_backend) or restart
    postgres: str = field(default_factory=lambda: os.environ.get(
        "LEADRELAY_TEST_POSTGRES_URL", DEFAULT_POSTGRES))  # fmt: skip
    seed: int = 14
    postgres_schema_url: str = ""  # a schema made by the caller (the test); else one of ours


@dataclass
class Outcome:
    figures: Figures
    problems: list[str]
    notes: list[str]

    @property
    def passed(self) -> bool:
        return not self.problems


def load_config_data(store: str) -> dict[str, Any]:
    """The load's app.yaml: reps always working (no hours, leave or caps: the spread must be
    exact), a round-robin pool for US leads, a weighted one for the rest, an SLA far away
    (the sweep runs every 2 s and finds nothing due: the rotation stays the load's alone)."""
    return {
        "store": store,
        "timezone": "UTC",
        "reps": [
            {
                "id": rep,
                "hubspot_owner_id": str(301 + n),
                "salesforce_user_id": f"005LOAD{n + 1:08d}AAA",
                "weight": weight,
            }
            for n, (rep, weight) in enumerate(
                (r, w) for pool in POOLS.values() for r, w in pool.items()
            )
        ],  # fmt: skip
        "pools": {
            "rr": {"members": list(POOLS["rr"]), "strategy": "round_robin"},
            "wt": {"members": list(POOLS["wt"]), "strategy": "weighted"},
        },
        "flow": [{"name": "us", "when": {"country": "US"}, "assign": {"pool": "rr"}}],
        "fallback": {"pool": "wt"},
        "hubspot": {"portal_ids": [PORTAL_ID], "write_owner": "api", "max_calls_per_10s": 250},
        "salesforce": {"org_ids": [ORG_ID]},
        "sla": {"first_touch": "1d", "clock": "wall", "sweep_every": f"{SWEEP_EVERY}s"},
    }


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A new schema on ``url``'s database, upgraded, its connections labelled (so that a
    fault can end exactly them); dropped at the end."""
    schema = f"lr_load_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    scoped = f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"
    try:
        with psycopg.connect(scoped, autocommit=True) as conn:
            upgrade(conn)
        yield scoped
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def labelled(url: str, label: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={label}"


class DatabaseFault:
    """Ends every connection of leadrelay's (by application_name) for about a second, or
    restarts the machine's PostgreSQL server (``--restart-db``), without blocking the load."""

    def __init__(self, admin_url: str, label: str, kind: str) -> None:
        self.admin_url, self.label, self.kind = admin_url, label, kind
        self.terminated = 0
        self.window: tuple[float, float] | None = None
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="db fault", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        if self.kind == "restart":
            subprocess.run(["pg_ctlcluster", "15", "main", "restart"], check=True)
        else:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                while time.monotonic() - started < 1.0:
                    row = conn.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE application_name = %s",
                        (self.label,),
                    ).fetchone()
                    self.terminated += int(row[0]) if row else 0
                    time.sleep(0.1)
        self.window = (started, time.monotonic())

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=120)


def first_sweep_after(instance: Instance, offset: int) -> datetime | None:
    """When ``instance`` first logged a sweep past ``offset`` of its log (gunicorn's stamp:
    ``[2026-11-30 15:15:57 +0000] [6243] [INFO] SLA sweep: ...``)."""
    for line in instance.output()[offset:].splitlines():
        if "SLA sweep:" in line and line.startswith("["):
            return datetime.strptime(line[1 : line.index("]")], "%Y-%m-%d %H:%M:%S %z")
    return None


def run_load(options: Options, directory: Path, say: Callable[[str], None] = print) -> Outcome:
    """One run of the load on a fresh store; the figures and every problem the checks found."""
    nginx = find_nginx()
    if nginx is None:
        raise DeploymentError(
            "nginx is not installed: `make test` installs it (apt-get install nginx)"
        )
    rng = random.Random(options.seed)
    secrets = Secrets.generate()
    flow_token = uuid.uuid4().hex
    config_data = load_config_data("")
    reps = config_data["reps"]
    hubspot = HubSpotStandIn(
        secrets.hubspot_token,
        [owner(r["hubspot_owner_id"], f"{r['id']}@load.example", r["id"], 9001 + n)
         for n, r in enumerate(reps)],
        PORTAL_ID,
    )  # fmt: skip
    salesforce = SalesforceStandIn(
        secrets.salesforce_token,
        [user(r["salesforce_user_id"], r["id"], f"{r['id']}@load.example") for r in reps],
        ORG_ID,
    )
    owners = Owners(
        {r["id"]: r["hubspot_owner_id"] for r in reps},
        {r["id"]: r["salesforce_user_id"] for r in reps},
    )
    notes: list[str] = []
    label = f"leadrelay-load-{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        cert, key = write_identity(directory)
        bundle = write_ca_bundle(directory, cert, os.environ.get("REQUESTS_CA_BUNDLE"))
        hubspot_server = LoopbackServer(hubspot.app).start()
        stack.callback(hubspot_server.stop)
        salesforce_server = LoopbackServer(salesforce.app, tls=server_context(cert, key)).start()
        stack.callback(salesforce_server.stop)
        if options.store == "postgresql":
            url = options.postgres_schema_url or stack.enter_context(
                postgres_schema(options.postgres)
            )
            store_url = labelled(url, label)
        else:
            store_url = f"sqlite:///{directory / 'load.sqlite'}"
        config_data["store"] = store_url
        config_path = directory / "app.yaml"
        config_path.write_text(yaml.safe_dump(config_data, sort_keys=False))
        proxy_port = free_port()
        env = server_env(os.environ, hubspot_server.url, salesforce_server.url, secrets, bundle)
        env |= {"LEADRELAY_FLOW_TOKEN": flow_token,
                "LEADRELAY_PUBLIC_URL": f"http://127.0.0.1:{proxy_port}"}  # fmt: skip
        instances = [
            Instance(f"instance{n + 1}", config_path, env, directory)
            for n in range(options.instances)
        ]
        for instance in instances:
            stack.callback(instance.stop)
            instance.start()
        proxy = Proxy(directory, [i.port for i in instances], nginx, proxy_port)
        stack.callback(proxy.stop)
        proxy.start()
        say(
            f"{options.instances} instance(s) on ports {[i.port for i in instances]} behind nginx"
            f" on {proxy.port}, store {options.store}; {options.rate:g} leads/s for"
            f" {options.duration:g} s"
        )
        endpoints = Endpoints(
            proxy.base, salesforce_server.url, secrets.hubspot_client_secret,
            secrets.outbound_token, flow_token, PORTAL_ID, ORG_ID, QUEUE_ID,
        )  # fmt: skip
        config = load_config(config_path)
        load = Load(endpoints, hubspot, salesforce, contact_properties(config), rng)
        kill = options.kill and len(instances) > 1
        killed: dict[str, float | int] = {}
        fault = (
            DatabaseFault(options.postgres, label, options.db_fault)
            if options.store == "postgresql" and options.db_fault != "none"
            else None
        )

        def during(elapsed: float) -> None:
            if kill and not killed and elapsed >= options.kill_at * options.duration:
                killed["offset"] = len(instances[0].output())
                killed["at"] = time.time()
                instances[-1].kill()
                say(f"  {elapsed:5.1f} s: SIGKILL to {instances[-1].name} (master and workers)")
            if fault is not None and not fault.started and elapsed >= FAULT_AT * options.duration:
                fault.start()
                say(f"  {elapsed:5.1f} s: database fault ({options.db_fault})")

        started = load.run(options.rate, options.duration, during)
        problems: list[str] = []
        if fault is not None:
            fault.join()
            begin, end = fault.window or (0.0, 0.0)
            refused = sum(
                1
                for lead in load.leads
                for answer in lead.answers
                if begin <= answer.sent_at <= end + 0.5 and not 200 <= answer.status < 300
            )
            what = (
                f"the server restarted in {end - begin:.1f} s"
                if options.db_fault == "restart"
                else f"{fault.terminated} connections ended"
            )
            notes.append(f"database fault: {what}, {refused} retryable answers during it")
        if killed:
            # The dead instance's sweep lock went with its connection: the survivor sweeps at
            # its next run, within one sweep interval (and a second of gunicorn's stamps).
            swept = first_sweep_after(instances[0], int(killed["offset"]))
            delay = (swept.timestamp() - killed["at"]) if swept else None
            if delay is None or delay > SWEEP_EVERY + 1:
                problems.append(
                    f"{instances[0].name} did not sweep within {SWEEP_EVERY} s of the kill"
                )
            else:
                notes.append(f"{instances[0].name} swept {max(delay, 0):.1f} s after the kill")
        store = open_store(store_url)
        try:
            log = [r for r in store.log() if r.source in LOAD_SOURCES]
        finally:
            store.close()
        values = open_shared_values(store_url)
        try:
            with values.shared_value("sweep:last") as last:
                notes.append(f"sweep:last {last.read().decode()[:200]}")
        finally:
            values.close()
        crm_owner = {
            (lead.crm, lead.record_id): (
                hubspot.contact(lead.record_id).get("hubspot_owner_id")
                if lead.crm == "hubspot"
                else salesforce.lead(lead.record_id).get("OwnerId")
            )
            for lead in load.leads
        }
        problems += check_every_lead_accepted(load.leads)
        problems += check_one_decision_per_lead(load.leads, log)
        problems += check_retries_answer_first_decision(load.leads)
        problems += check_owners_written(load.leads, log, crm_owner, owners)
        problems += check_spread(log, POOLS)
        problems += check_only_retryable_failures(load.leads)
        duplicates = sum(a.duplicate for lead in load.leads for a in lead.answers)
        notes.append(f"{len(load.leads)} leads, {duplicates} delivered twice, {len(log)} decisions")
        notes.append(f"spread: {spread_summary(log, POOLS)}")
        return Outcome(figures(load.leads, started, options.duration), problems, notes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=40.0, help="new leads a second")
    parser.add_argument("--store", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--instances", type=int, choices=(1, 2), default=2)
    parser.add_argument("--no-kill", action="store_true", help="keep both instances alive")
    parser.add_argument("--db-fault", choices=("none", "terminate"), default="none")
    parser.add_argument("--restart-db", action="store_true", help="pg_ctlcluster 15 main restart")
    parser.add_argument("--postgres", default=Options().postgres, help="server and database")
    parser.add_argument("--slow-clients", action="store_true", help="also measure slow clients")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    options = Options(
        duration=args.duration, rate=args.rate, store=args.store, instances=args.instances,
        kill=not args.no_kill, db_fault="restart" if args.restart_db else args.db_fault,
        postgres=args.postgres, seed=args.seed,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="leadrelay-load-") as tmp:
        try:
            outcome = run_load(options, Path(tmp))
        except DeploymentError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(outcome.figures.describe())
    for note in outcome.notes:
        print(f"  {note}")
    for problem in outcome.problems:
        print(f"FAILED: {problem}")
    if args.slow_clients:
        with tempfile.TemporaryDirectory(prefix="leadrelay-slow-") as tmp:
            print(probe_while_slow(Path(tmp)))
    print("all checks passed" if outcome.passed else f"{len(outcome.problems)} problems")
    return 0 if outcome.passed else 1


if __name__ == "__main__":
    sys.exit(main())
