"""The reference meaning of ``Store.fact_tallies``: the console's statistics counted per
(rep, rule, source) group from facts, in Python. Every store must answer as ``tally_facts``
does; a store counts where its records are instead of streaming a million facts here.
"""

from __future__ import annotations

from collections.abc import Iterable

from workflows.store import AssignmentFacts, FactTally, TallyQuery


def tally_facts(facts: Iterable[AssignmentFacts], query: TallyQuery) -> list[FactTally]:
    """The reference tallies of ``facts``, one per group with a decision since
    ``query.earliest``, ordered by ``FactTally.key``."""
    earliest, since, now, window = query.earliest, query.since, query.now, query.window
    mature_before = now - window
    groups: dict[tuple[str | None, str, str], FactTally] = {}
    firsts: dict[str, int] = {}
    for fact in facts:
        if fact.decided_at < earliest:
            continue
        rep = fact.new_owner if fact.outcome == "assigned" else None
        tally = groups.get((rep, fact.rule, fact.source))
        if tally is None:
            tally = FactTally(rep, fact.rule, fact.source, since_starts=[0] * len(query.starts))
            groups[rep, fact.rule, fact.source] = tally
        if fact.writeback_status == "failed" and fact.decided_at >= since:
            tally.failed_writebacks += 1
            if tally.oldest_failed is None or fact.decided_at < tally.oldest_failed:
                tally.oldest_failed = fact.decided_at
        if rep is None or fact.decided_at > now:
            continue
        tally.up_to_now += 1
        for i, start in enumerate(query.starts):
            tally.since_starts[i] += fact.decided_at >= start
        if fact.decided_at < since:
            continue
        if rep not in firsts or fact.id < firsts[rep]:
            firsts[rep] = fact.id
        tally.leads += 1
        tally.contacted += fact.contacted_at is not None
        converted = fact.converted_at is not None and fact.converted_at - fact.decided_at <= window
        if fact.decided_at <= mature_before:
            tally.mature += 1
            tally.converted += converted
        else:
            tally.converted_recently += converted
        if fact.sla_status is None:
            if fact.ttft_s is not None and query.ttfts:
                tally.ttfts_other.append(fact.ttft_s)
            continue
        tally.under_sla += 1
        if fact.ttft_s is not None and query.ttfts:
            tally.ttfts_sla.append(fact.ttft_s)
        tally.rotated_away += fact.sla_outcome in ("rotated", "escalated")
        tally.escalated_away += fact.sla_outcome == "escalated"
        tally.escalations_received += fact.sla_status == "escalated"
        deadline = fact.sla_deadline
        tally.open_breaches += fact.sla_status == "open" and deadline is not None and deadline < now
    for tally in groups.values():
        tally.first_id = firsts.get(tally.rep) if tally.rep is not None else None
        tally.ttfts_sla.sort()
        tally.ttfts_other.sort()
    return sorted(groups.values(), key=lambda t: t.key)
