"""The ops console's queries at 1,000,000 log records: pages newest first, filtered, by cursor.

The store is filled without the router (deciding a million leads would take most of an hour):
each record is made as the router would make it (``AssignmentRecord`` with a whole
``Decision``: rule path, candidates, skipped reps, reason), turned into rows by the ledger
(``ledger.record_rows``: the lead's history, its SLA terms and deadline index, its initial
write-back status), and applied through the store's own transactions (``tx.apply``, 5,000
records a commit), so the ``assignments`` table is projected by the same commit path as in
production. Then SLA settlements, rotations and escalations (``ledger.settle_rows``),
write-back results (``ledger.writeback_rows``) and CRM outcomes (``ledger.outcome_rows``) go
through the same path. 20 reps, 9 rules (nested under ``enterprise/`` and ``smb/``), six
sources, both CRMs, spread over 90 days. The filled file is kept in ``bench/.data/`` (2.2 GB,
about 14 minutes to fill here) and reused by the next run; ``--rebuild`` makes it again.

    python bench/console_bench.py [--records 1000000] [--runs 25] [--rebuild]

Each query is timed ``--runs`` times (median and p90): first in the store
(``Store.assignments``, a page of 50 records with their SLA state), then over HTTP with Flask's
test client, ``GET /ops/assignments`` and ``GET /api/assignments`` with
``Authorization: Bearer $LEADRELAY_OPS_TOKEN`` (a random token when unset), when those routes
answer 200. Target: every query under 200 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workflows import ledger  # noqa: E402
from workflows.config_builder import build_config  # noqa: E402
from workflows.model import AssignmentRecord, Decision, Outcome  # noqa: E402
from workflows.sla_clock import to_key  # noqa: E402
from workflows.sqlite_store import SqliteStore  # noqa: E402
from workflows.store import AssignmentQuery, LeadHistory, SlaTerms, SlaUpdate  # noqa: E402

DATA = Path(__file__).resolve().parent / ".data"
REPS = [f"rep{i:02d}" for i in range(20)]
RULES = {  # rule path -> share of the leads
    "enterprise/na": 0.08,
    "enterprise/emea": 0.06,
    "enterprise/apac": 0.03,
    "enterprise-partners": 0.03,
    "mid-market": 0.20,
    "smb/inbound": 0.30,
    "smb/partner": 0.10,
    "events": 0.15,
    "fallback": 0.05,
}
SOURCES = {  # source -> (share, crm)
    "hubspot": (0.35, "hubspot"),
    "salesforce": (0.25, "salesforce"),
    "salesforce-flow": (0.10, "salesforce"),
    "sweep": (0.20, None),  # the CRM of the lead it rotates
    "reassign": (0.05, None),
    "api": (0.05, "hubspot"),
}
START = datetime(2026, 9, 1, tzinfo=UTC)
DAYS = 90
BATCH = 5_000
PAGE = 50
TARGET_MS = 200.0


def build(path: Path, count: int) -> None:
    """Fill a new store at ``path`` with ``count`` records through its apply path."""
    rng = random.Random(11)
    store = SqliteStore(path)
    step = timedelta(days=DAYS) / count
    histories: dict[str, LeadHistory] = {}
    recent: deque[str] = deque(maxlen=2000)
    crm_of: dict[str, str] = {}
    sources = list(SOURCES)
    source_weights = [share for share, _ in SOURCES.values()]
    rules, rule_weights = list(RULES), list(RULES.values())
    made = 0
    started = time.perf_counter()
    settles: dict[int, SlaUpdate] = {}
    writebacks: dict[int, tuple[Any, str]] = {}
    outcomes: dict[int, Any] = {}
    while made < count:
        with store.transaction() as tx:
            for _ in range(min(BATCH, count - made)):
                made += 1
                source = rng.choices(sources, source_weights)[0]
                moved = source in ("sweep", "reassign") and recent
                # A sweep or a reassignment moves a lead routed recently.
                lead_id = rng.choice(recent) if moved else f"L{made}"
                crm = crm_of.get(lead_id) or SOURCES[source][1] or "hubspot"
                crm_of[lead_id] = crm
                history = histories.get(lead_id) or ledger.new_history()
                if not moved:
                    recent.append(lead_id)
                when = START + step * made + timedelta(seconds=rng.uniform(-5, 5))
                record = _record(rng, made, when, crm, lead_id, source, history, rules,
                                 rule_weights)  # fmt: skip
                terms = _terms(when) if rng.random() < 0.7 else None
                superseded = ledger.superseded_sla(record, history)
                rows = ledger.record_rows(
                    record, history=history,
                    previous_sla=tx.sla(superseded) if superseded else None, pool_states={},
                    daily_counts={record.new_owner or "": (when.date().isoformat(), 1)},
                    writeback="pending" if crm == "salesforce" else "not_needed",
                    terms=terms, aliases=(), now=when,
                )  # fmt: skip
                tx.apply(rows)
                histories[lead_id] = rows.writes[ledger.lead_key(crm, lead_id)]
                if len(histories) > 50_000:
                    histories.pop(next(iter(histories)))
                if terms is not None and when < START + timedelta(days=DAYS - 1):
                    settles[made] = _settlement(rng, when)
                if crm == "salesforce":
                    writebacks[made] = ("written", "") if rng.random() < 0.97 else ("failed", "503")
                if rng.random() < 0.4:
                    contacted = when + timedelta(minutes=rng.expovariate(1 / 30))
                    outcomes[made] = {
                        "contacted_at": contacted.isoformat(),
                        "checked_at": (contacted + timedelta(hours=1)).isoformat(),
                    }
                    if rng.random() < 0.15:
                        outcomes[made]["converted_at"] = (
                            contacted + timedelta(days=rng.uniform(1, 20))).isoformat()  # fmt: skip
        if made % 100_000 < BATCH or made == count:
            rate = made / (time.perf_counter() - started)
            print(f"  {made:>9,} records ({rate:,.0f}/s)", flush=True)
    print("  settling SLAs, write-backs and outcomes", flush=True)
    _through_store(store, settles, writebacks, outcomes)
    store.close()


def _record(rng: random.Random, log_id: int, when: datetime, crm: str, lead_id: str,
            source: str, history: LeadHistory, rules: list[str],
            weights: list[float]) -> AssignmentRecord:  # fmt: skip
    rule = rng.choices(rules, weights)[0]
    candidates = rng.sample(REPS, 5)
    owner = candidates[0]
    skipped = {rep: rng.choice(["out of office 2026-12-24..2027-01-02", "daily cap 40 reached",
                                "outside working hours (Mon-Fri 09:00-17:30 Europe/Berlin)"])
               for rep in candidates[1:3]}  # fmt: skip
    previous = history["owners"][-1] if history["owners"] else rng.choice([None, "crm-queue"])
    outcome: Outcome = "assigned" if rng.random() < 0.97 else rng.choice(["kept", "unassigned"])
    decision = Decision(
        lead_id, owner if outcome != "unassigned" else None, outcome, rule,
        f"pool {rule.split('/')[0]} (round_robin) chose {owner}; skipped "
        + "; ".join(f"{rep}: {why}" for rep, why in skipped.items()),
        strategy="round_robin", pool=rule.split("/")[0], owner_crm_id=f"crm-{owner}",
        candidates=candidates, skipped=skipped,
    )  # fmt: skip
    return AssignmentRecord(
        log_id, when, crm, "contact" if crm == "hubspot" else "lead", lead_id, previous,
        decision.rep_id, decision, source, idempotency_key=f"{source}:{log_id}",
        lead_email=f"pat{log_id}@acme{log_id % 5000}.io", lead_domain=f"acme{log_id % 5000}.io",
        config_version="3f2a9c1d0b7e",
    )  # fmt: skip


def _terms(when: datetime) -> SlaTerms:
    deadline = when + timedelta(minutes=15)
    return {"deadline": deadline.isoformat(), "due_key": to_key(deadline), "clock": "wall",
            "first_touch_s": 900, "max_reassignments": 2}  # fmt: skip


def _settlement(rng: random.Random, when: datetime) -> SlaUpdate:
    settled = (when + timedelta(minutes=20)).isoformat()
    if rng.random() < 0.8:
        return {"status": "settled", "outcome": "contacted", "settled_at": settled,
                "ttft_s": rng.expovariate(1 / 600)}  # fmt: skip
    return {"status": "settled", "outcome": "rotated", "settled_at": settled, "ttft_s": None}


def _through_store(store: SqliteStore, settles: dict[int, SlaUpdate],
                   writebacks: dict[int, Any], outcomes: dict[int, Any]) -> None:  # fmt: skip
    def chunks(items: dict[int, Any]) -> Iterator[dict[int, Any]]:
        keys = list(items)
        for start in range(0, len(keys), BATCH):
            yield {k: items[k] for k in keys[start : start + BATCH]}

    for part in chunks(settles):
        store.settle(part)
    now = START + timedelta(days=DAYS)
    for part in chunks(writebacks):
        store.set_writebacks(part, now)
    for part in chunks(outcomes):
        store.record_outcomes(part)


def timed(runs: int, call: Callable[[], object]) -> tuple[float, float]:
    """(median, p90) of ``runs`` calls, in milliseconds, after one warm-up call."""
    call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1]


def queries(store: SqliteStore) -> list[tuple[str, AssignmentQuery, int | None]]:
    """(label, query, cursor) of every measured page."""
    middle = START + timedelta(days=DAYS // 2)
    day = AssignmentQuery(since=middle, until=middle + timedelta(days=1))
    return [
        ("first page (no filter)", AssignmentQuery(), None),
        ("rep", AssignmentQuery(rep="rep07"), None),
        ("rule (enterprise/*)", AssignmentQuery(rule="enterprise"), None),
        ("rule (exact)", AssignmentQuery(rule="smb/partner"), None),
        ("a day in the middle", day, None),
        ("last 30 days", AssignmentQuery(since=START + timedelta(days=DAYS - 30)), None),
        ("source sweep", AssignmentQuery(source="sweep"), None),
        ("outcome unassigned (rare)", AssignmentQuery(outcome="unassigned"), None),
        (
            "rep + rule + source",
            AssignmentQuery(rep="rep07", rule="enterprise", source="hubspot"),
            None,
        ),  # fmt: skip
        ("rep + a day", replace(day, rep="rep07"), None),
        ("rule + crm + a day", replace(day, rule="smb", crm="salesforce"), None),
        (
            "a month, two months ago",
            AssignmentQuery(since=START + timedelta(days=30), until=START + timedelta(days=60)),
            None,
        ),
        (
            "all 90 days as a range",
            AssignmentQuery(since=START, until=START + timedelta(days=DAYS)),
            None,
        ),
        (
            "rare: rep + fallback + reassign",
            AssignmentQuery(rep="rep07", rule="fallback", source="reassign"),
            None,
        ),
        ("none: rep nobody has", AssignmentQuery(rep="rep99"), None),
        (
            "none: a day in the future",
            AssignmentQuery(since=START + timedelta(days=DAYS + 9)),
            None,
        ),
        ("page 101 by cursor", AssignmentQuery(), _deep(store, AssignmentQuery())),
        (
            "rep, page 101 by cursor",
            AssignmentQuery(rep="rep07"),
            _deep(store, AssignmentQuery(rep="rep07")),
        ),  # fmt: skip
    ]


def _deep(store: SqliteStore, query: AssignmentQuery, pages: int = 100) -> int | None:
    """The cursor of page ``pages + 1`` of ``query`` (or of its last page)."""
    cursor = None
    for _ in range(pages):
        page = store.assignments(query, before=cursor, limit=PAGE)
        if len(page) < PAGE:
            break
        cursor = page[-1].id
    return cursor


def http_params(query: AssignmentQuery, cursor: int | None) -> str:
    params: dict[str, Any] = {"limit": PAGE}
    for name, field in (("since", "since"), ("until", "until"), ("rep", "rep"), ("rule", "rule"),
                        ("outcome", "outcome"), ("source", "source"), ("crm", "crm"),
                        ("object", "object_type")):  # fmt: skip
        value = getattr(query, field)
        if value is not None:
            params[name] = value.isoformat() if isinstance(value, datetime) else value
    if cursor is not None:
        params["before"] = cursor
    return urlencode(params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    (DATA / ".gitignore").write_text("*\n")
    path = DATA / f"console-{args.records}.sqlite"
    if args.rebuild or not path.exists():
        for leftover in DATA.glob(f"{path.name}*"):
            leftover.unlink()
        print(f"filling {path} with {args.records:,} records")
        started = time.perf_counter()
        build(path.with_suffix(".partial"), args.records)
        for suffix in ("", "-wal", "-shm"):
            partial = Path(f"{path.with_suffix('.partial')}{suffix}")
            if partial.exists():
                partial.rename(f"{path}{suffix}")
        print(f"filled in {time.perf_counter() - started:,.0f} s")
    store = SqliteStore(path)
    try:
        measured = queries(store)
        rows = [_store_row(store, label, query, cursor, args.runs)
                for label, query, cursor in measured]  # fmt: skip
        rows += _http_rows(store, measured, args.runs)
        streamed = _facts_rows(store)
    finally:
        store.close()
    print(f"\n{args.records:,} records: Store.facts streamed (the statistics views' input)")
    for label, took, count in streamed:
        print(f"  {label:<28} {count:>9,} rows in {took:6.2f} s ({count / took:,.0f} rows/s)")
    print(f"\n{args.records:,} records, pages of {PAGE}, {args.runs} runs each (ms)")
    print(f"{'query':<32} {'via':<22} {'median':>8} {'p90':>8} {'rows':>5}")
    for label, via, median, p90, found in rows:
        flag = "" if p90 < TARGET_MS else "  OVER TARGET"
        shown = "" if found is None else found
        print(f"{label:<32} {via:<22} {median:8.2f} {p90:8.2f} {shown:>5}{flag}")


def _store_row(store: SqliteStore, label: str, query: AssignmentQuery, cursor: int | None,
               runs: int) -> tuple[str, str, float, float, int | None]:  # fmt: skip
    found = len(store.assignments(query, before=cursor, limit=PAGE))
    median, p90 = timed(runs, lambda: store.assignments(query, before=cursor, limit=PAGE))
    return label, "Store.assignments", median, p90, found


def _facts_rows(store: SqliteStore) -> list[tuple[str, float, int]]:
    """(label, seconds, rows) of streaming the facts of the last day, week, month and rep."""
    end = START + timedelta(days=DAYS)
    streams = [(f"last {days} days", AssignmentQuery(since=end - timedelta(days=days)))
               for days in (1, 7, 30)]  # fmt: skip
    streams.append(("rep07, all time", AssignmentQuery(rep="rep07")))
    measured = []
    for label, query in streams:
        started = time.perf_counter()
        count = sum(1 for _ in store.facts(query))
        measured.append((label, time.perf_counter() - started, count))
    return measured


def _http_rows(store: SqliteStore, measured: list[tuple[str, AssignmentQuery, int | None]],
               runs: int) -> list[tuple[str, str, float, float, int | None]]:  # fmt: skip
    from connector.app import create_app

    os.environ.setdefault("LEADRELAY_OPS_TOKEN", secrets.token_urlsafe(24))
    headers = {"Authorization": f"Bearer {os.environ['LEADRELAY_OPS_TOKEN']}"}
    config = build_config(
        {"reps": [{"id": rep, "hours": "always"} for rep in REPS],
         "pools": {"team": {"members": REPS, "strategy": "round_robin"}},
         "flow": [{"name": "everyone", "assign": {"pool": "team"}}],
         "fallback": {"rep": REPS[0]}},
        source=DATA / "app.yaml",
    )  # fmt: skip
    client = create_app(config=config, store=store).test_client()
    rows: list[tuple[str, str, float, float, int | None]] = []
    for route in ("/ops/assignments", "/api/assignments"):
        answer = client.get(f"{route}?limit={PAGE}", headers=headers)
        if answer.status_code != 200:
            print(f"{route}: routes not present yet (answered {answer.status_code})")
            continue
        for label, query, cursor in measured:
            url = f"{route}?{http_params(query, cursor)}"

            def get(url: str = url) -> None:
                reply = client.get(url, headers=headers)
                assert reply.status_code == 200, (url, reply.status_code, reply.data[:300])

            median, p90 = timed(runs, get)
            rows.append((label, f"GET {route}", median, p90, None))
    return rows


if __name__ == "__main__":
    main()
