"""The reconciliation as a Rich table (rounded for reading), JSON or CSV (exact)."""

from __future__ import annotations

import csv
import io
import json
from decimal import ROUND_HALF_UP, Decimal

from rich.console import Console
from rich.table import Table

from costplane.reconcile.match import Line
from costplane.reconcile.run import Reconciliation
from costplane.reconcile.types import MONEY, TOKENS

__all__ = ["CSV_COLUMNS", "render_csv", "render_json", "render_table"]

CSV_COLUMNS = ("kind", "day", "provider", "model", "project", "metered", "billed", "drift", "drift_pct", "status",
               "breach", "events", "bill_lines", "metered_prompt_tokens", "billed_prompt_tokens",
               "metered_completion_tokens", "billed_completion_tokens")
_STATUS = {"matched": "matched", "billed_only": "[yellow]billed only[/yellow]",
           "metered_only": "[yellow]metered only[/yellow]"}


def render_json(result: Reconciliation) -> str:
    return json.dumps(result.to_json(), indent=2)


def render_csv(result: Reconciliation) -> str:
    """One row per compared line, money then tokens; amounts exact."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in result.lines:
        pct = line.drift_pct
        writer.writerow([line.kind, line.day.isoformat(), line.provider, line.model or "", _project(line.project),
                         f"{line.metered:f}", f"{line.billed:f}", f"{line.drift:f}", "" if pct is None else f"{pct:f}",
                         line.status, "true" if line.breach else "false", line.events, " | ".join(line.sources),
                         *(_split(line) if line.kind == TOKENS else ("", "", "", ""))])
    return buffer.getvalue()


def _split(line: Line) -> tuple[int, int, int, int]:
    return line.metered_split[0], line.billed_split[0], line.metered_split[1], line.billed_split[1]


def _project(project: str | None) -> str:
    return "" if project is None else project or "(none)"


def _usd(value: Decimal, places: int = 4) -> str:
    return f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):,f}"


def _amount(line: Line, value: Decimal) -> str:
    return _usd(value) if line.kind == MONEY else f"{int(value):,}"


def _table(result: Reconciliation, kind: str) -> Table:
    lines = result.money if kind == MONEY else result.tokens
    unit = "USD" if kind == MONEY else "tokens"
    table = Table(title=f"{'Spend' if kind == MONEY else 'Tokens (prompt + completion)'}: metered vs billed "
                        f"({result.settings.timezone} days)", title_justify="left")
    for name in ("day", "provider", "model", "project", f"metered {unit}", f"billed {unit}", "drift", "drift %",
                 "status"):
        table.add_column(name, justify="right" if name.split()[0] in ("metered", "billed", "drift") else "left")
    for line in lines:
        pct = line.drift_pct
        mark = "[red]" if line.breach else ""
        table.add_row(line.day.isoformat(), line.provider, line.model or "(all)",
                      "(all)" if line.project is None else _project(line.project), _amount(line, line.metered),
                      _amount(line, line.billed), f"{mark}{_amount(line, line.drift)}",
                      f"{mark}{'—' if pct is None else f'{pct:f}'}",
                      _STATUS[line.status] + (" [red]ALERT[/red]" if line.breach else ""))
    for provider, (metered, billed) in result.totals(kind).items():
        table.add_row("total", provider, "", "", _usd(metered) if kind == MONEY else f"{int(metered):,}",
                      _usd(billed) if kind == MONEY else f"{int(billed):,}",
                      _usd(billed - metered) if kind == MONEY else f"{int(billed - metered):,}", "", "",
                      style="bold")
    return table


def render_table(result: Reconciliation, console: Console) -> None:
    for source in result.sources:
        skipped = ", ".join(f"{n} {c}" for c, n in sorted(source.skipped.items()))
        console.print(f"[dim]{source.label}[/dim] {source.path}: {len(source.lines)} lines"
                      + (f" (skipped: {skipped})" if skipped else ""), highlight=False, soft_wrap=True)
    if not result.days:
        console.print("The bills cover no day in the window: nothing to compare.")
        return
    for kind in (MONEY, TOKENS):
        if any(s.kind == kind for s in result.sources):
            console.print(_table(result, kind))
    billed_only, metered_only = result.unmatched("billed_only"), result.unmatched("metered_only")
    thresholds = result.settings
    console.print(f"{len(billed_only)} billed line(s) with no metered spend, {len(metered_only)} metered line(s) "
                  f"with no billed line; {len(result.breaches)} line(s) past the drift threshold "
                  f"({thresholds.drift_threshold_pct}% and {thresholds.drift_threshold_usd} USD).", highlight=False,
                  soft_wrap=True)
