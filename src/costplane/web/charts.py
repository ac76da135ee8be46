"""Charts drawn on the server as inline SVG: no chart library, no CDN, and the numbers a test reads
are the numbers the page shows. Amounts stay integer nano-USD; only pixel positions are scaled."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from costplane.money import NANO_PER_USD, format_usd

__all__ = ["PALETTE", "Series", "color", "display_usd", "stacked_bars"]

PALETTE = ("#3867d6", "#20bf6b", "#f7b731", "#eb3b5a", "#8854d0", "#0fb9b1", "#fa8231", "#4b6584", "#a5b1c2")


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def display_usd(nano: int) -> str:
    """$1,234.56 for display; cents are not enough for a single LLM call, so small amounts keep 4-6 places."""
    if abs(nano) >= NANO_PER_USD // 100 or nano == 0:
        text = format_usd(nano, places=2)
    elif abs(nano) >= 100_000:
        text = format_usd(nano, places=4)
    else:
        text = format_usd(nano, places=6)
    whole, _, frac = text.lstrip("-").partition(".")
    sign = "-" if text.startswith("-") else ""
    return f"{sign}${int(whole):,}" + (f".{frac}" if frac else "")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[int]  # nano-USD per bucket, aligned with the chart's buckets


def _nice_ceiling(nano: int) -> int:
    """A round axis maximum at or above `nano` (1, 2 or 5 times a power of ten)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= nano:
                return step * factor
        step *= 10


def stacked_bars(buckets: Sequence[datetime], series: Sequence[Series], *, label: str = "%m-%d",
                 width: int = 900, height: int = 240) -> str:
    """An SVG stacked bar chart: one bar per bucket, one colour per series, a <title> tooltip on each part."""
    left, bottom, top = 70, 24, 8
    plot_w, plot_h = width - left - 8, height - bottom - top
    totals = [sum(s.values[i] for s in series) for i in range(len(buckets))]
    ceiling = _nice_ceiling(max([*totals, 1]))
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
             f'aria-label="stacked spend per bucket">']
    for tick in range(5):
        value = ceiling * tick // 4
        y = top + plot_h - plot_h * tick // 4
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y}" y2="{y}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" class="axis">{display_usd(value)}</text>')
    n = max(len(buckets), 1)
    slot = plot_w // n
    bar = max(slot * 3 // 4, 1)
    every = max(1, n // 12)  # at most ~12 labels
    for i, when in enumerate(buckets):
        x = left + i * slot + (slot - bar) // 2
        y = top + plot_h
        for index, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            h = max(plot_h * value // ceiling, 1)
            y -= h
            tip = f"{s.name} · {when.strftime('%Y-%m-%d %H:%M')} UTC · {display_usd(value)}"
            parts.append(f'<rect x="{x}" y="{y}" width="{bar}" height="{h}" fill="{color(index)}">'
                         f"<title>{escape(tip)}</title></rect>")
        if i % every == 0:
            parts.append(f'<text x="{x + bar // 2}" y="{height - 6}" text-anchor="middle" class="axis">'
                         f"{escape(when.strftime(label))}</text>")
    parts.append("</svg>")
    return "".join(parts)
