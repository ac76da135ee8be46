"""Declared budgets -> the counter rows a request claims. The only place that does this."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from costplane.attribution.context import Context
from costplane.ledger.types import BudgetClaim
from costplane.ledger.windows import Window
from costplane.policy.types import BudgetSpec

__all__ = ["budget_claims", "partition_of"]


def partition_of(budget: BudgetSpec, ctx: Context, model: str) -> str | None:
    """'run=r-1,agent=a' for a partitioned budget; None when a `per` dimension is unset
    (the budget does not apply to requests that lack it)."""
    if not budget.per:
        return ""
    parts = []
    for dimension in budget.per:
        value = model if dimension == "model" else ctx.get(dimension)
        if not value:
            return None
        parts.append(f"{dimension}={value}")
    return ",".join(parts)


def budget_claims(
    budgets: Iterable[BudgetSpec], ctx: Context, model: str, amount_nano: int, now: datetime, *,
    bounds: Callable[[Window, datetime], tuple[int, int]] | None = None,
) -> tuple[BudgetClaim, ...]:
    """`bounds`: `Window.bounds` as the caller memoises it (the decider: `PeriodMemo`), None: called directly."""
    claims = []
    for budget in budgets:
        partition = partition_of(budget, ctx, model)
        if partition is None:
            continue
        window_start, bucket = budget.window.bounds(now) if bounds is None else bounds(budget.window, now)
        claims.append(
            BudgetClaim(
                budget=budget.name,
                partition=partition,
                bucket=bucket,
                window_start=window_start,
                amount_nano=amount_nano,
                limit_nano=budget.amount_nano,
                limit_calls=budget.max_calls,
                limit_concurrent=budget.max_concurrent,
                hard=budget.hard,
            )
        )
    return tuple(claims)
