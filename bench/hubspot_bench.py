"""What POST /hubspot/action costs: leadrelay against a no-op Flask endpoint, both on gunicorn.

Same server (gunicorn gthread), same processes and threads, loopback load from wrk (Debian's
``wrk`` package; a Python load generator when it is missing). Every request is a distinct,
correctly signed execution (v2 and v3 signatures, like HubSpot sends) of a realistic contact,
so nothing is answered from the idempotency log. Scenarios:

- ``noop``: a Flask view that reads the body and answers a fixed ``outputFields``.
- ``output``: ``hubspot.write_owner: output`` with the embedded store; no API calls.
- ``api``: ``write_owner: api`` against a local fake HubSpot API, with the default budget
  (40 calls per 10 s, one bucket shared by every worker: about 4 contacts a second; a caller
  waits for a token within its answer's time budget, or is answered 503 for HubSpot to retry).
- ``api-unthrottled``: the same with the limiter lifted, to see the endpoint's own cost.
- ``batch``: ``write_owner: batch`` at the maximum rate: the answer is BLOCK, the workers'
  flushers write owners (``batch/update``) and complete executions (batch callback
  completion) from the outbox, on the default budget. Reports API calls per contact and the
  time from the answer to the owner written (the fake HubSpot's receipt of the batch update
  naming the contact, against the decision's time), p50 and p95.
- ``batch-20``: the same at a sustained 20 executions a second (HubSpot's rate to one app),
  paced by a Python sender (``--paced-seconds``, default 30).

Run: ``.venv/bin/python bench/hubspot_bench.py [--seconds 10] [--connections 8] [--repeat 3]
[--scenarios noop,output]``. Rows are medians over the rounds; the ratio is the median of
each round's ratio to the no-op run next to it.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from base64 import b64encode
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests")]

from flask import Flask, jsonify, request  # noqa: E402
from sample_leads import sample_leads  # noqa: E402

SECRET = "bench-client-secret"
PUBLIC_URL = "https://leads.example.com"
ACTION_URL = PUBLIC_URL + "/hubspot/action"
REPS = ["alice", "bob", "chen", "dana", "eli", "femi"]
RANGES = [(1, "1-5"), (5, "5-25"), (25, "25-50"), (50, "50-100"), (100, "100-500"),
          (500, "500-1000"), (1000, "1000+")]  # fmt: skip

WRK_SCRIPT = r"""
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  reqs = {}
  for line in io.lines(args[1] .. "." .. id) do
    local s2, s3, ts, body = line:match("([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)")
    reqs[#reqs + 1] = wrk.format("POST", "/hubspot/action", {
      ["Content-Type"] = "application/json", ["X-HubSpot-Signature"] = s2,
      ["X-HubSpot-Signature-Version"] = "v2", ["X-HubSpot-Signature-v3"] = s3,
      ["X-HubSpot-Request-Timestamp"] = ts}, body)
  end
  i = 0
end
function request()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
"""


# -- the two apps gunicorn serves ----------------------------------------------------------------
def noop_app() -> Flask:
    """The baseline: read the body, answer a fixed outputFields."""
    app = Flask("noop")

    @app.post("/hubspot/action")
    def action() -> Any:
        request.get_data()
        return jsonify(outputFields={"hs_execution_state": "SUCCESS", "owner_id": "101"})

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    return app


def leadrelay_app(unthrottled: bool = False, flusher: bool = False) -> Flask:
    """The real app (``$LEADRELAY_CONFIG``); ``unthrottled`` lifts the HubSpot API limiter;
    ``flusher`` starts batch mode's flusher, as ``leadrelay serve`` does in each worker."""
    from adapters.hubspot.client import HubSpotApi, api_base
    from adapters.hubspot.limits import RateLimiter
    from connector.app import create_app
    from connector.hubspot_flusher import start_flusher

    app = create_app()
    if flusher:
        start_flusher(app)
    if unthrottled:
        config = app.extensions["leadrelay"].config
        token = os.environ["HUBSPOT_ACCESS_TOKEN"]
        limiter = RateLimiter(per_second=1e6, burst=10**6)
        api = HubSpotApi(access_token=token, host=api_base(config), limiter=limiter)
        app.extensions["leadrelay"].hubspot_apis[(token, api_base(config))] = api
    return app


