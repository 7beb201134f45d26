"""What an SLA sweep costs: N overdue assignments swept against the faked CRM APIs.

Every lead is overdue and untouched (the worst case: each is read, routed again and written).
HubSpot is the loopback fake from ``tests/fakes/hubspot_api.py`` (the real hubspot-api-client
over HTTP, rate limiter lifted); Salesforce is the ``responses`` fake from
``tests/fakes/salesforce_api.py`` (the real simple-salesforce). Reported per CRM: API calls
per 100 leads (target: at most 2 reads and 1 write), wall time, and the sweep's peak Python
memory (tracemalloc, seeding excluded; target: flat from 10,000 to 100,000 leads). The fakes
run in this process, so their own request logs are emptied as the sweep goes and the owners
written to them are interned: their growth is not counted as ours.

Run: ``.venv/bin/python bench/sweep_bench.py [--sizes 10000 100000] [--crm hubspot salesforce]``.
Each size and CRM runs in its own process, so peaks do not mix.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from conftest import TUESDAY_10AM, config_data, rep  # noqa: E402

from workflows.config_builder import build_config  # noqa: E402
from workflows.model import Lead  # noqa: E402
from workflows.router import Router, RouteRequest  # noqa: E402
from workflows.sqlite_store import SqliteStore  # noqa: E402
from workflows.sweep import sweep  # noqa: E402

HUBSPOT_OWNERS = {"alice": "101", "bob": "102", "chen": "103", "dana": "104", "maria": "900"}
SALESFORCE_USERS = {
    "alice": "0055g00000AlIcEAAV", "bob": "0055g00000BoB01AAF", "chen": "0055g00000ChEn1AAF",
    "dana": "0055g00000DaNa1AAF", "maria": "0055g00000MaRiAAAF",
}  # fmt: skip
LATER = TUESDAY_10AM + timedelta(minutes=20)


def bench_config(store: Path) -> Any:
    reps = [
        rep(n, hubspot_owner_id=HUBSPOT_OWNERS[n], salesforce_user_id=SALESFORCE_USERS[n])
        for n in HUBSPOT_OWNERS
    ]
    data = config_data(
        reps=reps,
        pools={"team": {"members": ["alice", "bob", "chen", "dana"], "strategy": "round_robin"}},
        fallback={"rep": "maria"},
        store=f"sqlite:///{store}",
        sla={"first_touch": "15m", "clock": "wall", "max_reassignments": 2,
             "escalate_to": {"rep": "maria"}},
    )  # fmt: skip
    return build_config(data, source=store.with_name("app.yaml"))


def seed(router: Router, crm: str, count: int) -> list[tuple[str, str]]:
    """Assign ``count`` leads as the CRM's endpoint would; (lead id, owner's CRM id)."""
    out: list[tuple[str, str]] = []
    for start in range(0, count, 1000):
        ids = [lead_id(crm, n) for n in range(start, min(start + 1000, count))]
        requests = [RouteRequest(Lead(id=i, crm=crm), TUESDAY_10AM, source=crm) for i in ids]
        for i, result in zip(ids, router.route_many(requests), strict=True):
            out.append((i, result.decision.owner_crm_id or ""))
    return out


def lead_id(crm: str, n: int) -> str:
    return str(100000 + n) if crm == "hubspot" else f"00Q5g0000{n:06d}AAA"


class Interning(dict):
    """A fake's record whose written values are interned: each write to the fake would
    otherwise keep a fresh string per lead, and the fake's growth would show as ours."""

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, sys.intern(value) if isinstance(value, str) else value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


class Discarding(list):
    """A request log that only counts (the fakes keep every request otherwise)."""

    def __init__(self, counts: dict[str, int], key: Any) -> None:
        super().__init__()
        self.counts, self.key = counts, key

    def append(self, item: Any) -> None:
        name = self.key(item)
        if name:
            self.counts[name] = self.counts.get(name, 0) + 1


