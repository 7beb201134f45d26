"""What the load must show once every delivery is done: one decision per lead, every retry
answered with it, every accepted lead's owner in the CRM, exact spreads, and only retryable
answers while something was down. Each check returns the problems it found (empty: passed)."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from load_traffic import Answer, LoadLead

from workflows.model import AssignmentRecord

# What a client may see while an instance dies or the database is away: the CRM retries each.
RETRYABLE = {
    "hubspot": {0, 429, 502, 503, 504},  # 502/504: nginx, the instance died mid-request
    "outbound": {0, 500, 502, 503, 504},  # 500 carries a SOAP fault: Salesforce retries
    "flow": {0, 409, 502, 503, 504},  # 409: another call is writing its owner; call again
}
LOAD_SOURCES = {"hubspot", "salesforce", "salesforce-flow"}


@dataclass(frozen=True)
class Owners:
    """Who a rep is in each CRM."""

    hubspot: Mapping[str, str]  # rep id -> HubSpot owner id
    salesforce: Mapping[str, str]  # rep id -> Salesforce user id


def _decided(answer: Answer, kind: str) -> str | None:
    """The rep or owner an accepted answer names (the Outbound ack names none)."""
    if kind == "outbound":
        return None
    body = json.loads(answer.body)
    if kind == "hubspot":
        return str(body["outputFields"]["owner_id"])
    return str(body["rep"])


def check_every_lead_accepted(leads: list[LoadLead]) -> list[str]:
    missing = [lead for lead in leads if not lead.accepted]
    return [
        f"{lead.kind} {lead.record_id}: never accepted; last answer "
        f"{lead.answers[-1].status if lead.answers else None}"
        for lead in missing[:10]
    ]


def check_one_decision_per_lead(leads: list[LoadLead], log: list[AssignmentRecord]) -> list[str]:
    counts = Counter((record.crm, record.lead_id) for record in log)
    problems = [f"{crm} {lead}: decided {n} times" for (crm, lead), n in counts.items() if n > 1]
    problems += [
        f"{lead.kind} {lead.record_id}: accepted but not in the log"
        for lead in leads
        if lead.accepted and (lead.crm, lead.record_id) not in counts
    ]
    return problems[:20]


def check_retries_answer_first_decision(leads: list[LoadLead]) -> list[str]:
    problems = []
    for lead in leads:
        if lead.kind == "outbound":
            continue  # its ack names nobody; the log and the CRM's owner are checked instead
        named = {_decided(answer, lead.kind) for answer in lead.accepted}
        if len(named) > 1:
            problems.append(f"{lead.kind} {lead.record_id}: answered {sorted(map(str, named))}")
    return problems[:20]


def check_owners_written(
    leads: list[LoadLead],
    log: list[AssignmentRecord],
    crm_owner: Mapping[tuple[str, str], str | None],
    owners: Owners,
) -> list[str]:
    """Every accepted lead's owner, as the log has it, is the owner in the CRM."""
    by_lead = {(record.crm, record.lead_id): record.new_owner for record in log}
    problems = []
    for lead in leads:
        if not lead.accepted:
            continue
        rep = by_lead.get((lead.crm, lead.record_id))
        ids = owners.hubspot if lead.crm == "hubspot" else owners.salesforce
        expected = ids.get(rep or "")
        found = crm_owner.get((lead.crm, lead.record_id))
        if expected is None or found != expected:
            problems.append(
                f"{lead.kind} {lead.record_id}: log says {rep} ({expected}), CRM has {found}"
            )
    return problems[:20]


def check_spread(
    log: Iterable[AssignmentRecord], pools: Mapping[str, Mapping[str, int]]
) -> list[str]:
    """Round robin: counts differ by at most 1. Weighted: each rep within 1 of its share."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for record in log:
        if record.decision.pool in pools and record.new_owner:
            counts[record.decision.pool][record.new_owner] += 1
    problems = []
    for pool, weights in pools.items():
        got = counts[pool]
        total = sum(got.values())
        share = sum(weights.values())
        if (
            len(set(weights.values())) == 1
            and max(got[r] for r in weights) - min(got[r] for r in weights) > 1
        ):
            problems.append(f"pool {pool}: round robin uneven: {dict(got)}")
            continue
        for rep, weight in weights.items():
            expected = total * weight / share
            if abs(got[rep] - expected) > 1:
                problems.append(
                    f"pool {pool}: {rep} got {got[rep]} of {total}, expected {expected:.1f}"
                )
    return problems


def check_only_retryable_failures(leads: list[LoadLead]) -> list[str]:
    problems = []
    for lead in leads:
        for answer in lead.answers:
            if 200 <= answer.status < 300 or answer.status in RETRYABLE[lead.kind]:
                continue
            problems.append(
                f"{lead.kind} {lead.record_id}: HTTP {answer.status}: {answer.body[:200]}"
            )
        if lead.kind == "outbound":
            problems += [
                f"outbound {lead.record_id}: 500 without a SOAP fault: {a.body[:200]}"
                for a in lead.answers
                if a.status == 500 and "Fault>" not in a.body
            ]
    return problems[:20]


def spread_summary(log: Iterable[AssignmentRecord], pools: Mapping[str, object]) -> str:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for record in log:
        if record.decision.pool in pools and record.new_owner:
            counts[record.decision.pool][record.new_owner] += 1
    return "; ".join(
        f"{pool}: " + " ".join(f"{rep}={n}" for rep, n in sorted(counts[pool].items()))
        for pool in pools
    )


@dataclass(frozen=True)
class Figures:
    requests: int
    accepted: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: Counter[int]

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        failed = ", ".join(
            f"{n} x {status or 'no answer'}" for status, n in sorted(self.failures.items())
        )
        return (
            f"{self.requests} requests, {self.accepted} accepted in {self.seconds:.1f} s:"
            f" {self.per_second:.1f}/s, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms"
            + (f"; retryable failures: {failed}" if failed else "")
        )


def figures(leads: list[LoadLead], started: float, duration: float) -> Figures:
    """Throughput and latency of the requests sent during the run (``duration`` seconds from
    ``started``): the late retries of leads whose write-back lease had to expire are out."""
    answers = [a for lead in leads for a in lead.answers if a.sent_at - started < duration]
    good = sorted(a.seconds for a in answers if 200 <= a.status < 300)
    failures = Counter(a.status for a in answers if not 200 <= a.status < 300)
    ended = max((a.sent_at + a.seconds for a in answers), default=started + duration)
    if len(good) >= 2:
        cuts = statistics.quantiles(good, n=100, method="inclusive")
        p50, p99 = cuts[49] * 1000, cuts[98] * 1000
    else:
        p50 = p99 = (good[0] * 1000) if good else 0.0
    return Figures(len(answers), len(good), ended - started, p50, p99, failures)
