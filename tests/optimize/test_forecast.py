"""Forecasts on a history with a known trend and weekly season; anomalies with ranked root causes."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from costplane.attribution.context import Context
from costplane.cli.main import app
from costplane.ledger import open_store
from costplane.ledger.types import CostEvent
from costplane.ledger.windows import Window
from costplane.optimize.anomaly import detect_anomalies
from costplane.optimize.forecast import forecast_budget
from costplane.optimize.seasonal import fit_seasonal
from costplane.policy.types import BudgetSpec
from costplane.pricing.types import TokenUsage

PROFILE = (1.2, 1.3, 1.25, 1.2, 1.05, 0.5, 0.5)  # Monday first: quiet weekends
USD = 1_000_000_000
CELLS = (("support", "triage-bot", "gpt-4o"), ("support", "faq-bot", "gpt-4o-mini"), ("ml", "research", "gpt-4o"))


def truth(day_index: int, first: date) -> float:
    """Expected spend (nano-USD) on day `day_index`: $100/day rising $2/day, times the weekday profile."""
    return (100 + 2 * day_index) * USD * PROFILE[(first + timedelta(days=day_index)).weekday()]


def seasonal_events(first: date, days: int, seed: int = 3, spike: tuple[int, str, str, str, int] | None = None
                    ) -> list[CostEvent]:
    """Six events a day per cell sharing the day's spend (±3 % noise); `spike` = (day, team, agent, model, USD)."""
    rng, events = random.Random(seed), []
    for d in range(days):
        total = truth(d, first) * rng.uniform(0.97, 1.03)
        extra = [(spike[1:4], spike[4] * USD)] if spike and spike[0] == d else []
        for cell, amount in [(c, total / 3) for c in CELLS] + extra:
            for k in range(6):
                ts = datetime.combine(first + timedelta(days=d), datetime.min.time(), UTC) + timedelta(hours=2 + 3 * k)
                events.append(CostEvent(
                    id=f"evt_{d}_{cell[1]}_{k}_{len(events)}", ts=ts,
                    context=Context(org="acme", team=cell[0], agent=cell[1]), provider="openai", model=cell[2],
                    cost_nano=round(amount / 6), usage=TokenUsage(100, 10)))
    return events


def test_seasonal_fit_recovers_the_profile() -> None:
    first = date(2025, 1, 6)  # a Monday
    values = [truth(d, first) for d in range(56)]
    model = fit_seasonal(values, first.weekday())
    assert model is not None
    mean = sum(PROFILE) / 7
    assert all(abs(p - q / mean) < 0.01 for p, q in zip(model.profile, PROFILE, strict=True))


def test_a_weekday_that_never_spends_is_fitted_as_zero_not_divided_by() -> None:
    first = date(2025, 1, 6)  # a Monday; weekends idle
    values = [0.0 if (first + timedelta(days=d)).weekday() >= 5 else truth(d, first) for d in range(56)]
    model = fit_seasonal(values, first.weekday())
    assert model is not None
    assert model.profile[5] == model.profile[6] == 0.0
    weekday_mean = sum(PROFILE[:5]) / 5
    assert all(abs(p / sum(model.profile[:5]) * 5 - q / weekday_mean) < 0.01
               for p, q in zip(model.profile[:5], PROFILE[:5], strict=True))
    saturday = 5 + 7 * 8  # a day past the history: still 0 on a Saturday, the trend on a Monday
    assert model.expected(saturday) == 0.0
    assert abs(model.expected(saturday + 2) - truth(saturday + 2, first)) < 0.02 * truth(saturday + 2, first)


def test_anomalies_over_a_history_idle_at_weekends() -> None:
    first = date(2025, 1, 6)
    weekdays = [e for e in seasonal_events(first, 42) if e.ts.weekday() < 5]
    since, until = datetime(2025, 2, 3, tzinfo=UTC), datetime(2025, 2, 17, tzinfo=UTC)
    assert detect_anomalies(weekdays, since, until) == []


