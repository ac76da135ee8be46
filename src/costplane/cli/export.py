"""`costplane export focus|chargeback`: FOCUS 1.3 / 1.2 cost data and chargeback/showback reports."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from costplane.cli.common import CONFIG_OPTION, console, fail, load
from costplane.config import Config
from costplane.export.focus_names import Companies
from costplane.ledger.store import Store
from costplane.money import format_usd

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True,
                  help="Exports: FOCUS 1.3 or 1.2 (CSV/Parquet) and chargeback per team per month.")


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


def _companies(config: Config, overrides: list[str]) -> Companies:
    """Provider key -> company: costplane.yaml's providers (company, type, pricing id), then --company."""
    known = {p.name: (p.company, p.type, p.pricing_provider) for p in config.providers}
    hints = dict(Companies.from_providers(known).hints)
    for text in overrides:
        key, sep, name = text.partition("=")
        if not sep or not key.strip() or not name.strip():
            fail(f"--company: expected PROVIDER_KEY=Company Name such as local=OpenAI, got {text!r}")
        hints[key.strip()] = name.strip()
    return Companies(hints)


@app.command()
def focus(
    since: str | None = typer.Option(None, help="first instant included (ISO; naive = UTC)"),
    until: str | None = typer.Option(None, help="first instant excluded (ISO; naive = UTC)"),
    version: str = typer.Option("1.3", "--version", help="FOCUS version: 1.3 (default) or 1.2"),
    format: str = typer.Option("csv", "--format", help="csv | parquet (parquet needs costplane[export])"),
    company: list[str] = typer.Option([], "--company",
                                      help="name a provider's company: KEY=Name (repeatable)"),
    output: Path = typer.Option(..., "--output", "-o", help="file to write"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Every cost event as FOCUS 1.3 or 1.2 rows (one per priced unit) plus x_ columns for the costplane context."""
    from costplane.export.focus import FocusExporter, iter_events, store_environments
    from costplane.export.focus_columns import VERSIONS
    from costplane.export.writers import ExportError, write_csv, write_parquet

    if version not in VERSIONS:
        fail(f"--version: expected one of {', '.join(VERSIONS)}, got {version!r}")
    if format not in ("csv", "parquet"):
        fail(f"--format: expected csv or parquet, got {format!r}")
    start, end = _instant("--since", since), _instant("--until", until)
    settings = load(config)
    companies = _companies(settings, company)
    store = _store(config)
    events = 0
    try:
        exporter = FocusExporter(version, companies, store_environments(store))

        def rows() -> Iterator[dict[str, str | None]]:
            nonlocal events
            for event in iter_events(store, start, end):
                events += 1
                yield from exporter.rows(event)

        writer = write_csv if format == "csv" else write_parquet
        count = writer(rows(), exporter.columns, output)
    except ExportError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"--output {output}: {exc.strerror or exc}")
    finally:
        store.close()
    console.print(f"wrote {count} rows ({events} cost events) as FOCUS {version} ({format}) to {output}")


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

