"""Warnings about a valid app.yaml that will still surprise its admin (``leadrelay check``)."""

from __future__ import annotations

from collections.abc import Iterator

from workflows.config import Config, Rule


def config_warnings(config: Config) -> list[str]:
    """Problems that are not errors: pools whose members are all inactive, and settings that
    cannot take effect (a queue's pick-up time with no SLA, a task on a rule that only queues)."""
    warnings = []
    for pool in config.pools.values():
        if not any(config.reps[m].active for m in pool.members if m in config.reps):
            warnings.append(
                f"pool {pool.id}: every member is inactive ({', '.join(pool.members)}), so"
                " leads sent to it go to the rule's else: or the fallback"
            )
    rules = list(_rules(config))
    if config.sla is None and not any(rule.sla is not None for _, rule in rules):
        for queue in config.queues.values():
            if queue.first_touch is not None:
                warnings.append(
                    f"queues.{queue.name}.first_touch: no sla: is set, so nothing checks that"
                    " leads are picked up from the queue; add sla: (docs/sla.md#queues)"
                )
    for path, rule in rules:
        kinds = {target.kind for target in rule.assign.chain()} if rule.assign else set()
        asks = rule.task is not None and rule.task.enabled is not False
        if asks and kinds and kinds <= {"queue", "keep"}:
            what = "parks leads in a queue" if "queue" in kinds else "keeps the owner"
            warnings.append(
                f"{path}.task: rule {rule.name!r} only {what}, and no follow-up task is"
                " made for a queue or a kept owner"
            )
    return warnings


def _rules(config: Config) -> Iterator[tuple[str, Rule]]:
    """Every rule with its app.yaml path (``flow[1].flow[0]``), nested rules included."""
    stack = [(f"flow[{i}]", rule) for i, rule in enumerate(config.flow.rules)]
    while stack:
        path, rule = stack.pop(0)
        yield path, rule
        if rule.flow is not None:
            stack[:0] = [(f"{path}.flow[{i}]", r) for i, r in enumerate(rule.flow.rules)]
