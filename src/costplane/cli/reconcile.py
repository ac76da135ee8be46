"""`costplane reconcile`: metered spend (the ledger) against what the providers billed."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import typer

from costplane.cli.common import CONFIG_OPTION, console, err_console, fail, load
from costplane.reconcile.settings import ReconcileSettings, check_zone, parse_decimal
from costplane.reconcile.types import BillSource, ReconcileError

__all__ = ["reconcile_command", "register"]


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class Grain(StrEnum):
    full = "full"
    model = "model"
    provider = "provider"


def _date(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option}: expected a date such as 2026-11-01, got {text!r}", 2)


def _projects(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        bill_id, sep, project = pair.partition("=")
        if not sep or not bill_id.strip():
            fail(f"--project-map: expected BILL_ID=PROJECT (PROJECT empty for no project), got {pair!r}", 2)
        out[bill_id.strip()] = project.strip()
    return out


def _settings(base: ReconcileSettings, pct: str | None, usd: str | None, zone: str | None,
              project_map: list[str]) -> ReconcileSettings:
    try:
        return base.with_overrides(pct=parse_decimal(pct), usd=parse_decimal(usd),
                                   timezone=None if zone is None else check_zone(zone), projects=_projects(project_map))
    except ValueError as exc:
        fail(f"--threshold-pct/--threshold-usd/--timezone: {exc}", 2)


def reconcile_command(
    files: list[Path] = typer.Argument(None, help="downloaded bills: OpenAI costs/usage or Anthropic cost/usage "
                                       "report JSON, FOCUS .csv/.parquet"),
    fetch: list[str] = typer.Option([], "--fetch", help="download the bill of openai or anthropic with the admin "
                                    "key in OPENAI_ADMIN_KEY / ANTHROPIC_ADMIN_KEY (repeatable)"),
    since: str | None = typer.Option(None, "--since", help="first day compared (default: the bills' first day; "
                                     "with --fetch, 7 days before --until)"),
    until: str | None = typer.Option(None, "--until", help="day after the last day compared (default: the bills' "
                                     "end; with --fetch, today)"),
    fmt: Format = typer.Option(Format.table, "--format", help="table (rounded), json or csv (exact)"),
    threshold_pct: str | None = typer.Option(None, "--threshold-pct", help="alert past this drift in percent "
                                             "(default reconcile.drift_threshold_pct, 5)"),
    threshold_usd: str | None = typer.Option(None, "--threshold-usd", help="alert past this drift in USD "
                                             "(default reconcile.drift_threshold_usd, 1.00)"),
    timezone: str | None = typer.Option(None, "--timezone", help="IANA zone the days are cut in (default UTC)"),
    project_map: list[str] = typer.Option([], "--project-map", help="BILL_ID=PROJECT: a bill's project or "
                                          "workspace id as a costplane project (repeatable)"),
    grain: Grain = typer.Option(Grain.full, "--grain", help="full (model and project where the bill has them), "
                                "model, or provider"),
    report_kind: str | None = typer.Option(None, "--report-kind", help="read JSON files as openai-costs, "
                                           "openai-usage, anthropic-cost or anthropic-usage (when a report has no "
                                           "results to tell its kind by)"),
    focus_cost: str = typer.Option("BilledCost", "--focus-cost", help="FOCUS cost column: BilledCost or "
                                   "EffectiveCost"),
    focus_model: str | None = typer.Option(None, "--focus-model-column", help="FOCUS column (or Tags.<key>) "
                                           "naming the model (default x_Model when present)"),
    focus_project: str | None = typer.Option(None, "--focus-project-column", help="FOCUS column (or Tags.<key>) "
                                             "naming the project (default x_Project when present)"),
    api_base: str | None = typer.Option(None, "--api-base", help="base URL for --fetch (a proxy; default the "
                                        "provider's API)"),
    save: Path | None = typer.Option(None, "--save", help="with --fetch: write each fetched report here as JSON"),
    alert: bool = typer.Option(True, "--alert/--no-alert", help="send the drift alert to the webhooks"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Compare metered spend with the providers' bills per day × provider × model × project: drift in
    dollars and percent, unmatched lines on both sides; exit 1 (and alert) when drift passes the threshold."""
    from costplane.reconcile.alert import send_drift_alert
    from costplane.reconcile.fetch import KEY_ENV, fetch_reports
    from costplane.reconcile.metered import ledger_provider_map
    from costplane.reconcile.report import render_csv, render_json, render_table
    from costplane.reconcile.run import reconcile
    from costplane.reconcile.sources import FocusOptions, ReadContext, read_bill, read_pages

    settings_file = load(config)
    settings = _settings(settings_file.reconcile, threshold_pct, threshold_usd, timezone, project_map)
    first, end = _date("--since", since), _date("--until", until)
    if not files and not fetch:
        fail("nothing to reconcile: pass bill files, or --fetch openai|anthropic", 2)
    ctx = ReadContext.of(settings)
    sources: list[BillSource] = []
    try:
        for path in files or []:
            sources.append(read_bill(path, ctx, focus=FocusOptions(focus_cost, focus_model, focus_project),
                                     as_kind=report_kind))
        if fetch:
            end = end or (datetime.now(ctx.clock.zone).date() + timedelta(days=1))
            first = first or end - timedelta(days=7)
            start_at, _ = ctx.clock.window(first)
            end_at, _ = ctx.clock.window(end)
            for provider in fetch:
                key = os.environ.get(KEY_ENV.get(provider, ""), "")
                for report in fetch_reports(provider, start_at, end_at, key, base_url=api_base):
                    label = f"{report.kind} (fetched)"
                    if save is not None:
                        save.mkdir(parents=True, exist_ok=True)
                        target = save / f"{report.kind}-{first.isoformat()}-{end.isoformat()}.json"
                        target.write_text(report.saved_text(), encoding="utf-8")
                        label = str(target)
                    sources.append(read_pages(report.pages, label, ctx, report.kind))
    except ReconcileError as exc:
        fail(str(exc), 2)

    from costplane.ledger.open import open_store

    try:
        store = open_store(settings_file.store_url)
        store.migrate()
    except Exception as exc:  # any driver error becomes a one-line message
        fail(f"cannot open the store {settings_file.store_url}: {exc}", 2)
    try:
        try:
            result = reconcile(store, sources, settings, ledger_provider_map(settings_file.providers, settings),
                               grain=grain.value, since=first, until=end)
        except ReconcileError as exc:
            fail(str(exc), 2)
        if fmt is Format.json:
            typer.echo(render_json(result))
        elif fmt is Format.csv:
            typer.echo(render_csv(result), nl=False)
        else:
            render_table(result, console)
        if alert and result.breaches:
            for outcome in send_drift_alert(result, settings_file.alerts, store, datetime.now(UTC)):
                err_console.print(f"drift alert: {outcome}", highlight=False)
    finally:
        store.close()
    if result.breaches:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("reconcile")(reconcile_command)