def test_forecast_is_within_3_percent_of_the_truth_and_the_interval_covers_it() -> None:
    """Over 20 seeded histories: the point forecast is always within 3 % of the realised month, and the
    95 % interval covers it in at least 17 of 20 (a binomial tail below 1.6 % for a true 95 % interval)."""
    first = date(2025, 1, 6)
    now = datetime(2025, 3, 10, tzinfo=UTC)  # 63 complete days of history; mid-window of March
    month, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
    budget = BudgetSpec(name="monthly", scope="true", window=Window("calendar", calendar="month", timezone="UTC"),
                        amount_nano=5000 * USD)
    covered = 0
    for seed in range(20):
        history = seasonal_events(first, 120, seed=seed)
        seen = [e for e in history if e.ts < now]
        result = forecast_budget(budget, seen, now)
        actual = sum(e.cost_nano for e in history if month <= e.ts < end)
        assert result.end == end and result.forecast_nano is not None
        assert result.low_nano is not None and result.high_nano is not None
        assert result.spent_nano == sum(e.cost_nano for e in seen if e.ts >= month)
        assert abs(result.forecast_nano - actual) <= actual * 3 // 100, seed
        covered += result.low_nano <= actual <= result.high_nano
        assert result.verdict == "over"  # ~$7.2k against a $5k budget
    assert covered >= 17
    flat = forecast_budget(budget, [e for e in seen if e.ts >= month], now)
    assert flat.forecast_nano is None and "14" in flat.note  # too little history: says so
    rolling = BudgetSpec(name="r", scope="true", window=Window("rolling", seconds=3600), amount_nano=USD)
    assert forecast_budget(rolling, seen, now).forecast_nano is None


def test_anomaly_root_cause_is_ranked_first_and_a_clean_history_has_none() -> None:
    first = date(2025, 1, 6)
    since, until = datetime(2025, 2, 3, tzinfo=UTC), datetime(2025, 2, 17, tzinfo=UTC)
    assert detect_anomalies(seasonal_events(first, 42), since, until) == []
    spiked = seasonal_events(first, 42, spike=(33, "ml", "research", "gpt-4o", 80))
    found = detect_anomalies(spiked, since, until)
    assert found and {a.day for a in found} == {first + timedelta(days=33)}
    assert {a.scope for a in found} == {("all", "*"), ("team", "ml")}
    for anomaly in found:
        top = anomaly.causes[0]
        assert (top.team, top.agent, top.model) == ("ml", "research", "gpt-4o")
        assert abs(top.excess_nano - 80 * USD) <= 10 * USD


def test_cli_forecast_and_anomalies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    today = datetime.now(UTC).date()
    first = today - timedelta(days=49)
    store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    store.migrate()
    store.record_nodes((), seasonal_events(first, 49, spike=(45, "support", "faq-bot", "gpt-4o-mini", 90)))
    store.close()
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "b.yaml").write_text(
        "kind: Budget\nname: month\namount: 100000 USD\nwindow: {calendar: month, timezone: UTC}\n---\n"
        "kind: Budget\nname: ever\namount: 1 USD\n")
    (tmp_path / "costplane.yaml").write_text("store: sqlite:///ledger.db\nbundle: bundle\n")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["forecast", "--config", "costplane.yaml", "--format", "json"])
    assert result.exit_code == 0, result.output
    forecasts = {f["budget"]: f for f in json.loads(result.stdout)["forecasts"]}
    assert forecasts["month"]["forecast_nano"] >= forecasts["month"]["spent_nano"]
    assert forecasts["month"]["verdict"] == "ok" and forecasts["ever"]["forecast_nano"] is None
    text = runner.invoke(app, ["forecast", "--config", "costplane.yaml", "--budget", "month"])
    assert text.exit_code == 0 and "forecast" in text.output
    bad = runner.invoke(app, ["forecast", "--config", "costplane.yaml", "--budget", "nope"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    result = runner.invoke(app, ["anomalies", "--since", "14d", "--config", "costplane.yaml", "--format", "json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)["anomalies"]
    assert found and found[0]["root_causes"][0]["agent"] == "faq-bot"
    text = runner.invoke(app, ["anomalies", "--config", "costplane.yaml"])
    assert text.exit_code == 0 and "faq-bot" in text.output