# -- inputs ------------------------------------------------------------------------------------
def bench_config(root: Path, write_owner: str, flush_every: int = 1) -> Path:
    """A realistic flow over six reps who work around the clock (results do not depend on
    the hour the bench runs)."""
    reps = [
        {"id": n, "email": f"{n}@example.com", "hubspot_owner_id": str(101 + i),
         "hours": "always", "languages": ["en", "es"] if n in ("alice", "bob") else ["en"]}
        for i, n in enumerate(REPS)
    ]  # fmt: skip
    data = {
        "store": f"sqlite:///{root / 'store.sqlite'}",
        "timezone": "America/New_York",
        "reps": reps,
        "pools": {
            "na-smb": {"members": ["alice", "bob", "chen"], "strategy": "round_robin"},
            "enterprise": {"members": ["dana", "eli"], "strategy": "weighted"},
            "intl": {"members": ["femi", "chen"], "strategy": "least_loaded"},
            "spanish": {"members": ["alice", "bob"]},
        },
        "flow": [
            {
                "name": "enterprise",
                "when": {"employees": {"gte": 1000}},
                "assign": {"pool": "enterprise"},
            },
            {"name": "spanish", "when": {"language": "es"}, "assign": {"pool": "spanish"}},
            {
                "name": "intl",
                "when": {"country": {"not_in": ["US", "CA"]}},
                "assign": {"pool": "intl", "else": {"pool": "na-smb"}},
            },
            {"name": "everyone", "assign": {"pool": "na-smb"}},
        ],
        "fallback": {"rep": "bob"},
        "hubspot": {"write_owner": write_owner, "batch": {"flush_every": flush_every}},
    }
    path = root / "app.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _range(employees: int) -> str:
    return [label for low, label in RANGES if employees >= low][-1]


def signed_lines(count: int, tag: str) -> list[str]:
    """``count`` distinct execution requests: v2 signature, v3 signature, timestamp, body."""
    lines = []
    stamp = str(int(time.time() * 1000))
    for i, row in enumerate(sample_leads(count, seed=11)):
        body = json.dumps(
            {
                "callbackId": f"ap-bench-{tag}-{i}",
                "origin": {
                    "portalId": 102670506,
                    "actionDefinitionId": 1,
                    "actionDefinitionVersion": 1,
                },
                "context": {"source": "WORKFLOWS", "workflowId": 7},
                "object": {
                    "objectId": 10_000 + i,
                    "objectType": "CONTACT",
                    "properties": {
                        "email": row["email"],
                        "country": row["country"],
                        "numemployees": _range(row["employees"]),
                        "hs_language": row["language"],
                        "hubspot_owner_id": "",
                    },
                },
                "inputFields": {"overwrite_owner": "false"},
            },
            separators=(",", ":"),
        )
        v2 = hashlib.sha256(f"{SECRET}POST{ACTION_URL}{body}".encode()).hexdigest()
        mac = hmac.new(SECRET.encode(), f"POST{ACTION_URL}{body}{stamp}".encode(), hashlib.sha256)
        lines.append(f"{v2}\t{b64encode(mac.digest()).decode()}\t{stamp}\t{body}")
    return lines


