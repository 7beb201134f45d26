"""Warnings about a valid app.yaml that will still surprise its admin (``leadrelay check``)."""

from __future__ import annotations

from workflows.config import Config


def config_warnings(config: Config) -> list[str]:
    """Problems that are not errors: today, pools whose members are all inactive."""
    warnings = []
    for pool in config.pools.values():
        if not any(config.reps[m].active for m in pool.members if m in config.reps):
            warnings.append(
                f"pool {pool.id}: every member is inactive ({', '.join(pool.members)}), so"
                " leads sent to it go to the rule's else: or the fallback"
            )
    return warnings
