"""Logged routing throughput of the embedded store and the PostgreSQL store, side by side.

The same work on each store: PROCESSES processes (gunicorn workers) of THREADS threads each
route fresh leads through one round-robin pool of 10 reps, each decision logged under its own
idempotency key, the way CRM deliveries arrive. Prints decisions per second per store, the
latency percentiles of one decision, the CPU time one decision costs (in the workers, and for
PostgreSQL in its server processes, read from /proc when the server runs on this machine), and
the PostgreSQL / embedded ratio (target >= 0.7).

    python bench/store_bench.py [--processes 2] [--threads 4] [--leads 4000]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
        [--pg-option=-csynchronous_commit=off] [--embedded-synchronous full]

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


def worker(
    url: str, name: str, threads: int, leads: int, start: Any, finish: Any, results: Any
) -> None:
    """One process: open the store, wait for the start, route ``leads`` over ``threads``;
    close the store once told to (its server processes are measured until then)."""
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
    began, cpu = time.time(), time.process_time()
    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put((began, time.time(), latencies, time.process_time() - cpu))
    finish.wait()
    store.close()


def measure(
    url: str, processes: int, threads: int, leads: int, server: Any = None
) -> dict[str, float]:
    """Run the workers; their throughput, latencies and CPU seconds per decision (their own,
    and with ``server``, a callable giving the CPU seconds of their server processes)."""
    ctx = multiprocessing.get_context("spawn")
    start, finish, results = ctx.Event(), ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(
            target=worker,
            args=(url, f"p{n}", threads, leads // processes, start, finish, results),
        )
        for n in range(processes)
    ]
    for process in workers:
        process.start()
    time.sleep(3)  # every worker open and warm before the start
    before = server() if server else {}
    start.set()
    done = [results.get(timeout=600) for _ in workers]
    after = server() if server else {}
    finish.set()
    for process in workers:
        process.join()
    elapsed = max(end for _, end, _, _ in done) - min(began for began, _, _, _ in done)
    latencies = sorted(x for _, _, lat, _ in done for x in lat)
    count = len(latencies)
    server_s = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
    return {
        "per_s": count / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(count * 0.99) - 1] * 1000,
        "client_cpu_ms": sum(cpu for _, _, _, cpu in done) / count * 1000,
        "server_cpu_ms": server_s / count * 1000,
    }


def backend_cpu(url: str, application: str) -> Any:
    """A callable giving the CPU seconds so far of each server process of the bench's
    connections (by pid); none when the server's /proc is not this machine's."""
    tick = os.sysconf("SC_CLK_TCK")

    def read() -> dict[int, float]:
        with psycopg.connect(url, autocommit=True) as conn:
            pids = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application,)
            ).fetchall()
        found = {}
        for (pid,) in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            found[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        return found

    return read


def scoped(url: str, schema: str, option: str | None) -> str:
    options = " ".join(filter(None, [option, f"-csearch_path={schema}"]))
    return f"{url}{'&' if '?' in url else '?'}options={quote(options)}&application_name={schema}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--leads", type=int, default=4000)
    parser.add_argument("--postgres", default=os.environ.get("LEADRELAY_TEST_POSTGRES_URL"))
    parser.add_argument("--pg-option", help="a libpq -c option, e.g. -csynchronous_commit=off")
    parser.add_argument(
        "--embedded-synchronous",
        choices=("normal", "full"),
        default="normal",
        help="the embedded store's durability: normal (the default: survives a crash of the "
        "process) or full (an fsync per commit, survives power loss, as PostgreSQL's default)",
    )
    args = parser.parse_args()
    if not args.postgres:
        parser.error("name a PostgreSQL database: --postgres or $LEADRELAY_TEST_POSTGRES_URL")
    shape = (args.processes, args.threads, args.leads)
    with tempfile.TemporaryDirectory() as tmp:
        embedded = measure(
            f"sqlite:///{tmp}/bench.sqlite?synchronous={args.embedded_synchronous}", *shape
        )
    schema = f"lr_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        url = scoped(args.postgres, schema, args.pg_option)
        with psycopg.connect(url, autocommit=True) as conn:
            upgrade(conn)
        postgres = measure(url, *shape, server=backend_cpu(args.postgres, schema))
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    print(f"{args.processes} processes x {args.threads} threads, {args.leads} logged decisions,"
          f" load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    for name, figures in (("embedded", embedded), ("postgresql", postgres)):
        print(f"{name:>11}: {figures['per_s']:7.0f}/s  p50 {figures['p50_ms']:6.2f} ms"
              f"  p99 {figures['p99_ms']:6.2f} ms  CPU per decision:"
              f" client {figures['client_cpu_ms']:.2f} ms"
              f" + server {figures['server_cpu_ms']:.2f} ms")  # fmt: skip
    print(f"ratio postgresql/embedded: {postgres['per_s'] / embedded['per_s']:.2f} (target 0.7)")


if __name__ == "__main__":
    main()