# -- serving and loading ----------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (gunicorn master and workers)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Server:
    """gunicorn serving one app factory, the way ``leadrelay serve`` does (gthread)."""

    def __init__(self, factory: str, env: dict[str, str], workers: int, threads: int) -> None:
        self.port = _free_port()
        command = [
            str(Path(sys.executable).with_name("gunicorn")), "--pythonpath",
            f"{REPO},{REPO / 'bench'}", "-k", "gthread", "-w", str(workers), "--threads",
            str(threads), "-b", f"127.0.0.1:{self.port}", "--timeout", "30",
            "--log-level", "warning", factory,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, env={**os.environ, **env})
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{factory} did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def run_wrk(port: int, lines: list[str], args: argparse.Namespace, work: Path) -> dict:
    per_thread = len(lines) // args.load_threads
    for t in range(args.load_threads):
        chunk = lines[t * per_thread : (t + 1) * per_thread]
        (work / f"requests.{t}").write_text("\n".join(chunk) + "\n")
    script = work / "action.lua"
    script.write_text(WRK_SCRIPT)
    output = subprocess.run(
        ["wrk", "-t", str(args.load_threads), "-c", str(args.connections), "-d",
         f"{args.seconds}s", "--latency", "-s", str(script), f"http://127.0.0.1:{port}",
         "--", str(work / "requests")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    # Anchored: "92.99%" ending the Latency stats line would match an unanchored "99%".
    p50 = re.search(r"^\s*50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s*99%\s+(\S+)", output, re.MULTILINE)
    return {
        "requests": total,
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
        "p50": p50.group(1) if p50 else "?",
        "p99": p99.group(1) if p99 else "?",
        "wrapped": total > per_thread * args.load_threads,
    }


def run_python_load(port: int, lines: list[str], args: argparse.Namespace, work: Path) -> dict:
    """A small keep-alive load generator for machines without wrk."""
    import http.client

    queue = iter(lines)
    lock = threading.Lock()
    done, errors, latencies = [0], [0], []
    stop_at = time.monotonic() + args.seconds

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        while time.monotonic() < stop_at:
            with lock:
                line = next(queue, None)
            if line is None:
                return
            s2, s3, stamp, body = line.split("\t", 3)
            headers = {"Content-Type": "application/json", "X-HubSpot-Signature": s2,
                       "X-HubSpot-Signature-Version": "v2", "X-HubSpot-Signature-v3": s3,
                       "X-HubSpot-Request-Timestamp": stamp}  # fmt: skip
            started = time.monotonic()
            conn.request("POST", "/hubspot/action", body=body, headers=headers)
            status = conn.getresponse()
            status.read()
            with lock:
                latencies.append(time.monotonic() - started)
                done[0] += 1
                errors[0] += status.status >= 300

    threads = [threading.Thread(target=worker) for _ in range(args.connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    pick = lambda q: f"{latencies[int(q * (len(latencies) - 1))] * 1000:.2f}ms"  # noqa: E731
    return {"requests": done[0], "errors": errors[0], "p50": pick(0.5), "p99": pick(0.99),
            "wrapped": False}  # fmt: skip


def run_paced(port: int, lines: list[str], args: argparse.Namespace, work: Path) -> dict:
    """``args.rate`` requests a second for ``args.paced_seconds``, each sent on schedule from
    a pool of ``args.connections`` keep-alive connections (a late answer never delays the
    next send)."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor

    local = threading.local()
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]

    def send(line: str) -> None:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port)
        s2, s3, stamp, body = line.split("\t", 3)
        headers = {"Content-Type": "application/json", "X-HubSpot-Signature": s2,
                   "X-HubSpot-Signature-Version": "v2", "X-HubSpot-Signature-v3": s3,
                   "X-HubSpot-Request-Timestamp": stamp}  # fmt: skip
        started = time.monotonic()
        local.conn.request("POST", "/hubspot/action", body=body, headers=headers)
        answer = local.conn.getresponse()
        answer.read()
        with lock:
            latencies.append(time.monotonic() - started)
            errors[0] += answer.status >= 300

    total = int(args.rate * args.paced_seconds)
    start = time.monotonic()
    with ThreadPoolExecutor(args.connections) as pool:
        for i, line in enumerate(lines[:total]):
            time.sleep(max(0.0, start + i / args.rate - time.monotonic()))
            pool.submit(send, line)
    latencies.sort()
    pick = lambda q: f"{latencies[int(q * (len(latencies) - 1))] * 1000:.2f}ms"  # noqa: E731
    return {"requests": len(latencies), "errors": errors[0], "p50": pick(0.5),
            "p99": pick(0.99), "wrapped": False, "seconds": args.paced_seconds}  # fmt: skip


def owner_latencies(fake: Any, records: list[Any]) -> list[float]:
    """Seconds from each decision to the fake HubSpot receiving its owner write."""
    written: dict[str, float] = {}
    for call in fake.requests:
        if call.path == "/crm/v3/objects/contacts/batch/update":
            for item in call.body["inputs"]:
                written.setdefault(str(item["id"]), call.at)
    return sorted(
        written[r.lead_id] - r.decided_at.timestamp() for r in records if r.lead_id in written
    )


def wait_for_outbox(fake: Any, routed: int, seconds: float = 60) -> None:
    """Until the fake saw every routed execution completed (or ``seconds`` passed)."""
    deadline = time.monotonic() + seconds
    while len(fake.batch_completed) < routed and time.monotonic() < deadline:
        time.sleep(0.2)


SCENARIOS = ("noop", "output", "api", "api-unthrottled", "batch", "batch-20")


# -- scenarios ---------------------------------------------------------------------------------
def scenario(name: str, args: argparse.Namespace, fake: Any = None) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"hubspot-bench-{name}-"))
    env = {"HUBSPOT_CLIENT_SECRET": SECRET, "LEADRELAY_PUBLIC_URL": PUBLIC_URL}
    batch = name.startswith("batch")
    if name == "noop":
        factory = "hubspot_bench:noop_app()"
    else:
        mode = "output" if name == "output" else "batch" if batch else "api"
        env["LEADRELAY_CONFIG"] = str(bench_config(work, mode, args.flush_every))
        factory = f"hubspot_bench:leadrelay_app({name == 'api-unthrottled'}, {batch})"
    if fake is not None:
        env.update(HUBSPOT_API_BASE=fake.url, HUBSPOT_ACCESS_TOKEN=fake.token)
        fake.requests.clear()
        fake.batch_completed.clear()
    server = Server(factory, env, args.workers, args.threads)
    try:
        lines = signed_lines(args.requests, f"{name}-{time.monotonic_ns()}")
        cpu_before = _cpu_seconds(server.process.pid)
        if name == "batch-20":
            load = run_paced
        else:
            load = run_wrk if shutil.which("wrk") and not args.python_load else run_python_load
        result = load(server.port, lines, args, work)
        result["cpu_ms"] = 1000 * (_cpu_seconds(server.process.pid) - cpu_before)
        if batch:
            wait_for_outbox(fake, result["requests"] - result["errors"])
    finally:
        server.stop()
    seconds = result.get("seconds", args.seconds)
    result["name"] = name
    result["rps"] = result["requests"] / seconds
    result["ok_rps"] = (result["requests"] - result["errors"]) / seconds
    if name != "noop":
        from workflows.sqlite_store import SqliteStore

        store = SqliteStore(work / "store.sqlite")
        records = list(store.log())
        written = sum(store.writeback(r.id)["status"] == "written" for r in records)
        store.close()
        result["routed"], result["written"] = len(records), written
        result["api_calls"] = len(fake.requests) if fake is not None else 0
        if batch:
            result["owner_latency"] = owner_latencies(fake, records)
            result["completed"] = len({c["callbackId"] for c in fake.batch_completed})
    shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--load-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--requests", type=int, default=40_000, help="distinct requests per run")
    parser.add_argument("--python-load", action="store_true", help="use the Python generator")
    parser.add_argument("--rate", type=float, default=20.0, help="batch-20's executions/s")
    parser.add_argument("--paced-seconds", type=int, default=30, help="batch-20's duration")
    parser.add_argument("--flush-every", type=int, default=1, help="hubspot.batch.flush_every")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated subset of: " + ", ".join(SCENARIOS),
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of every scenario; medians are reported"
    )
    args = parser.parse_args()

    from fakes.hubspot_api import owner_record, start_fake

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the fake's per-request lines
    fake = start_fake()
    fake.owners = [
        owner_record(str(101 + i), f"{n}@example.com", n.title(), "Rep", 9001 + i)
        for i, n in enumerate(REPS)
    ]
    for i in range(args.requests):
        fake.add_contact(str(10_000 + i))
    tool = "wrk" if shutil.which("wrk") and not args.python_load else "python load generator"
    print(
        f"gunicorn gthread, {args.workers} workers x {args.threads} threads; {tool}, "
        f"{args.connections} connections, {args.seconds} s per run; {os.cpu_count()} CPUs"
    )
    chosen = [name for name in SCENARIOS if name in args.scenarios.split(",")]
    # Rounds interleave the scenarios, so a slow minute of a shared machine hits all of them;
    # each round's ratio pairs runs made back to back.
    rounds = [
        {
            name: scenario(name, args, fake if name.startswith(("api", "batch")) else None)
            for name in chosen
        }  # fmt: skip
        for _ in range(args.repeat)
    ]
    fake.stop()
    report(chosen, rounds)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def report(chosen: list[str], rounds: list[dict[str, dict]]) -> None:
    """One line per scenario: its median run, and the median of its per-round ratios."""
    print(f"\n{'scenario':<16}{'req/s':>9}{'2xx/s':>9}{'non-2xx':>9}{'p50':>10}{'p99':>10}"
          f"{'CPU ms/req':>12}{'vs no-op':>10}{'API calls/lead':>16}")  # fmt: skip
    for name in chosen:
        runs = sorted((each[name] for each in rounds), key=lambda r: r["ok_rps"])
        r = runs[len(runs) // 2]
        ratios = [each[name]["ok_rps"] / each["noop"]["ok_rps"] for each in rounds
                  if "noop" in each]  # fmt: skip
        ratio = _median(ratios) if ratios else float("nan")
        cpu = _median([run["cpu_ms"] / max(run["requests"], 1) for run in runs])
        calls = f"{r['api_calls'] / r['routed']:.2f}" if r.get("routed") else "-"
        print(f"{name:<16}{r['rps']:>9.0f}{r['ok_rps']:>9.0f}{r['errors']:>9}"
              f"{r['p50']:>10}{r['p99']:>10}{cpu:>12.2f}{ratio:>10.2f}{calls:>16}")  # fmt: skip
        if len(ratios) > 1 and name != "noop":
            print(f"  ratio per round: {', '.join(f'{x:.2f}' for x in ratios)}")
        if r.get("wrapped") and name != "noop":
            print(f"  note: {name} ran out of distinct requests; raise --requests")
    for name in chosen:
        if name == "noop":
            continue
        r = rounds[-1][name]
        print(f"{name} (last round): {r['routed']} contacts routed, {r['written']} owners "
              f"written through the API, {r['api_calls']} API calls")  # fmt: skip
        if "owner_latency" in r:
            lat = r["owner_latency"]
            p50, p95 = (lat[int(q * (len(lat) - 1))] if lat else float("nan") for q in (0.5, 0.95))
            print(f"  {r['completed']} executions completed; answer to owner written: "
                  f"p50 {p50:.2f} s, p95 {p95:.2f} s ({len(lat)} owners)")  # fmt: skip


if __name__ == "__main__":
    main()
