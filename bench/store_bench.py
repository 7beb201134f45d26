"""Logged routing throughput of the embedded store and the PostgreSQL store, side by side.

The same work on each store: PROCESSES processes (gunicorn workers) of THREADS threads each
route fresh leads through one round-robin pool of 10 reps, each decision logged under its own
idempotency key, the way CRM deliveries arrive. Prints decisions per second per store, the
latency percentiles of one decision, and the PostgreSQL / embedded ratio (target >= 0.7).

    python bench/store_bench.py [--processes 2] [--threads 4] [--leads 4000]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
        [--pg-option -csynchronous_commit=off]

The PostgreSQL store runs on a new schema of the database named (default:
$LEADRELAY_TEST_POSTGRES_URL), dropped afterwards. Figures vary with the machine's load: the
embedded store decides inside the process, the PostgreSQL store pays two round trips to
another process per decision (or per batch of concurrent ones), so on a busy 2-core machine
every wait for the server's CPU shows.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from workflows.config_builder import build_config  # noqa: E402
from workflows.model import Lead  # noqa: E402
from workflows.postgres_schema import upgrade  # noqa: E402
from workflows.router import Router  # noqa: E402
from workflows.store_registry import open_store  # noqa: E402

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
REPS = [f"r{i}" for i in range(10)]


def config(tmp: Path) -> Any:
    data = {
        "reps": [{"id": r, "hours": "always", "daily_cap": 10**6} for r in REPS],
        "pools": {"team": {"members": REPS, "strategy": "round_robin"}},
        "flow": [{"name": "everyone", "assign": {"pool": "team"}}],
        "fallback": {"rep": REPS[0]},
    }
    return build_config(data, source=tmp / "app.yaml")


def worker(url: str, name: str, threads: int, leads: int, start: Any, results: Any) -> None:
    """One process: open the store, wait for the start, route ``leads`` over ``threads``."""
    store = open_store(url)
    router = Router(config(Path(tempfile.mkdtemp())), store)
    router.route(Lead(id=f"{name}-warm"), NOW, idempotency_key=f"{name}-warm")
    latencies: list[float] = []

    def run(t: int) -> None:
        for i in range(leads // threads):
            key = f"{name}-{t}-{i}"
            began = time.perf_counter()
            router.route(Lead(id=key), NOW, idempotency_key=key)
            latencies.append(time.perf_counter() - began)

    start.wait()
    began = time.time()
    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put((began, time.time(), latencies))
    store.close()


def measure(url: str, processes: int, threads: int, leads: int) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(target=worker, args=(url, f"p{n}", threads, leads // processes, start, results))
        for n in range(processes)
    ]
    for process in workers:
        process.start()
    time.sleep(3)  # every worker open and warm before the start
    start.set()
    done = [results.get(timeout=600) for _ in workers]
    for process in workers:
        process.join()
    elapsed = max(end for _, end, _ in done) - min(began for began, _, _ in done)
    latencies = sorted(x for _, _, lat in done for x in lat)
    count = len(latencies)
    return {
        "per_s": count / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(count * 0.99) - 1] * 1000,
    }


def scoped(url: str, schema: str, option: str | None) -> str:
    options = " ".join(filter(None, [option, f"-csearch_path={schema}"]))
    return f"{url}{'&' if '?' in url else '?'}options={quote(options)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--leads", type=int, default=4000)
    parser.add_argument("--postgres", default=os.environ.get("LEADRELAY_TEST_POSTGRES_URL"))
    parser.add_argument("--pg-option", help="a libpq -c option, e.g. -csynchronous_commit=off")
    args = parser.parse_args()
    if not args.postgres:
        parser.error("name a PostgreSQL database: --postgres or $LEADRELAY_TEST_POSTGRES_URL")
    shape = (args.processes, args.threads, args.leads)
    with tempfile.TemporaryDirectory() as tmp:
        embedded = measure(f"sqlite:///{tmp}/bench.sqlite", *shape)
    schema = f"lr_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        url = scoped(args.postgres, schema, args.pg_option)
        with psycopg.connect(url, autocommit=True) as conn:
            upgrade(conn)
        postgres = measure(url, *shape)
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    print(f"{args.processes} processes x {args.threads} threads, {args.leads} logged decisions,"
          f" load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    for name, figures in (("embedded", embedded), ("postgresql", postgres)):
        print(f"{name:>11}: {figures['per_s']:7.0f}/s  p50 {figures['p50_ms']:6.2f} ms"
              f"  p99 {figures['p99_ms']:6.2f} ms")  # fmt: skip
    print(f"ratio postgresql/embedded: {postgres['per_s'] / embedded['per_s']:.2f} (target 0.7)")


if __name__ == "__main__":
    main()
