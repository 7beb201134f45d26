"""How a pool picks the next rep: round robin, smooth weighted, least loaded, first available.

A strategy is two pure functions over the pool's state (a plain dict kept by the store):
``candidates`` gives the order in which members are offered the lead, and ``advance`` records
the turn once a member took it. Availability is asked lazily, one candidate at a time, so a
pool of 300 reps costs only the candidates actually examined.

Fairness rules shared by every strategy:
- A member skipped on the way to the chosen one has missed a turn. In ``forfeit`` mode (the
  default) that turn is gone. In ``credit`` mode an absent member (out of office, outside
  hours) also earns one credit, up to ``max_credit``; credits are redeemed once the member is
  back, one catch-up lead between normal turns, so a returning rep is neither robbed nor
  flooded.
- A member added to a pool starts level with the others: no back pay for turns before joining.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from workflows.availability import Skip

ABSENCE_MODES = ("forfeit", "credit")
ABSENCE_CODES = frozenset({"out_of_office", "outside_hours"})
PoolState = dict[str, Any]


@dataclass
class PoolContext:
    """What a strategy may ask about members right now (answers come from the router)."""

    unavailability: Callable[[str], Skip | None]
    assigned_today: Callable[[str], int]
    local_day: Callable[[str], str]
    weight: Callable[[str], int] = lambda rep: 1


@dataclass
class Turn:
    """The outcome of offering one lead to a pool."""

    rep_id: str | None
    examined: list[str] = field(default_factory=list)
    skipped: dict[str, Skip] = field(default_factory=dict)
    catch_up: bool = False


class Strategy(Protocol):
    def candidates(
        self, members: tuple[str, ...], state: PoolState, ctx: PoolContext
    ) -> Iterable[str]: ...

    def advance(
        self,
        members: tuple[str, ...],
        state: PoolState,
        chosen: str,
        skipped: dict[str, Skip],
        ctx: PoolContext,
    ) -> None: ...

    def join(
        self, members: tuple[str, ...], state: PoolState, rep: str, ctx: PoolContext
    ) -> None: ...


class RoundRobin:
    """Each member in turn, in app.yaml order; the pointer survives membership changes."""

    def candidates(
        self, members: tuple[str, ...], state: PoolState, ctx: PoolContext
    ) -> Iterable[str]:
        last = state.get("last")
        start = members.index(last) + 1 if last in members else state.get("next_index", 0)
        start %= len(members)
        return members[start:] + members[:start]

    def advance(
        self,
        members: tuple[str, ...],
        state: PoolState,
        chosen: str,
        skipped: dict[str, Skip],
        ctx: PoolContext,
    ) -> None:
        # Members passed over lose their turn by construction: the pointer moves past them.
        state["last"] = chosen
        state["next_index"] = members.index(chosen) + 1

    def join(self, members: tuple[str, ...], state: PoolState, rep: str, ctx: PoolContext) -> None:
        pass  # a new member simply takes its place in the cycle


class SmoothWeighted:
    """Smooth weighted round robin (as in nginx): exact per cycle of sum(weights), interleaved."""

    def candidates(
        self, members: tuple[str, ...], state: PoolState, ctx: PoolContext
    ) -> Iterable[str]:
        current = state.setdefault("current", {})
        order = {m: i for i, m in enumerate(members)}
        return sorted(members, key=lambda m: (-(current.get(m, 0) + ctx.weight(m)), order[m]))

    def advance(
        self,
        members: tuple[str, ...],
        state: PoolState,
        chosen: str,
        skipped: dict[str, Skip],
        ctx: PoolContext,
    ) -> None:
        current: dict[str, int] = state.setdefault("current", {})
        total = sum(ctx.weight(m) for m in members)
        for m in members:
            current[m] = current.get(m, 0) + ctx.weight(m)
        current[chosen] -= total
        for m in skipped:
            current[m] -= total  # a skipped member's turn counts as taken: no pile-up to flood
        # Shifting every member by the same amount keeps the order and keeps numbers small.
        shift = sum(current[m] for m in members) // len(members)
        for m in members:
            current[m] -= shift

    def join(self, members: tuple[str, ...], state: PoolState, rep: str, ctx: PoolContext) -> None:
        current = state.setdefault("current", {})
        others = [current.get(m, 0) for m in members if m != rep]
        current[rep] = sum(others) // len(others) if others else 0


class LeastLoaded:
    """The member with the fewest leads today (their local day); ties go in app.yaml order.

    Today's load includes turns forfeited while absent, so a rep back from a morning off is
    level with the team instead of taking every lead until their count catches up.
    """

    def _load(self, rep: str, state: PoolState, ctx: PoolContext) -> int:
        day, forfeited = state.setdefault("forfeited", {}).get(rep, ("", 0))
        return ctx.assigned_today(rep) + (forfeited if day == ctx.local_day(rep) else 0)

    def candidates(
        self, members: tuple[str, ...], state: PoolState, ctx: PoolContext
    ) -> Iterable[str]:
        order = {m: i for i, m in enumerate(members)}
        return sorted(members, key=lambda m: (self._load(m, state, ctx), order[m]))

    def _forfeit(self, rep: str, amount: int, state: PoolState, ctx: PoolContext) -> None:
        forfeited = state.setdefault("forfeited", {})
        day, count = forfeited.get(rep, ("", 0))
        today = ctx.local_day(rep)
        forfeited[rep] = (today, (count if day == today else 0) + amount)

    def advance(
        self,
        members: tuple[str, ...],
        state: PoolState,
        chosen: str,
        skipped: dict[str, Skip],
        ctx: PoolContext,
    ) -> None:
        for rep, skip in skipped.items():
            if skip.code in ABSENCE_CODES or skip.code == "inactive":
                self._forfeit(rep, 1, state, ctx)

    def join(self, members: tuple[str, ...], state: PoolState, rep: str, ctx: PoolContext) -> None:
        others = [self._load(m, state, ctx) for m in members if m != rep]
        if others:
            self._forfeit(rep, max(0, min(others) - self._load(rep, state, ctx)), state, ctx)


class FirstAvailable:
    """Always the first available member in app.yaml order: a priority list, not a rotation."""

    def candidates(
        self, members: tuple[str, ...], state: PoolState, ctx: PoolContext
    ) -> Iterable[str]:
        return members

    def advance(
        self,
        members: tuple[str, ...],
        state: PoolState,
        chosen: str,
        skipped: dict[str, Skip],
        ctx: PoolContext,
    ) -> None:
        pass

    def join(self, members: tuple[str, ...], state: PoolState, rep: str, ctx: PoolContext) -> None:
        pass


STRATEGIES: dict[str, Strategy] = {
    "round_robin": RoundRobin(),
    "weighted": SmoothWeighted(),
    "least_loaded": LeastLoaded(),
    "first_available": FirstAvailable(),
}


def take_turn(
    strategy_name: str,
    members: tuple[str, ...],
    state: PoolState,
    ctx: PoolContext,
    *,
    absence: str = "forfeit",
    max_credit: int = 3,
) -> Turn:
    """Offer one lead to a pool: pick a member and advance ``state`` (mutated in place).

    When nobody is available the state is left as it was: no turn was given.
    """
    strategy = STRATEGIES[strategy_name]
    _welcome_new_members(strategy, members, state, ctx)
    normal = Turn(rep_id=None)
    for rep in strategy.candidates(members, state, ctx):
        normal.examined.append(rep)
        skip = ctx.unavailability(rep)
        if skip is None:
            normal.rep_id = rep
            break
        normal.skipped[rep] = skip

    catch_up = _catch_up(members, state, ctx, normal.rep_id) if absence == "credit" else None
    if catch_up is not None:
        state["credit"][catch_up] -= 1
        if not state["credit"][catch_up]:
            del state["credit"][catch_up]
        state["last_was_catch_up"], state["last_pick"] = True, catch_up
        return Turn(rep_id=catch_up, examined=[catch_up], catch_up=True)
    if normal.rep_id is None:
        return normal

    state["last_was_catch_up"], state["last_pick"] = False, normal.rep_id
    strategy.advance(members, state, normal.rep_id, normal.skipped, ctx)
    if absence == "credit":
        credits: dict[str, int] = state.setdefault("credit", {})
        for rep, skip in normal.skipped.items():
            if skip.code in ABSENCE_CODES:
                credits[rep] = min(max_credit, credits.get(rep, 0) + 1)
    return normal


def _catch_up(
    members: tuple[str, ...], state: PoolState, ctx: PoolContext, normal_pick: str | None
) -> str | None:
    """The member owed a catch-up lead now, if any.

    At most one catch-up between two normal turns, never to the member who took the previous
    lead, and, where the pool has room to spread them, not just before the member's own turn:
    owed leads are spread out, not dumped. (In a pool of two a returning rep must sometimes
    take two leads in a row, or would never be paid.)
    """
    if state.get("last_was_catch_up"):
        return None
    credits: dict[str, int] = state.get("credit", {})
    owed = sorted((m for m in members if credits.get(m, 0) > 0), key=lambda m: -credits[m])
    for rep in owed:
        if rep == state.get("last_pick") or (rep == normal_pick and len(members) > 2):
            continue
        if ctx.unavailability(rep) is None:
            return rep
    return None


def _welcome_new_members(
    strategy: Strategy, members: tuple[str, ...], state: PoolState, ctx: PoolContext
) -> None:
    known = state.get("members")
    if known is not None:
        for rep in members:
            if rep not in known:
                strategy.join(members, state, rep, ctx)
        gone = set(known) - set(members)
        last = state.get("last")
        if last in gone:
            # The rotation carries on after the nearest remaining member before the one who left.
            at = known.index(last)
            before = [m for m in known[at::-1] + known[:at:-1] if m in members]
            state["last"] = before[0] if before else None
        for key in ("current", "credit", "forfeited"):
            for rep in gone:
                state.get(key, {}).pop(rep, None)
    state["members"] = list(members)
