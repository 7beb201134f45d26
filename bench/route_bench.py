"""Routing speed: decisions per second and p50/p99 latency for 10, 100 and 1,000 rules.

300 reps in 30 pools, in-process, on the embedded store. "dry run" decides without the
durable log write (it still reads rotation state from the store); "logged" writes every
decision durably, each under its own idempotency key, as CRM deliveries do: one caller at a
time, then 8 threads at once (as gunicorn's threads call it; concurrent decisions share a
commit), then batches of 100 (as one Salesforce outbound message).

    python bench/route_bench.py [--leads 3000]

Targets: p99 under 1 ms at 1,000 rules without the write; 1,000 rules within 3x of 10 rules;
at least 2,000 logged assignments per second.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workflows.config_builder import build_config  # noqa: E402
from workflows.model import Lead  # noqa: E402
from workflows.router import Router, RouteRequest  # noqa: E402
from workflows.sqlite_store import SqliteStore  # noqa: E402

REPS = 300
POOLS = 30
COUNTRIES = [f"C{i:03d}" for i in range(200)]
STRATEGIES = ["round_robin", "weighted", "least_loaded", "first_available"]
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def make_config(rules: int, tmp: Path):
    """A flow of ``rules`` rules: mostly country/domain lists, a few unindexed range rules."""
    rng = random.Random(rules)
    reps = [
        {"id": f"r{i}", "hours": "always", "weight": 1 + i % 3, "languages": ["en"],
         "daily_cap": 100_000}
        for i in range(REPS)
    ]  # fmt: skip
    pools = {
        f"p{j}": {"members": [f"r{i}" for i in range(j * 10, j * 10 + 10)],
                  "strategy": STRATEGIES[j % 4]}
        for j in range(POOLS)
    }  # fmt: skip
    flow = []
    for k in range(rules - 1):
        pool = {"pool": f"p{k % POOLS}"}
        if k % 50 == 49:  # an unindexed rule now and then: a range on revenue and score
            when = {"all": [{"annual_revenue": {"gte": 10**9 + k}}, {"score": {"gt": 90}}]}
        elif k % 2:
            when = {"country": {"in": rng.sample(COUNTRIES, 3)}, "employees": {"gte": k % 7}}
        else:
            when = {"domain": {"in": [f"d{k}-{n}.com" for n in range(5)]}}
        flow.append({"name": f"rule-{k}", "when": when, "assign": pool})
    flow.append({"name": "everyone-else", "assign": {"pool": "p0"}})
    data = {"reps": reps, "pools": pools, "flow": flow, "fallback": {"pool": "p1"}}
    return build_config(data, source=tmp / "app.yaml")


def make_leads(count: int, rules: int) -> list[Lead]:
    rng = random.Random(7)
    leads = []
    for i in range(count):
        k = rng.randrange(rules)
        domain = f"d{k - k % 2}-{rng.randrange(5)}.com" if rng.random() < 0.5 else "other.com"
        leads.append(
            Lead(id=f"L{i}", email=f"x{i}@{domain}", country=rng.choice(COUNTRIES),
                 employees=rng.randrange(10_000), annual_revenue=rng.random() * 2e9,
                 score=rng.randrange(100))
        )  # fmt: skip
    return leads


def measure(router: Router, leads: list[Lead], logged: bool) -> list[float]:
    latencies = []
    for n, lead in enumerate(leads):
        start = time.perf_counter()
        router.route(lead, NOW, dry_run=not logged, idempotency_key=f"k{n}" if logged else None)
        latencies.append(time.perf_counter() - start)
    return latencies


def row(label: str, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1e3
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1e3
    rate = len(latencies) / sum(latencies)
    return f"{label:<28} {rate:>10,.0f}/s   p50 {p50:6.3f} ms   p99 {p99:6.3f} ms"


def threaded_rate(router: Router, leads: list[Lead], threads: int) -> float:
    chunks = [leads[i::threads] for i in range(threads)]

    def work(chunk: list[Lead], tag: int) -> None:
        for n, lead in enumerate(chunk):
            router.route(lead, NOW, idempotency_key=f"t{tag}-{n}")

    workers = [threading.Thread(target=work, args=(c, i)) for i, c in enumerate(chunks)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(leads) / (time.perf_counter() - start)


def batch_rate(router: Router, leads: list[Lead], size: int) -> float:
    start = time.perf_counter()
    for first in range(0, len(leads), size):
        batch = leads[first : first + size]
        router.route_many(
            [
                RouteRequest(lead, NOW, idempotency_key=f"b{first}-{n}")
                for n, lead in enumerate(batch)
            ]
        )
    return len(leads) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=3000)
    args = parser.parse_args()
    p50_by_rules: dict[int, float] = {}
    print(f"{REPS} reps, {POOLS} pools, {args.leads} leads per run, embedded store")
    for rules in (10, 100, 1000):
        with tempfile.TemporaryDirectory() as tmp:
            config = make_config(rules, Path(tmp))
            leads = make_leads(args.leads, rules)
            store = SqliteStore(Path(tmp) / "bench.sqlite")
            router = Router(config, store)
            measure(router, leads[:300], logged=False)  # warm up
            dry = measure(router, leads, logged=False)
            logged = measure(router, leads, logged=True)
            p50_by_rules[rules] = statistics.median(dry)
            print(row(f"{rules:>5} rules, dry run", dry))
            print(row(f"{rules:>5} rules, logged", logged))
            if rules == 1000:
                rate = threaded_rate(router, make_leads(args.leads, rules), threads=8)
                print(f"{rules:>5} rules, logged, 8 threads  {rate:>9,.0f}/s")
                rate = batch_rate(router, make_leads(args.leads, rules), size=100)
                print(f"{rules:>5} rules, logged, batches of 100 {rate:>5,.0f}/s")
            store.close()
    ratio = p50_by_rules[1000] / p50_by_rules[10]
    print(f"cost at 1000 rules / cost at 10 rules (dry-run p50): {ratio:.2f}x")


if __name__ == "__main__":
    main()