def run_hubspot(count: int, workdir: Path) -> dict[str, Any]:
    from fakes.hubspot_api import owner_record, start_fake

    from adapters.hubspot.client import HubSpotApi
    from adapters.hubspot.limits import RateLimiter
    from adapters.hubspot.read import HubSpotReader

    config = bench_config(workdir / "store.sqlite")
    store = SqliteStore(workdir / "store.sqlite")
    router = Router(config, store)
    fake = start_fake()
    fake.owners += [owner_record("104", "d@x.com", "D", "D", 9004),
                    owner_record("900", "m@x.com", "M", "M", 9900)]  # fmt: skip
    for contact_id, owner in seed(router, "hubspot", count):
        fake.contacts[contact_id] = Interning(
            hs_object_id=contact_id, hubspot_owner_id=sys.intern(owner), hs_lead_status="NEW"
        )
    counts: dict[str, int] = {}

    def kind(recorded: Any) -> str:
        if recorded.path.endswith("/batch/read"):
            return "read"
        return "write" if "/objects/contacts" in recorded.path else "other"

    fake.requests = Discarding(counts, kind)
    api = HubSpotApi(access_token=fake.token, host=fake.url,
                     limiter=RateLimiter(per_second=1e6, burst=1_000_000))  # fmt: skip
    readers = {"hubspot": HubSpotReader(api, config)}
    try:
        return measure(router, readers, count, counts)
    finally:
        fake.stop()
        store.close()


def run_salesforce(count: int, workdir: Path) -> dict[str, Any]:
    import responses
    from fakes.salesforce_api import FakeSalesforce

    from adapters.salesforce.auth import SalesforceConnection
    from adapters.salesforce.read import SalesforceReader

    config = bench_config(workdir / "store.sqlite")
    store = SqliteStore(workdir / "store.sqlite")
    router = Router(config, store)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeSalesforce(mock)
        fake.owners = Interning()
        for i, owner in seed(router, "salesforce", count):
            fake.owners[i] = owner
            fake.leads[i] = {"Id": i, "OwnerId": owner, "Status": "Open - Not Contacted",
                             "IsConverted": False, "IsDeleted": False, "LastName": "Doe",
                             "Company": "Acme"}  # fmt: skip
        counts: dict[str, int] = {}

        def kind(request: Any) -> str:
            url = str(request.url)
            return "read" if "/query" in url else "write" if "/sobjects" in url else "other"

        fake.requests = Discarding(counts, kind)
        fake.lead_queries = Discarding({}, lambda _: "")
        connection = SalesforceConnection("59.0", fake.direct_env())
        readers = {"salesforce": SalesforceReader(connection, config)}

        def forget() -> None:  # responses and the fake keep every call; ours do not count
            mock.calls.reset()
            for registered in mock.registered():  # each registered response keeps its calls too
                registered.calls.reset()
            fake.writes.clear()

        return measure(router, readers, count, counts, forget)


def measure(router, readers, count, counts, forget=None) -> dict[str, Any]:
    done = 0

    def on_action(_: Any) -> None:
        nonlocal done
        done += 1
        if forget is not None and done % 200 == 0:
            forget()

    tracemalloc.start()
    started = time.perf_counter()
    summary = sweep(router, readers, LATER, on_action=on_action)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert summary.counts == {"rotated": count}, summary.counts
    return {
        "leads": count,
        "reads_per_100": round(100 * counts.get("read", 0) / count, 2),
        "writes_per_100": round(100 * counts.get("write", 0) / count, 2),
        "seconds": round(seconds, 1),
        "leads_per_second": round(count / seconds),
        "peak_mib": round(peak / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--crm", nargs="+", default=["hubspot", "salesforce"])
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # crm size, in a child
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.one:
        crm, size = args.one[0], int(args.one[1])
        with tempfile.TemporaryDirectory() as tmp:
            run = run_hubspot if crm == "hubspot" else run_salesforce
            print(json.dumps(run(size, Path(tmp))))
        return
    print(f"{'crm':<11}{'leads':>8}{'reads/100':>11}{'writes/100':>12}{'seconds':>9}"
          f"{'leads/s':>9}{'peak MiB':>10}")  # fmt: skip
    for crm in args.crm:
        for size in args.sizes:
            child = subprocess.run(
                [sys.executable, __file__, "--one", crm, str(size)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            r = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"{crm:<11}{r['leads']:>8}{r['reads_per_100']:>11}{r['writes_per_100']:>12}"
                  f"{r['seconds']:>9}{r['leads_per_second']:>9}{r['peak_mib']:>10}")  # fmt: skip


if __name__ == "__main__":
    main()
