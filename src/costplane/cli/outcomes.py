"""`costplane outcomes report|slo`: cost per outcome (unit economics) and economic SLO state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from costplane.cli.common import CONFIG_OPTION, console, fail
from costplane.cli.runsource import API_OPTION, KEY_OPTION, STORE_OPTION, Source, since_option

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Unit economics: cost per outcome, economic SLOs.")


@app.command()
def report(outcome: str = typer.Argument(..., help="the outcome type, e.g. ticket_resolved"),
           since: str | None = typer.Option("7d", help="the last DURATION (e.g. 1d, 7d)"),
           by: str = typer.Option("agent,model,tier", help="group by these dimensions"),
           bucket: str | None = typer.Option(None, help="'day' for one row per day"),
           config: Path | None = CONFIG_OPTION, store: str | None = STORE_OPTION,
           api: str | None = API_OPTION, key: str | None = KEY_OPTION) -> None:
    """Cost per OUTCOME by agent × model × tier (× day): runs without the outcome count as waste."""
    source = Source(config, store, api, key)
    start = since_option(since)
    groups = [b.strip() for b in by.split(",") if b.strip()]
    try:
        if source.store is not None:
            from costplane.runs.report import cost_per_outcome

            try:
                rows = [r.to_json() for r in cost_per_outcome(source.store, outcome, since=start, group_by=groups,
                                                               bucket=bucket)]
            except ValueError as exc:
                fail(str(exc))
        else:
            rows = source.get("/v1/outcomes/report", outcome=outcome, since=start.isoformat() if start else None,
                              by=by, bucket=bucket)["rows"]
    finally:
        source.close()
    table = Table(*(["day"] if bucket else []), *groups, "cost USD", outcome, f"USD per {outcome}", "runs",
                  "runs without", "waste USD", title=f"cost per {outcome}")
    for r in rows:
        day = [(r["bucket"] or "-")[:10]] if bucket else []
        table.add_row(*day, *(str(r["group"].get(g) or "-") for g in groups), r["cost_usd"], r["outcomes"],
                      r["cost_per_outcome_usd"] or "-", str(r["runs"]), str(r["runs_without_outcome"]), r["waste_usd"])
    console.print(table)


@app.command()
def slo(config: Path | None = CONFIG_OPTION, store: str | None = STORE_OPTION,
        api: str | None = API_OPTION, key: str | None = KEY_OPTION) -> None:
    """The last evaluation of every economic SLO (kind: SLO in the bundle) and its actions."""
    from costplane.money import format_usd

    source = Source(config, store, api, key)
    states: list[dict[str, Any]]
    try:
        if source.store is not None:
            states = [{"name": s.name, "breached": s.breached, "measured": dict(s.measured),
                       "actions": [dict(a) for a in s.actions], "updated_at": s.updated_at.isoformat()}
                      for s in source.store.slo_states()]
        else:
            states = source.get("/v1/slos")["slos"]
    finally:
        source.close()
    table = Table("SLO", "state", "cost per outcome USD", "objective USD", "outcomes", "actions", "evaluated")
    for s in states:
        m = s["measured"]
        per = m.get("cost_per_outcome_nano")
        table.add_row(s["name"], "[red]breached[/red]" if s["breached"] else "[green]ok[/green]",
                      "-" if per is None else format_usd(per), format_usd(m.get("objective_nano", 0)),
                      str(m.get("outcomes", "-")),
                      ", ".join(f"{a['effect']} {a.get('model') or a.get('max_calls_per_minute') or ''}".strip()
                                for a in s["actions"]) or "-", s["updated_at"][:19])
    console.print(table)
