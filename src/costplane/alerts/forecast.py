"""Exhaustion forecasts of calendar budgets: a linear burn rate over the period so far.

For every calendar budget with a dollar limit (each partition of a partitioned one, the
most used first), the spend of the current period so far is extrapolated to the whole
period: forecast = spent × period length / elapsed. When the forecast exceeds the limit
while the budget still has room, a `forecast_exhaustion` notification names the instant
the budget runs out at that rate. The counters are the ones the core reserves on
(`budget_claims` windows, `Store.claim_states`); there is no second notion of budget.
Integer arithmetic only (nano-USD × microseconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from costplane.attribution.context import Context
from costplane.core.claims import budget_claims
from costplane.core.notify import Notification
from costplane.ledger.store import Store
from costplane.ledger.types import BudgetClaim, ClaimState
from costplane.money import format_usd
from costplane.policy.types import BudgetSpec

__all__ = ["forecast_exhaustions"]


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _claims(store: Store, spec: BudgetSpec, now: datetime, partitions: int) -> list[BudgetClaim]:
    base = budget_claims([spec], Context(), "", 0, now) if not spec.per else ()
    if base:
        return list(base)
    window_start, bucket = spec.window.bounds(now)
    return [BudgetClaim(spec.name, part, bucket, window_start, 0, limit_nano=spec.amount_nano, hard=spec.hard)
            for part in store.budget_partitions(spec.name, window_start, partitions) if part]


def forecast_exhaustions(store: Store, budgets: Mapping[str, BudgetSpec], now: datetime, *,
                         min_elapsed: int = 3600, partitions: int = 20) -> list[Notification]:
    """`forecast_exhaustion` notifications of every calendar budget forecast to run out this period."""
    out: list[Notification] = []
    for spec in budgets.values():
        end = spec.window.period_end(now)
        if spec.window.kind != "calendar" or spec.amount_nano is None or end is None:
            continue
        start = spec.window.period_start(now)
        elapsed, length = _us(now - start), _us(end - start)
        if elapsed < min_elapsed * 1_000_000 or elapsed <= 0:
            continue
        claims = _claims(store, spec, now, partitions)
        if claims:
            out += [n for s in store.claim_states(claims) if (n := _forecast(spec, s, start, end, elapsed, length))]
    return out


def _forecast(spec: BudgetSpec, state: ClaimState, start: datetime, end: datetime, elapsed: int,
              length: int) -> Notification | None:
    limit, spent = state.limit_nano or 0, state.spent_nano
    if spent <= 0 or spent >= limit:  # nothing to extrapolate, or already exhausted (thresholds say so)
        return None
    forecast = spent * length // elapsed
    if forecast <= limit:
        return None
    runs_out = start + timedelta(microseconds=limit * elapsed // spent)
    scope = f" [{state.partition}]" if state.partition else ""
    message = (f"budget {spec.name!r}{scope} ({spec.window.describe()}) is forecast to spend "
               f"{format_usd(forecast, places=2)} USD of {format_usd(limit, places=2)} USD by the end of the period "
               f"({end.isoformat()}); at the current rate it runs out at {runs_out.isoformat()} "
               f"(spent {format_usd(spent)} USD so far)")
    return Notification("forecast_exhaustion", spec.name, message, "", {
        "partition": state.partition, "window_start": int(start.timestamp()), "spent_nano": spent,
        "limit_nano": limit, "forecast_nano": forecast, "exhausts_at": runs_out.isoformat(),
        "period_end": end.isoformat(),
    })
