"""Spend anomalies: days whose spend rate breaks a scope's seasonal baseline, with ranked root causes.

Scopes: all spend, and each team. For each scope the daily spend (UTC days) of the `baseline_days`
before the analysed window is fitted with `fit_seasonal` (trend × weekday profile); each complete
day of the window is compared with the model's expectation. A day is an anomaly when its excess is
at least `min_sigma` residual standard deviations (floored at `min_sd_percent` of the mean daily
spend, so a very regular history does not flag cents), `min_excess_percent` of the expectation and
`min_excess_nano`. Only rises are reported (a drop saves money).

Root cause: the day's spend per (team, agent, model) against that cell's expectation — its share of
the scope's baseline spend times the scope's expected spend — ranked by the dollar excess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from costplane.ledger.types import CostEvent
from costplane.money import format_usd
from costplane.optimize.seasonal import fit_seasonal

__all__ = ["Anomaly", "AnomalySettings", "Cause", "detect_anomalies"]

Cell = tuple[str, str, str]  # (team, agent, model); "(none)" when unset


@dataclass(frozen=True, slots=True)
class AnomalySettings:
    baseline_days: int = 28
    min_sigma: float = 4.0
    min_sd_percent: int = 5
    min_excess_percent: int = 25
    min_excess_nano: int = 1_000_000_000  # $1
    causes: int = 5


@dataclass(frozen=True, slots=True)
class Cause:
    team: str
    agent: str
    model: str
    actual_nano: int
    expected_nano: int

    @property
    def excess_nano(self) -> int:
        return self.actual_nano - self.expected_nano


@dataclass(frozen=True, slots=True)
class Anomaly:
    scope: tuple[str, str]  # ("all", "*") or ("team", NAME)
    day: date
    actual_nano: int
    expected_nano: int
    sigma: float
    causes: tuple[Cause, ...]  # largest excess first

    @property
    def excess_nano(self) -> int:
        return self.actual_nano - self.expected_nano

    def to_json(self) -> dict[str, Any]:
        return {"scope": {self.scope[0]: self.scope[1]}, "day": self.day.isoformat(),
                "actual_nano": self.actual_nano, "expected_nano": self.expected_nano,
                "excess_nano": self.excess_nano, "excess_usd": format_usd(self.excess_nano),
                "sigma": round(self.sigma, 1),
                "root_causes": [{"team": c.team, "agent": c.agent, "model": c.model, "actual_nano": c.actual_nano,
                                 "expected_nano": c.expected_nano, "excess_nano": c.excess_nano,
                                 "excess_usd": format_usd(c.excess_nano)} for c in self.causes]}


def _cell(event: CostEvent) -> Cell:
    ctx = event.context
    return ctx.team or "(none)", ctx.agent or "(none)", event.model or "(none)"


def _scan(scope: tuple[str, str], events: Sequence[CostEvent], first: date, days: int, window_days: int,
          settings: AnomalySettings) -> list[Anomaly]:
    daily = [0] * (days + window_days)
    cells: list[dict[Cell, int]] = [{} for _ in daily]
    for event in events:
        index = (event.ts.astimezone(UTC).date() - first).days
        if 0 <= index < len(daily):
            daily[index] += event.cost_nano
            cell = _cell(event)
            cells[index][cell] = cells[index].get(cell, 0) + event.cost_nano
    baseline = daily[:days]
    model = fit_seasonal([float(v) for v in baseline], first.weekday())
    if model is None:
        return []
    total = sum(baseline)
    shares: dict[Cell, int] = {}
    for row in cells[:days]:
        for cell, spent in row.items():
            shares[cell] = shares.get(cell, 0) + spent
    sd = max(model.residual_sd, total / days * settings.min_sd_percent / 100, 1.0)
    found = []
    for index in range(days, days + window_days):
        expected = model.expected(index)
        excess = daily[index] - expected
        if (excess < settings.min_sigma * sd or excess * 100 < settings.min_excess_percent * expected
                or excess < settings.min_excess_nano):
            continue
        causes = []
        for cell in set(cells[index]) | set(shares):
            cell_expected = round(expected * shares.get(cell, 0) / total)
            actual = cells[index].get(cell, 0)
            if actual > cell_expected:
                causes.append(Cause(*cell, actual, cell_expected))
        causes.sort(key=lambda c: (-c.excess_nano, c.team, c.agent, c.model))
        found.append(Anomaly(scope, first + timedelta(days=index), daily[index], round(expected), excess / sd,
                             tuple(causes[:settings.causes])))
    return found


def detect_anomalies(events: Sequence[CostEvent], since: datetime, until: datetime,
                     settings: AnomalySettings | None = None) -> list[Anomaly]:
    """Anomalous complete UTC days in [since, until), each scope fitted on the `baseline_days` before
    `since` (so `events` should reach back that far); largest excess first."""
    settings = settings or AnomalySettings()
    start = since.astimezone(UTC).date()
    window_days = (until.astimezone(UTC).date() - start).days  # complete days only
    first = start - timedelta(days=settings.baseline_days)
    if window_days <= 0:
        return []
    teams: dict[str, list[CostEvent]] = {}
    for event in events:
        if event.context.team:
            teams.setdefault(event.context.team, []).append(event)
    found = _scan(("all", "*"), events, first, settings.baseline_days, window_days, settings)
    for team, team_events in sorted(teams.items()):
        found += _scan(("team", team), team_events, first, settings.baseline_days, window_days, settings)
    return sorted(found, key=lambda a: (-a.excess_nano, a.day, a.scope))
