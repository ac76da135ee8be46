"""Charts drawn on the server as inline SVG: no chart library, no CDN, and the numbers a test reads
are the numbers the page shows. Amounts stay integer nano-USD; only pixel positions are scaled."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from html import escape

from costplane.money import NANO_PER_USD, format_usd

__all__ = ["PALETTE", "Series", "axis_usd", "color", "display_usd", "nice_ticks", "stacked_bars"]

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


def nice_ticks(top: int, most: int = 5) -> tuple[int, int]:
    """(step, ceiling) of an axis from 0 to at least `top`: the step is 1, 2 or 5 times a power of ten
    (in the unit given, e.g. nano-USD), the smallest that needs at most `most` intervals; the ceiling is
    the first multiple of the step at or above `top`. Integer arithmetic only."""
    top = max(top, 1)
    power = 1
    while True:
        for factor in (1, 2, 5):
            step = power * factor
            intervals = -(-top // step)
            if intervals <= most:
                return step, step * intervals
        power *= 10


def axis_usd(value: int, step: int) -> str:
    """An axis label with exactly the decimals the step needs: $0, $500, $1,000 or $0.25, $0.002."""
    zeros = 0
    while step and step % 10 == 0 and zeros < 9:
        step //= 10
        zeros += 1
    places = 0 if zeros >= 9 else max(2, 9 - zeros)  # cents as money reads, more only when the step needs it
    text = format_usd(value, places=places)
    whole, _, frac = text.lstrip("-").partition(".")
    return ("-" if text.startswith("-") else "") + f"${int(whole):,}" + (f".{frac}" if frac and places else "")


def stacked_bars(buckets: Sequence[datetime], series: Sequence[Series], *, label: str = "%m-%d",
                 width: int = 900, height: int = 240, zone: tzinfo = UTC) -> str:
    """An SVG stacked bar chart: one bar per bucket, one colour per series, a <title> tooltip on each part.
    The value axis is on round values (`nice_ticks`); bucket labels and tooltips are read in `zone`."""
    left, bottom, top = 70, 24, 8
    plot_w, plot_h = width - left - 8, height - bottom - top
    totals = [sum(s.values[i] for s in series) for i in range(len(buckets))]
    step, ceiling = nice_ticks(max([*totals, NANO_PER_USD // 100]))  # an empty chart reads $0 to $0.01
    intervals = ceiling // step
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
             f'aria-label="stacked spend per bucket">']
    for tick in range(intervals + 1):
        value = step * tick
        y = top + plot_h - plot_h * tick // intervals
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y}" y2="{y}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" class="axis">{axis_usd(value, step)}</text>')
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
            local = when.astimezone(zone)
            tip = f"{s.name} · {local.strftime('%d %b %Y %H:%M')} {local.strftime('%Z')} · {display_usd(value)}"
            parts.append(f'<rect x="{x}" y="{y}" width="{bar}" height="{h}" fill="{color(index)}">'
                         f"<title>{escape(tip)}</title></rect>")
        if i % every == 0:
            parts.append(f'<text x="{x + bar // 2}" y="{height - 6}" text-anchor="middle" class="axis">'
                         f"{escape(when.astimezone(zone).strftime(label))}</text>")
    parts.append("</svg>")
    return "".join(parts)
