"""Least-squares line fit used by the trend detectors and the forecast (statistics only: floats).

Money never passes through here as a result: callers turn fitted token or call counts back into
exact integer prices with the Catalog.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Line", "fit_line"]


@dataclass(frozen=True, slots=True)
class Line:
    """y ≈ intercept + slope · x, with the residual spread and the slope's standard error."""

    intercept: float
    slope: float
    n: int
    residual_sd: float
    slope_se: float
    x_mean: float
    sxx: float

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x

    @property
    def t(self) -> float:
        """The slope over its standard error (inf for a perfect non-flat fit)."""
        if self.slope_se == 0:
            return math.inf if self.slope else 0.0
        return self.slope / self.slope_se

    def mean_se(self, x: float) -> float:
        """Standard error of the fitted mean at x."""
        return self.residual_sd * math.sqrt(1 / self.n + (x - self.x_mean) ** 2 / self.sxx)


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> Line | None:
    """Ordinary least squares; None with fewer than 3 points or no spread in x."""
    n = len(xs)
    if n != len(ys) or n < 3:
        return None
    x_mean, y_mean = sum(xs) / n, sum(ys) / n
    sxx = sum((x - x_mean) ** 2 for x in xs)
    if sxx <= 0:
        return None
    slope = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = y_mean - slope * x_mean
    sse = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    residual_sd = math.sqrt(sse / (n - 2))
    return Line(intercept, slope, n, residual_sd, residual_sd / math.sqrt(sxx), x_mean, sxx)
