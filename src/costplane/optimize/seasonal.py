"""A daily spend model: linear trend times a day-of-week multiplicative profile (statistics in floats).

`fit_seasonal` alternates two least-squares steps three times: the trend is fitted to the spend
divided by the weekday profile, then the profile is the mean ratio of spend to trend per weekday
(normalised to mean 1). The residual spread of the fitted days gives the forecast interval (daily
noise plus the estimation error of the trend and of the weekday multipliers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from costplane.optimize.trend import Line, fit_line

__all__ = ["MIN_DAYS", "SeasonalModel", "fit_seasonal"]

MIN_DAYS = 14  # two full weeks: every weekday seen twice


@dataclass(frozen=True, slots=True)
class SeasonalModel:
    first_weekday: int  # weekday (Mon = 0) of day index 0
    profile: tuple[float, ...]  # seven multipliers, Monday first, mean 1
    trend: Line  # deseasonalised spend (nano-USD per day) against the day index
    residual_sd: float  # of daily spend, nano-USD
    days: int

    def weekday(self, index: int) -> int:
        return (self.first_weekday + index) % 7

    def expected(self, index: int) -> float:
        """Expected spend on day `index` (0 = the first fitted day), never negative."""
        return max(0.0, self.trend.at(index) * self.profile[self.weekday(index)])

    def total(self, days: Sequence[tuple[int, float]], z: float = 1.96) -> tuple[float, float, float]:
        """(point, low, high) of the spend over `days` = (index, share of that day still to come)."""
        point = sum(share * self.expected(i) for i, share in days)
        noise = sum((share * self.residual_sd) ** 2 for i, share in days)
        level = sum(share * self.profile[self.weekday(i)] * self.trend.mean_se(i) for i, share in days)
        # each weekday's multiplier is a mean of about days / 7 ratios: its error repeats on every such day
        mean_level = max(1.0, self.trend.at((self.days - 1) / 2))
        per_weekday = [0.0] * 7
        for i, share in days:
            per_weekday[self.weekday(i)] += share * self.trend.at(i)
        counts = [max(1, sum(1 for j in range(self.days) if self.weekday(j) == w)) for w in range(7)]
        profile = sum((total * self.residual_sd / mean_level) ** 2 / counts[w] for w, total in enumerate(per_weekday))
        spread = z * math.sqrt(noise + level ** 2 + profile)
        return point, max(0.0, point - spread), point + spread


def _deseasonalised_trend(xs: Sequence[float], values: Sequence[float], profile: Sequence[float],
                          first_weekday: int) -> Line | None:
    """The trend of `values` divided by their weekday's multiplier. A weekday whose multiplier is 0 (it
    never spends, e.g. a team idle at weekends) says nothing about the trend and is left out; the model
    then expects 0 on that weekday."""
    points = [(x, v / m) for x, v in zip(xs, values, strict=True) if (m := profile[(first_weekday + int(x)) % 7]) > 0]
    return fit_line([x for x, _ in points], [y for _, y in points])


def fit_seasonal(values: Sequence[float], first_weekday: int) -> SeasonalModel | None:
    """Fit `values` (daily spend, oldest first); None with fewer than MIN_DAYS days or no spend."""
    n = len(values)
    if n < MIN_DAYS or not any(values):
        return None
    xs = [float(i) for i in range(n)]
    profile = [1.0] * 7
    trend: Line | None = None
    for _ in range(3):
        trend = _deseasonalised_trend(xs, values, profile, first_weekday)
        if trend is None:
            return None
        ratios: list[list[float]] = [[] for _ in range(7)]
        for i, v in enumerate(values):
            level = trend.at(i)
            if level > 0:
                ratios[(first_weekday + i) % 7].append(v / level)
        raw = [sum(r) / len(r) if r else 1.0 for r in ratios]
        mean = sum(raw) / 7
        if mean <= 0:
            return None
        profile = [p / mean for p in raw]
    trend = _deseasonalised_trend(xs, values, profile, first_weekday)
    if trend is None:
        return None
    model = SeasonalModel(first_weekday, tuple(profile), trend, 0.0, n)
    sse = sum((v - model.expected(i)) ** 2 for i, v in enumerate(values))
    return SeasonalModel(first_weekday, tuple(profile), trend, math.sqrt(sse / max(1, n - 8)), n)
