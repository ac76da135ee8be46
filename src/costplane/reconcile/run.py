"""One reconciliation: bills in, ledger read for the days they cover, lines matched, totals kept."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from costplane.ledger.store import Store
from costplane.reconcile.clock import DayClock
from costplane.reconcile.match import Line, coverage, match
from costplane.reconcile.metered import read_metered
from costplane.reconcile.settings import ReconcileSettings
from costplane.reconcile.types import MONEY, TOKENS, BillSource

__all__ = ["Reconciliation", "reconcile"]


@dataclass(frozen=True, slots=True)
class Reconciliation:
    settings: ReconcileSettings
    grain: str
    sources: tuple[BillSource, ...]
    money: tuple[Line, ...]
    tokens: tuple[Line, ...]
    days: tuple[date, ...] = field(default=())

    @property
    def lines(self) -> tuple[Line, ...]:
        return self.money + self.tokens

    @property
    def breaches(self) -> tuple[Line, ...]:
        return tuple(line for line in self.lines if line.breach)

    def unmatched(self, status: str) -> tuple[Line, ...]:
        return tuple(line for line in self.lines if line.status == status)

    def totals(self, kind: str = MONEY) -> dict[str, tuple[Decimal, Decimal]]:
        """provider -> (metered, billed) over the compared days."""
        out: dict[str, tuple[Decimal, Decimal]] = {}
        for line in self.money if kind == MONEY else self.tokens:
            metered, billed = out.get(line.provider, (Decimal(0), Decimal(0)))
            out[line.provider] = (metered + line.metered, billed + line.billed)
        return dict(sorted(out.items()))

    def to_json(self) -> dict[str, Any]:
        """Exact: money and token counts as decimal strings."""
        return {
            "timezone": self.settings.timezone,
            "grain": self.grain,
            "days": [self.days[0].isoformat(), self.days[-1].isoformat()] if self.days else None,
            "thresholds": {"drift_pct": _s(self.settings.drift_threshold_pct),
                           "drift_usd": _s(self.settings.drift_threshold_usd)},
            "sources": [{"path": s.path, "report": s.label, "kind": s.kind, "lines": len(s.lines),
                         "by_model": s.has_model, "by_project": s.has_project, "skipped": dict(s.skipped)}
                        for s in self.sources],
            "money": [_line(line) for line in self.money],
            "tokens": [_line(line) for line in self.tokens],
            "totals": {kind: {p: {"metered": _s(m), "billed": _s(b), "drift": _s(b - m)}
                              for p, (m, b) in self.totals(kind).items()} for kind in (MONEY, TOKENS)},
            "unmatched": {"billed_only": len(self.unmatched("billed_only")),
                          "metered_only": len(self.unmatched("metered_only"))},
            "breaches": len(self.breaches),
        }


def _s(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"


def _line(line: Line) -> dict[str, Any]:
    return {"day": line.day.isoformat(), "provider": line.provider, "model": line.model, "project": line.project,
            "metered": _s(line.metered), "billed": _s(line.billed), "drift": _s(line.drift),
            "drift_pct": _s(line.drift_pct), "status": line.status, "breach": line.breach, "events": line.events,
            "bill_lines": list(line.sources),
            **({"prompt_tokens": {"metered": line.metered_split[0], "billed": line.billed_split[0]},
                "completion_tokens": {"metered": line.metered_split[1], "billed": line.billed_split[1]}}
               if line.kind == TOKENS else {})}


def _within(source: BillSource, since: date | None, until: date | None) -> BillSource:
    def keep(day: date) -> bool:
        return (since is None or day >= since) and (until is None or day < until)

    out = BillSource(source.kind, source.label, source.path, [line for line in source.lines if keep(line.day)],
                     {p: {d: list(periods) for d, periods in days.items() if keep(d)}
                      for p, days in source.covered.items()},
                     source.has_model, source.has_project, dict(source.skipped))
    return out


def reconcile(store: Store, sources: Sequence[BillSource], settings: ReconcileSettings,
              provider_map: Mapping[str, str], *, grain: str = "full", since: date | None = None,
              until: date | None = None) -> Reconciliation:
    """Compare every bill source with the ledger (days in [since, until) when given)."""
    chosen = tuple(_within(s, since, until) for s in sources)
    days = sorted({d for s in chosen for covered in s.covered.values() for d in covered})
    clock = DayClock(settings.timezone)
    compared: dict[str, tuple[Line, ...]] = {}
    for kind in (MONEY, TOKENS):  # a cost and a usage report may cover different periods
        of_kind = [s for s in chosen if s.kind == kind]
        metered = read_metered(store, coverage(of_kind), clock, settings, provider_map) if of_kind else []
        compared[kind] = tuple(match(kind, of_kind, metered, settings, grain))
    return Reconciliation(settings, grain, chosen, compared[MONEY], compared[TOKENS], tuple(days))
