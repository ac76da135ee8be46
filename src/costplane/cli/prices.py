"""`costplane prices list|show`: the price catalog (genai-prices data + costplane.yaml overrides)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from costplane.pricing import Catalog, ModelEntry, PriceDetail, PriceSheet, PricingConfig, UnknownPrice
from costplane.pricing.genai import NotMetered
from costplane.pricing.units import UNITS, unit_label

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True,
                  help="LLM token prices: the genai-prices catalog plus your overrides.")

_COLUMNS = (("input", "input"), ("cache_read", "cached input"), ("cache_write", "cache write"),
            ("output", "output"), ("reasoning", "reasoning"))
_FALLBACK = {"cache_read": "input", "cache_write": "input", "reasoning": "output"}

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", envvar="COSTPLANE_CONFIG",
    help="costplane.yaml whose `pricing:` section applies (default: ./costplane.yaml if present).")]
ProviderOpt = Annotated[str | None, typer.Option("--provider", "-p",
                                                 help="genai-prices provider id, e.g. openai.")]
AtOpt = Annotated[str | None, typer.Option("--at", help="Instant to price at: 2025-01-01 or an ISO datetime "
                                           "(UTC unless it names an offset). Default: now.")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table or json.")]


@app.command("list")
def list_prices(
    provider: ProviderOpt = None,
    search: Annotated[str | None, typer.Option("--search", "-s", help="Substring of the model name.")] = None,
    at: AtOpt = None,
    config: ConfigOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """List models and their prices in USD per 1M tokens."""
    output = _format(fmt)
    catalog = Catalog.load(_pricing(config))
    when = _instant(at)
    entries = catalog.models(provider=provider, search=search, at=when)
    if output == "json":
        typer.echo(json.dumps([_entry_json(entry) for entry in entries], indent=2))
        return
    console = Console()
    table = Table(title=f"Prices in USD per 1M tokens ({catalog.data_version}; at {_stamp(when)})")
    for header in ("provider", "model", *(label for _, label in _COLUMNS), "source"):
        table.add_column(header, justify="right" if header not in ("provider", "model", "source") else "left")
    for entry in entries:
        table.add_row(entry.provider, entry.model, *_rate_cells(entry.sheet), _source_cell(entry))
    console.print(table)
    if not entries:
        console.print("no models match", style="yellow")


@app.command("show")
def show_price(
    model: Annotated[str, typer.Argument(help="Model name as sent to the API, e.g. gpt-4o-2024-08-06.")],
    provider: ProviderOpt = None,
    at: AtOpt = None,
    config: ConfigOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Show the price of MODEL at an instant: every billed unit, service tiers and batch, its history."""
    output = _format(fmt)
    catalog = Catalog.load(_pricing(config))
    when = _instant(at)
    try:
        detail = catalog.describe(model, provider, when)
    except UnknownPrice as exc:
        suggestions = catalog.suggest(model, provider)
        if output == "json":
            typer.echo(json.dumps({"error": str(exc), "model": model, "provider": provider,
                                   "unknown_price": catalog.config.unknown_price.action,
                                   "suggestions": suggestions}, indent=2))
        else:
            hint = f"; did you mean: {', '.join(suggestions)}?" if suggestions else ""
            typer.echo(f"error: {exc}{hint}", err=True)
            typer.echo(f"(requests for it are handled by the unknown-price rule: "
                       f"{catalog.config.unknown_price.action})", err=True)
        raise typer.Exit(1) from None
    if output == "json":
        typer.echo(json.dumps(_detail_json(detail), indent=2))
    else:
        _print_detail(Console(), detail)
    if detail.sheet is None:
        raise typer.Exit(1)


# --- options ----------------------------------------------------------------------------------------


def _format(value: str) -> str:
    if value not in ("table", "json"):
        raise typer.BadParameter(f"expected table or json, got {value!r}", param_hint="--format")
    return value


def _instant(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"expected a date such as 2025-01-01 or an ISO datetime, got {value!r}",
                                 param_hint="--at") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _pricing(path: Path | None) -> PricingConfig | None:
    if path is None:
        default = Path("costplane.yaml")
        if not default.is_file():
            return None
        path = default
    from costplane.config import ConfigError, load_config

    try:
        return load_config(path).pricing
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


# --- rendering ---------------------------------------------------------------------------------------


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _rate_cells(sheet: PriceSheet | None) -> list[Text]:
    if sheet is None:
        return [Text("—", style="dim") for _ in _COLUMNS]
    rates = sheet.rates()
    tiered = {name for _, overrides in sheet.tiers for name in overrides}
    cells = []
    for name, _ in _COLUMNS:
        declared = getattr(sheet, name) is not None
        text = _usd(rates[name]) + (" +tiers" if name in tiered else "")
        cells.append(Text(text, style="" if declared else "dim"))
    return cells


def _source_cell(entry: ModelEntry) -> str:
    if entry.sheet is None:
        return f"{entry.source} (no token price)"
    if entry.source == "override" and entry.effective_from is not None:
        return f"override from {entry.effective_from}"
    return entry.source


