"""Matching billed lines to metered lines and measuring the drift.

The rules:

1. Each bill says which dimensions it breaks spend down by (`has_model`, `has_project`); the key of a
   line is (day, provider, model, project) with the dimensions the bill of that provider lacks — or
   the `grain` leaves out — set to None, and the ledger is rolled up to the same key.
2. Only the periods a bill covers are compared, per provider (whole days for daily buckets, the hours
   of hourly ones): ledger spend in a covered period with no billed line is metered-only; ledger spend
   outside every covered period is outside the comparison (the caller reads the ledger that way).
3. Two bills of one kind (money, or tokens) covering an overlapping period of one provider would count
   it twice: that is an error naming both files.
4. Drift = billed − metered (positive: the provider billed more than costplane metered);
   drift % = drift ÷ billed × 100 (None when nothing was billed).
5. A line breaches when its drift passes every threshold set (`drift_threshold_usd` in dollars,
   `drift_threshold_pct` in percent). A token line uses the percent threshold only, on its prompt and its
   completion tokens each. A line with zero on both sides is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from costplane.reconcile.metered import MeteredLine
from costplane.reconcile.settings import ReconcileSettings
from costplane.reconcile.types import MONEY, BillSource, ReconcileError

__all__ = ["GRAINS", "Line", "Periods", "coverage", "match"]

GRAINS = ("full", "model", "provider")  # what a key keeps: model + project | model | neither
Key = tuple[date, str, str | None, str | None]
_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Line:
    """One compared line (money: cost fields; tokens: token fields)."""

    kind: str
    day: date
    provider: str
    model: str | None
    project: str | None
    metered: Decimal
    billed: Decimal
    status: str  # matched | billed_only | metered_only
    breach: bool
    events: int
    sources: tuple[str, ...]  # where on the bill (file and JSON path / line), at most 3
    metered_split: tuple[int, int] = (0, 0)  # token lines: (prompt, completion) tokens metered
    billed_split: tuple[int, int] = (0, 0)  # token lines: (prompt, completion) tokens billed

    @property
    def drift(self) -> Decimal:
        return self.billed - self.metered

    @property
    def drift_pct(self) -> Decimal | None:
        if self.billed == 0:
            return None
        return (self.drift * _HUNDRED / self.billed).quantize(Decimal("0.01"))


def _grain(sources: Sequence[BillSource], grain: str) -> dict[str, tuple[bool, bool]]:
    """provider -> (keep model, keep project)."""
    out: dict[str, tuple[bool, bool]] = {}
    for source in sources:
        for provider in {*source.covered, *(line.provider for line in source.lines)}:
            model, project = out.get(provider, (False, False))
            out[provider] = (model or source.has_model, project or source.has_project)
    if grain == "provider":
        return dict.fromkeys(out, (False, False))
    if grain == "model":
        return {p: (m, False) for p, (m, _) in out.items()}
    return out


Periods = dict[str, dict[date, list[tuple[datetime, datetime]]]]  # provider -> day -> [start, end) in UTC


def coverage(sources: Sequence[BillSource]) -> Periods:
    """What the bills cover, per provider and day, as merged [start, end) periods. Two bills covering
    an overlapping period of one provider would count it twice: that is an error naming both."""
    spans: dict[str, list[tuple[datetime, datetime, date, int]]] = {}
    for index, source in enumerate(sources):
        for provider, days in source.covered.items():
            for day, periods in days.items():
                spans.setdefault(provider, []).extend((a, b, day, index) for a, b in periods)
    out: Periods = {}
    for provider, items in sorted(spans.items()):
        items.sort()
        reach: tuple[datetime, int] | None = None  # the furthest end so far, and whose
        for start, end, day, index in items:
            if reach is not None and start < reach[0] and index != reach[1]:
                first, second = sources[min(index, reach[1])].path, sources[max(index, reach[1])].path
                raise ReconcileError(f"two bills cover {provider} on {day.isoformat()}: {first} and {second} — "
                                     "pass each report once (a cost and a usage report may go together)")
            if reach is None or end > reach[0]:
                reach = (end, index)
            merged = out.setdefault(provider, {}).setdefault(day, [])
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
    return out


def match(kind: str, sources: Sequence[BillSource], metered: Iterable[MeteredLine], settings: ReconcileSettings,
          grain: str = "full") -> list[Line]:
    """The compared lines of one kind (MONEY or TOKENS), sorted by day, provider, model, project."""
    if grain not in GRAINS:
        raise ReconcileError(f"unknown grain {grain!r}; use one of {', '.join(GRAINS)}")
    chosen = [s for s in sources if s.kind == kind]
    covered = coverage(chosen)
    keep = _grain(chosen, grain)
    zero = (Decimal(0), 0, 0, 0)  # amount (USD, or all tokens), prompt tokens, completion tokens, events
    billed: dict[Key, tuple[Decimal, int, int, int]] = {}
    where: dict[Key, list[str]] = {}
    for source in chosen:
        for bill in source.lines:
            key = _key(bill.day, bill.provider, bill.model or "", bill.project or "", keep)
            amount = bill.cost if kind == MONEY else Decimal(bill.input_tokens + bill.output_tokens)
            billed[key] = _add(billed.get(key, zero), (amount, bill.input_tokens, bill.output_tokens, 0))
            where.setdefault(key, []).append(bill.source)
    meter: dict[Key, tuple[Decimal, int, int, int]] = {}
    for used in metered:
        if used.day not in covered.get(used.provider, ()):
            continue
        key = _key(used.day, used.provider, used.model, used.project, keep)
        amount = used.cost if kind == MONEY else Decimal(used.input_tokens + used.output_tokens)
        meter[key] = _add(meter.get(key, zero), (amount, used.input_tokens, used.output_tokens, used.events))
    out: list[Line] = []
    for key in sorted({*billed, *meter}, key=lambda k: (k[0], k[1], k[2] or "", k[3] or "")):
        b, b_in, b_out, _ = billed.get(key, zero)
        m, m_in, m_out, events = meter.get(key, zero)
        if b == 0 and m == 0:
            continue
        status = "billed_only" if m == 0 else "metered_only" if b == 0 else "matched"
        split = ((m_in, m_out), (b_in, b_out)) if kind != MONEY else ((0, 0), (0, 0))
        line = Line(kind, key[0], key[1], key[2], key[3], m, b, status, False, events,
                    tuple(where.get(key, ())[:3]), *split)
        out.append(replace(line, breach=breaches(line, settings)))
    return out


def _add(a: tuple[Decimal, int, int, int], b: tuple[Decimal, int, int, int]) -> tuple[Decimal, int, int, int]:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]


def breaches(line: Line, settings: ReconcileSettings) -> bool:
    """Whether the line's drift passes every threshold set (none set: never). A token line compares its
    prompt and its completion tokens each (a drift in one cannot hide behind the other), by percent."""
    if line.kind != MONEY:
        pct = settings.drift_threshold_pct
        pairs = zip(line.metered_split, line.billed_split, strict=True)
        return pct is not None and any(_passes(Decimal(b - m), Decimal(b), None, pct) for m, b in pairs)
    return _passes(line.drift, line.billed, settings.drift_threshold_usd, settings.drift_threshold_pct)


def _passes(drift: Decimal, billed: Decimal, usd: Decimal | None, pct: Decimal | None) -> bool:
    if usd is None and pct is None:
        return False
    size = abs(drift)
    if usd is not None and size <= usd:
        return False
    if pct is not None:
        if billed == 0:
            return size > 0
        return size * _HUNDRED / abs(billed) > pct
    return True


def _key(day: date, provider: str, model: str, project: str, keep: dict[str, tuple[bool, bool]]) -> Key:
    with_model, with_project = keep.get(provider, (False, False))
    return day, provider, model if with_model else None, project if with_project else None
