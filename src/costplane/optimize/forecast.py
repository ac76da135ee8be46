"""Spend forecast per budget to the end of its calendar window, with a 95 % interval.

For a budget with a calendar window (day, week or month in its IANA zone): the spend of the cost
events its scope matches is summed per *local* day over `lookback_days` complete days before today;
`fit_seasonal` (linear trend × day-of-week profile) forecasts the rest of today (its remaining share)
and every day until the window ends. Forecast = spent so far in the window (exact) + the forecast
remainder (rounded to whole nano-USD); the interval comes from the fit's residuals and the trend's
uncertainty. Budgets with a lifetime or rolling window have no end to forecast to and are reported
as such, as are budgets with fewer than `MIN_DAYS` days of history. For budgets partitioned with
`per`, the forecast is of the budget's total; each partition's own limit is not forecast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from costplane.attribution.context import DIMENSIONS
from costplane.ledger.types import CostEvent
from costplane.money import format_usd
from costplane.optimize.seasonal import MIN_DAYS, SeasonalModel, fit_seasonal
from costplane.policy.bundle import Bundle
from costplane.policy.engine import PolicyEngine
from costplane.policy.types import BudgetSpec

__all__ = ["LOOKBACK_DAYS", "BudgetForecast", "budget_events", "daily_spend", "forecast_budget",
           "forecast_budgets"]

LOOKBACK_DAYS = 56


@dataclass(frozen=True, slots=True)
class BudgetForecast:
    budget: str
    window: str
    start: datetime | None = None
    end: datetime | None = None
    spent_nano: int = 0
    forecast_nano: int | None = None  # spent + forecast remainder, None when not forecast
    low_nano: int | None = None
    high_nano: int | None = None
    limit_nano: int | None = None  # the budget's amount (None if partitioned or call-only)
    note: str = ""
    profile: tuple[float, ...] = field(default=())  # weekday multipliers, Monday first

    @property
    def verdict(self) -> str:
        if self.forecast_nano is None or self.limit_nano is None or self.high_nano is None:
            return "n/a"
        if self.forecast_nano > self.limit_nano:
            return "over"
        return "at risk" if self.high_nano > self.limit_nano else "ok"

    def to_json(self) -> dict[str, Any]:
        def usd(value: int | None) -> str | None:
            return None if value is None else format_usd(value)

        return {"budget": self.budget, "window": self.window,
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
                "spent_nano": self.spent_nano, "forecast_nano": self.forecast_nano, "low_nano": self.low_nano,
                "high_nano": self.high_nano, "limit_nano": self.limit_nano, "spent_usd": usd(self.spent_nano),
                "forecast_usd": usd(self.forecast_nano), "low_usd": usd(self.low_nano),
                "high_usd": usd(self.high_nano), "limit_usd": usd(self.limit_nano), "verdict": self.verdict,
                "weekday_profile": [round(p, 3) for p in self.profile], "note": self.note}


def daily_spend(events: Iterable[CostEvent], zone: ZoneInfo, first: date, last: date) -> list[int]:
    """Spend per local day from `first` to `last` inclusive (exact nano-USD; 0 for a day with none)."""
    totals = [0] * ((last - first).days + 1)
    for event in events:
        index = (event.ts.astimezone(zone).date() - first).days
        if 0 <= index < len(totals):
            totals[index] += event.cost_nano
    return totals


def _context_key(event: CostEvent) -> tuple[Any, ...]:
    ctx = event.context
    return (tuple(ctx.get(d) for d in DIMENSIONS), tuple(sorted(ctx.tags.items())), ctx.key_id,
            event.model, event.provider, event.endpoint)


def budget_events(bundle: Bundle, events: Sequence[CostEvent]) -> dict[str, list[CostEvent]]:
    """budget name -> the events its scope matches (evaluated as at the `llm.request` hook)."""
    engine = PolicyEngine(bundle)
    matched: dict[str, list[CostEvent]] = {b.name: [] for b in bundle.budgets}
    memo: dict[tuple[Any, ...], list[str]] = {}
    for event in events:
        key = _context_key(event)
        names = memo.get(key)
        if names is None:
            request = {"model": event.model, "provider": event.provider, "endpoint": event.endpoint}
            names = memo[key] = [b.name for b in engine.budgets_for("llm.request", event.context, request)]
        for name in names:
            matched[name].append(event)
    return matched


def _remaining(model: SeasonalModel, first: date, now: datetime, zone: ZoneInfo,
               end: datetime) -> list[tuple[int, float]]:
    local_now = now.astimezone(zone)
    today = local_now.date()
    days: list[tuple[int, float]] = []
    day = today
    while True:
        day_start = datetime.combine(day, datetime.min.time(), zone)
        day_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
        if day_start >= end:
            break
        length = (day_end - day_start).total_seconds()
        begin = max(day_start, local_now)
        share = max(0.0, (min(day_end, end) - begin).total_seconds() / length)
        if share:
            days.append(((day - first).days, share))
        day += timedelta(days=1)
    return days


def forecast_budget(budget: BudgetSpec, events: Sequence[CostEvent], now: datetime,
                    lookback_days: int = LOOKBACK_DAYS) -> BudgetForecast:
    window = budget.window
    if window.kind != "calendar":
        return BudgetForecast(budget.name, window.describe(), note=f"a {window.kind} window has no end to forecast to")
    zone = ZoneInfo(window.timezone)
    start = window.period_start(now)
    end = window.period_end(now)
    assert end is not None
    spent = sum(e.cost_nano for e in events if start <= e.ts < now)
    limit = None if budget.per else budget.amount_nano
    base = BudgetForecast(budget.name, window.describe(), start, end, spent, limit_nano=limit,
                          note="partitioned (per): forecast of the total" if budget.per else "")
    today = now.astimezone(zone).date()
    first_seen = min((e.ts.astimezone(zone).date() for e in events), default=today)
    first = max(today - timedelta(days=lookback_days), first_seen)
    values = daily_spend(events, zone, first, today - timedelta(days=1)) if first < today else []
    model = fit_seasonal([float(v) for v in values], first.weekday())
    if model is None:
        return BudgetForecast(budget.name, window.describe(), start, end, spent, limit_nano=limit,
                              note=f"needs {MIN_DAYS} complete days of spend history")
    point, low, high = model.total(_remaining(model, first, now, zone, end))
    return BudgetForecast(base.budget, base.window, start, end, spent, spent + round(point), spent + round(low),
                          spent + round(high), limit, base.note, model.profile)


def forecast_budgets(bundle: Bundle, events: Sequence[CostEvent], now: datetime, names: Sequence[str] = (),
                     lookback_days: int = LOOKBACK_DAYS) -> list[BudgetForecast]:
    """A forecast for every (or each named) budget of `bundle`; raises ValueError on an unknown name."""
    known: Mapping[str, BudgetSpec] = {b.name: b for b in bundle.budgets}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown budget {unknown[0]!r}; known: {', '.join(known) or '(none)'}")
    matched = budget_events(bundle, events)
    return [forecast_budget(spec, matched[name], now, lookback_days)
            for name, spec in known.items() if not names or name in names]