def _usd(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _print_detail(console: Console, detail: PriceDetail) -> None:
    provider = detail.matched_provider or "any provider"
    console.print(f"[bold]{detail.matched_model}[/bold] ({provider})"
                  + (f" — {detail.name}" if detail.name else ""))
    asked = f"{detail.model}" + (f" at provider {detail.provider}" if detail.provider else "")
    console.print(f"asked for {asked}, priced at {_stamp(detail.at)}; data: {detail.data_version}")
    if detail.sheet is None:
        console.print(f"[red]no per-token price in effect[/red]: requests follow the unknown-price rule "
                      f"({detail.unknown_price})")
    else:
        origin = "override" if detail.from_override else detail.source
        console.print(f"in effect: {origin}" + (f" from {detail.sheet.effective_from}"
                                               if detail.sheet.effective_from else ""))
        console.print(_sheet_table("Effective price, USD per 1M tokens", [("", detail.sheet)]))
        console.print(_units_table(detail.sheet))
        for start, rates in detail.sheet.tiers:
            shown = ", ".join(f"{name} {_usd(rate)}" for name, rate in rates.items())
            console.print(f"  when a call has more than {start:,} input tokens: {shown}")
        for variant in detail.sheet.variants:
            base = detail.sheet.rates()
            changed = {k: v for k, v in variant.sheet.rates().items() if base.get(k) != v}
            shown = ", ".join(f"{name} {_usd(rate)}" for name, rate in changed.items()) or "the standard prices"
            console.print(f"  when served with {variant.label}: {shown}")
    rows = [(("* " if item.active else "  ") + item.condition + f" [{item.override_path or item.source}]",
             item.sheet) for item in detail.history]
    console.print(_sheet_table("History of prices (* = in effect)", rows))
    if detail.not_metered:
        console.print("not metered (price keys outside genai-prices' unit registry):")
        for item in detail.not_metered:
            console.print(f"  {item.price_key}: {item.label()}")
    for note in detail.notes:
        console.print(f"note: {note}")


def _sheet_table(title: str, rows: list[tuple[str, PriceSheet | None]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("when")
    for _, label in _COLUMNS:
        table.add_column(label, justify="right")
    for label, sheet in rows:
        table.add_row(label, *_rate_cells(sheet))
    return table


def _units_table(sheet: PriceSheet) -> Table:
    """Every billed unit the sheet prices: its rate, what it is quoted per, and where it comes from."""
    table = Table(title="Every billed unit", title_justify="left")
    for header in ("unit", "USD", "quoted", "price"):
        table.add_column(header, justify="right" if header == "USD" else "left")
    declared = sheet.declared()
    for name, rate in sheet.rates().items():
        unit = UNITS[name]
        origin = "declared" if name in declared else "as " + next(
            (a for a in ("cache_write", "input", "output") if a in unit.ancestors and a in declared), "input")
        table.add_row(name, _usd(rate), unit_label(name), origin)
    return table


def _sheet_json(sheet: PriceSheet | None) -> dict[str, Any] | None:
    if sheet is None:
        return None
    return {
        "model": sheet.model,
        "provider": sheet.provider,
        "rates": {name: str(rate) for name, rate in sheet.rates().items()},
        "declared": {name: (str(value) if (value := getattr(sheet, name)) is not None else None)
                     for name, _ in _COLUMNS},
        "tiers": [{"above_input_tokens": start, "rates": {k: str(v) for k, v in rates.items()}}
                  for start, rates in sheet.tiers],
        "units": {name: {"usd": str(rate), "per": UNITS[name].per, "quoted": unit_label(name)}
                  for name, rate in sheet.rates().items()},
        "variants": [{"when": dict(v.when), "rates": {k: str(r) for k, r in v.sheet.rates().items()}}
                     for v in sheet.variants],
        "source": sheet.source,
        "effective_from": sheet.effective_from.isoformat() if sheet.effective_from else None,
        "flagged_default": sheet.flagged_default,
    }


def _not_metered_json(items: tuple[NotMetered, ...]) -> list[dict[str, Any]]:
    return [{"price_key": item.price_key, "usd": str(item.usd), "per": item.per, "unit": item.unit,
             "tiered": item.tiered} for item in items]


def _entry_json(entry: ModelEntry) -> dict[str, Any]:
    return {
        "provider": entry.provider,
        "model": entry.model,
        "name": entry.name,
        "source": entry.source,
        "effective_from": entry.effective_from.isoformat() if entry.effective_from else None,
        "price": _sheet_json(entry.sheet),
        "not_metered": _not_metered_json(entry.not_metered),
        "notes": list(entry.notes),
    }


def _detail_json(detail: PriceDetail) -> dict[str, Any]:
    return {
        "model": detail.model,
        "provider": detail.provider,
        "matched_model": detail.matched_model,
        "matched_provider": detail.matched_provider,
        "name": detail.name,
        "at": detail.at.isoformat(),
        "price": _sheet_json(detail.sheet),
        "source": detail.source,
        "from_override": detail.from_override,
        "history": [{"condition": item.condition, "source": item.source, "active": item.active,
                     "override": item.override_path, "price": _sheet_json(item.sheet),
                     "notes": list(item.notes)} for item in detail.history],
        "not_metered": _not_metered_json(detail.not_metered),
        "variants": list(detail.variants),
        "notes": list(detail.notes),
        "data_version": detail.data_version,
        "unknown_price": detail.unknown_price,
    }
