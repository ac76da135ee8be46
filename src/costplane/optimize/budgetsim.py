"""Budgets simulated in memory over a replayed history, in time order.

Claims come from `costplane.core.claims.budget_claims` (the decision core's own function) and
windows from `Window.bounds`, so a replay refuses exactly where the store would have, with one
documented difference: each request settles before the next starts (no concurrency), so
`max_concurrent` never refuses in a replay.

`bounds` is `Window.bounds` for `budget_claims`, remembered for calendar windows by the local day of
the instant (and its `fold`, which picks the first or second of an ambiguous local midnight): the
period start that `Window.period_start` computes depends on nothing else, and finding it costs more
than the rest of a claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from costplane.ledger.types import BudgetClaim
from costplane.ledger.windows import Window

__all__ = ["BudgetSimulation", "Refusal"]


@dataclass(frozen=True, slots=True)
class Refusal:
    budget: str
    partition: str
    limit: str  # amount | calls
    used_nano: int
    limit_nano: int | None


class BudgetSimulation:
    def __init__(self) -> None:
        # (budget, partition) -> {bucket: [spent_nano, calls]} in insertion (time) order
        self._rows: dict[tuple[str, str], dict[int, list[int]]] = {}
        # id(window) -> (window, its zone, {(local day, fold): bounds})
        self._days: dict[int, tuple[Window, ZoneInfo, dict[tuple[int, int], tuple[int, int]]]] = {}

    def bounds(self, window: Window, at: datetime) -> tuple[int, int]:
        """`window.bounds(at)`, for a calendar window remembered by local day (see the module docstring)."""
        if window.kind != "calendar":
            return window.bounds(at)
        entry = self._days.get(id(window))
        if entry is None or entry[0] is not window:
            entry = self._days[id(window)] = (window, ZoneInfo(window.timezone), {})  # holding it keeps its id
        local = at.astimezone(entry[1])
        day = (local.toordinal(), local.fold)
        bounds = entry[2].get(day)
        if bounds is None:
            bounds = entry[2][day] = window.bounds(at)
        return bounds

    def _window(self, claim: BudgetClaim) -> tuple[int, int]:
        rows = self._rows.get((claim.budget, claim.partition))
        if not rows:
            return 0, 0
        start = claim.window_start
        if len(rows) == 1:  # the usual case (lifetime and calendar windows), without the generators
            for bucket, row in rows.items():
                if bucket >= start:
                    return row[0], row[1]
            rows.clear()  # the window moved past it
            return 0, 0
        for bucket in [b for b in rows if b < start]:  # the window moved past them
            del rows[bucket]
        return sum(r[0] for r in rows.values()), sum(r[1] for r in rows.values())

    def check(self, claims: Sequence[BudgetClaim]) -> Refusal | None:
        """The first hard claim that would break its limit with this claim added, else None."""
        for claim in claims:
            if not claim.hard:
                continue
            spent, calls = self._window(claim)
            if claim.limit_nano is not None and spent + claim.amount_nano > claim.limit_nano:
                return Refusal(claim.budget, claim.partition, "amount", spent + claim.amount_nano, claim.limit_nano)
            if claim.limit_calls is not None and calls + 1 > claim.limit_calls:
                return Refusal(claim.budget, claim.partition, "calls", spent, claim.limit_nano)
        return None

    def settle(self, claims: Sequence[BudgetClaim], cost_nano: int, *, count_call: bool = True) -> None:
        """Add the actual cost (and one call) of an admitted request to every claim's row."""
        for claim in claims:
            row = self._rows.setdefault((claim.budget, claim.partition), {}).setdefault(claim.bucket, [0, 0])
            row[0] += cost_nano
            row[1] += 1 if count_call else 0
