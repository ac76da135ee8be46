"""Budget exhaustion forecasts stay dates on any day of a month: one cheap call early in a long window
(the stock examples bundle's monthly team budget) must not overflow the date range of `/api/v1/budgets`,
the alert forecaster or the seasonal budget forecast."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from costplane.alerts.forecast import forecast_exhaustions
from costplane.api.budgets import budget_states
from costplane.api.credentials import new_user
from costplane.api.principal import Principal
from costplane.app import Application
from costplane.attribution.context import Context
from costplane.config import parse_config
from costplane.core.claims import budget_claims
from costplane.ledger.types import CostEvent
from costplane.optimize.forecast import forecast_budgets

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "bundle"
DAYS = [(2026, 12, 1, 0, 40), (2026, 12, 1, 9, 0), (2026, 12, 8, 9, 0), (2026, 12, 28, 23, 30), (2027, 2, 28, 12, 0)]


def _app(tmp_path: Path) -> Application:
    return Application(parse_config({"store": f"sqlite:///{tmp_path}/f.db", "bundle": str(EXAMPLES)}, base=tmp_path))


def _call(app: Application, ts: datetime, cost_nano: int, i: int = 0) -> None:
    ctx = Context(team="ml", agent="ml-bot", run=f"run-{i}")
    specs = app.bundle.engine.budgets_for("llm.request", ctx, {})
    event = CostEvent(id=f"ev-{i}-{ts.timestamp()}", ts=ts, context=ctx, provider="openai", model="gpt-4o-mini",
                      cost_nano=cost_nano)
    assert app.store.record_event(event, budget_claims(list(specs), ctx, "gpt-4o-mini", 0, ts))


@pytest.mark.parametrize("when", DAYS, ids=lambda d: f"{d[0]}-{d[1]:02}-{d[2]:02}T{d[3]:02}")
def test_one_cheap_call_does_not_overflow_the_forecast(tmp_path: Path, when: tuple[int, ...]) -> None:
    now = datetime(*when, tzinfo=UTC)
    app = _app(tmp_path)
    try:
        _call(app, now - timedelta(minutes=30), 30)  # 0.00000003 USD, a week (or an hour) into the period
        admin = Principal(new_user(app.store, "root", "admin", ()), "t")
        rows = {(r["name"], r["partition"]): r for r in budget_states(app, admin, now)}
        monthly = rows[("team-ml-monthly", "")]
        assert monthly["spent_usd"] == "0.00000003"
        assert monthly["forecast_exhaustion_at"] is None  # runs out long after the month ends
        hourly = rows[("ml-agents-hourly", "")]
        assert hourly["forecast_exhaustion_at"] is None  # more than a year ahead at this rate
        assert forecast_exhaustions(app.store, app.bundle.budgets, now, min_elapsed=0) == []
        assert {f.budget for f in forecast_budgets(app.bundle.engine.bundle, [], now)} >= {"team-ml-monthly"}
    finally:
        app.store.close()


def test_a_fast_burn_is_forecast_inside_the_period(tmp_path: Path) -> None:
    now = datetime(2026, 12, 28, 11, 0, tzinfo=UTC)  # 27 days + 12 h into a Berlin month
    app = _app(tmp_path)
    try:
        _call(app, now - timedelta(hours=1), 490_000_000_000)  # 490 of 500 USD
        admin = Principal(new_user(app.store, "root", "admin", ()), "t")
        monthly = next(r for r in budget_states(app, admin, now) if r["name"] == "team-ml-monthly")
        at = datetime.fromisoformat(monthly["forecast_exhaustion_at"])
        assert now < at < datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
        alerts = forecast_exhaustions(app.store, app.bundle.budgets, now)
        assert [a.subject for a in alerts if a.kind == "forecast_exhaustion"] == ["team-ml-monthly"]
    finally:
        app.store.close()


def test_seasonal_budget_forecast_with_idle_weekends(tmp_path: Path) -> None:
    now = datetime(2026, 12, 28, 12, 0, tzinfo=UTC)
    app = _app(tmp_path)
    try:
        events = [CostEvent(id=f"wd-{d}", ts=now - timedelta(days=d), context=Context(team="ml", agent="ml-bot"),
                            provider="openai", model="gpt-4o-mini", cost_nano=1_000_000_000)
                  for d in range(1, 40) if (now - timedelta(days=d)).weekday() < 5]
        got = {f.budget: f for f in forecast_budgets(app.bundle.engine.bundle, events, now)}
        monthly = got["team-ml-monthly"]
        # weekends are fitted as idle (multiplier 0), not divided by: the rest of December (Mon noon to
        # Thu, Europe/Berlin) is forecast at about $1 per weekday
        assert monthly.forecast_nano is not None and monthly.profile is not None
        assert monthly.profile[5] == monthly.profile[6] == 0.0
        assert 2_500_000_000 < monthly.forecast_nano - monthly.spent_nano < 4_500_000_000
        assert monthly.spent_nano == sum(e.cost_nano for e in events if e.ts >= datetime(2026, 11, 30, 23, tzinfo=UTC))
    finally:
        app.store.close()
