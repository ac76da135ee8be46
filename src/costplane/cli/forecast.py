"""`costplane forecast` (spend per budget to the end of its window) and `costplane anomalies`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import typer

from costplane.cli.common import CONFIG_OPTION, fail
from costplane.cli.optimizing import Sources, window
from costplane.money import format_usd
from costplane.optimize.anomaly import AnomalySettings, detect_anomalies
from costplane.optimize.forecast import LOOKBACK_DAYS, forecast_budgets
from costplane.policy.bundle import load_bundle
from costplane.policy.types import BundleError

__all__ = ["register"]

_ALL = 2_000_000_000


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def forecast(
    budget: list[str] = typer.Option([], "--budget", help="only these budgets"),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", help="output format"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Forecast each budget's spend to the end of its calendar window, with a 95 % interval."""
    sources = Sources(config)
    try:
        if sources.config.bundle is None:
            fail("no bundle configured (bundle: in costplane.yaml): no budgets to forecast")
        try:
            bundle = load_bundle(sources.config.bundle)
        except BundleError as exc:
            fail(f"the bundle {sources.config.bundle} does not validate ({len(exc.issues)} issues)")
        now = datetime.now(UTC)
        events = sources.store.list_events(since=now - timedelta(days=LOOKBACK_DAYS + 32), limit=_ALL)
        try:
            forecasts = forecast_budgets(bundle, events, now, budget)
        except ValueError as exc:
            fail(str(exc), 2)
    finally:
        sources.close()
    if fmt is OutputFormat.json:
        typer.echo(json.dumps({"forecasts": [f.to_json() for f in forecasts]}, indent=2))
        return
    if not forecasts:
        typer.echo("no budgets")
    for f in forecasts:
        if f.forecast_nano is None or f.low_nano is None or f.high_nano is None:
            typer.echo(f"{f.budget} ({f.window}): {f.note}")
            continue
        limit = f" of {format_usd(f.limit_nano)} USD: {f.verdict}" if f.limit_nano is not None else ""
        note = f" ({f.note})" if f.note else ""
        typer.echo(f"{f.budget} ({f.window}, to {f.end:%Y-%m-%d %H:%M} UTC): spent {format_usd(f.spent_nano)}, "
                   f"forecast {format_usd(f.forecast_nano)} USD [{format_usd(f.low_nano)} - "
                   f"{format_usd(f.high_nano)}]{limit}{note}")


def anomalies(
    since: str = typer.Option("14d", "--since", help="the window to scan: 7d, 14d …"),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", help="output format"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Days whose spend breaks the seasonal baseline (all spend, and per team), with root causes."""
    start, end = window(since)
    settings = AnomalySettings()
    sources = Sources(config)
    try:
        events = sources.store.list_events(since=start - timedelta(days=settings.baseline_days + 1), limit=_ALL)
    finally:
        sources.close()
    found = detect_anomalies(events, start, end, settings)
    if fmt is OutputFormat.json:
        typer.echo(json.dumps({"since": since, "anomalies": [a.to_json() for a in found]}, indent=2))
        return
    if not found:
        typer.echo(f"no anomalies in the last {since}")
    for a in found:
        typer.echo(f"{a.day} {a.scope[0]}={a.scope[1]}: spent {format_usd(a.actual_nano)} USD, expected "
                   f"{format_usd(a.expected_nano)} (+{format_usd(a.excess_nano)}, {a.sigma:.1f} sigma)")
        for c in a.causes:
            typer.echo(f"   team={c.team} agent={c.agent} model={c.model}: +{format_usd(c.excess_nano)} USD")


def register(app: typer.Typer) -> None:
    app.command("forecast")(forecast)
    app.command("anomalies")(anomalies)
