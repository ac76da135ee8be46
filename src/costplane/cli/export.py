"""`costplane export focus|chargeback`: FOCUS 1.2 cost data and chargeback/showback reports."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from costplane.cli.common import CONFIG_OPTION, console, fail, load
from costplane.ledger.store import Store
from costplane.money import format_usd

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Exports: FOCUS 1.2 (CSV/Parquet) and chargeback per team per month.")


def _store(config: Path | None) -> Store:
    from costplane.ledger.open import open_store

    store = open_store(load(config).store_url)
    store.migrate()
    return store


def _instant(option: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option}: expected an ISO date or time such as 2026-11-01 or 2026-11-01T08:00:00+01:00, got {text!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def focus(
    since: str | None = typer.Option(None, help="first instant included (ISO; naive = UTC)"),
    until: str | None = typer.Option(None, help="first instant excluded (ISO; naive = UTC)"),
    format: str = typer.Option("csv", "--format", help="csv | parquet (parquet needs costplane[export])"),
    output: Path = typer.Option(..., "--output", "-o", help="file to write"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Every cost event as FOCUS 1.2 columns plus x_ columns for the costplane context."""
    from costplane.export.focus import FOCUS_COLUMNS, X_COLUMNS, focus_row, iter_events
    from costplane.export.writers import ExportError, write_csv, write_parquet

    if format not in ("csv", "parquet"):
        fail(f"--format: expected csv or parquet, got {format!r}")
    start, end = _instant("--since", since), _instant("--until", until)
    store = _store(config)
    columns = (*FOCUS_COLUMNS, *X_COLUMNS)
    try:
        rows = (focus_row(event) for event in iter_events(store, start, end))
        writer = write_csv if format == "csv" else write_parquet
        count = writer(rows, columns, output)
    except ExportError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"--output {output}: {exc.strerror or exc}")
    finally:
        store.close()
    console.print(f"wrote {count} cost events as FOCUS 1.2 ({format}) to {output}")


@app.command()
def chargeback(
    month: str = typer.Option(..., help="calendar month, e.g. 2026-11"),
    by: str = typer.Option("team", help="dimension to charge back to (team, project, agent, …)"),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA zone the month is read in"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write CSV here instead of a table"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Showback/chargeback: cost, saved, events and top models per team (or --by) for one month."""
    from costplane.export.chargeback import chargeback as compute

    store = _store(config)
    try:
        rows = compute(store, month, by, timezone)
    except ValueError as exc:
        fail(str(exc))
    finally:
        store.close()
    header = [by, "cost_usd", "saved_usd", "events", "top_models"]
    lines = [[r.group or f"(no {by})", format_usd(r.cost_nano), format_usd(r.saved_nano), str(r.events),
              "; ".join(f"{m} {format_usd(c)}" for m, c in r.top_models)] for r in rows]
    if output is not None:
        try:
            with output.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(header)
                writer.writerows(lines)
        except OSError as exc:
            fail(f"--output {output}: {exc.strerror or exc}")
        console.print(f"wrote {len(lines)} rows to {output}")
        return
    table = Table(*header, title=f"Chargeback {month} by {by} (USD, {timezone})", title_justify="left")
    for line in lines:
        table.add_row(*line)
    console.print(table)

