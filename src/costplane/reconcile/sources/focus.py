"""A FOCUS export (CSV or Parquet) of any provider — a cloud's billing export, or costplane's own.

Columns read (FOCUS 1.0–1.3): `ChargePeriodStart` (and `ChargePeriodEnd` when present), the cost column
(`BilledCost` by default, `EffectiveCost` with `--focus-cost EffectiveCost`), the provider
(`ServiceProviderName` where the row has it — FOCUS 1.3 — else `ProviderName`), `ChargeCategory`
(only `Usage` rows are reconciled: purchases, taxes, credits and adjustments are counted and listed as
skipped), `BillingCurrency` (must be USD). The model and the project come from columns you name —
a column (`x_Model`, `ResourceName`, `SkuId`, `SubAccountName`, …) or a key of the `Tags` JSON
(`Tags.project`); by default `x_Model` / `x_Project` when the file has them, else the bill is compared
per day × provider only.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

from costplane.reconcile.normalize import canonical_provider
from costplane.reconcile.sources.context import ReadContext
from costplane.reconcile.types import MONEY, BilledLine, BillSource, ReconcileError

__all__ = ["FocusOptions", "read_focus"]

_COSTS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")


@dataclass(frozen=True, slots=True)
class FocusOptions:
    cost_column: str = "BilledCost"
    model_column: str | None = None  # None: x_Model when present
    project_column: str | None = None  # None: x_Project when present


def read_focus(path: Path, ctx: ReadContext, options: FocusOptions) -> BillSource:
    if options.cost_column not in _COSTS:
        raise ReconcileError(f"--focus-cost must be one of {', '.join(_COSTS)}, got {options.cost_column!r}")
    columns, rows = _rows(path)
    for needed in ("ChargePeriodStart", options.cost_column):
        if needed not in columns:
            raise ReconcileError(f"{path}: not a FOCUS file: the column {needed} is missing")
    provider_columns = [c for c in ("ServiceProviderName", "ProviderName") if c in columns]
    if not provider_columns:
        raise ReconcileError(f"{path}: not a FOCUS file: neither ServiceProviderName nor ProviderName is present")
    model_column = _pick(options.model_column, "x_Model", columns, path)
    project_column = _pick(options.project_column, "x_Project", columns, path)
    source = BillSource(MONEY, "focus", str(path), has_model=model_column is not None,
                        has_project=project_column is not None)
    for where, row in rows:
        category = _text(row.get("ChargeCategory"))
        currency = _text(row.get("BillingCurrency"))
        if currency and currency.upper() != "USD":
            raise ReconcileError(f"{where}: BillingCurrency: only USD bills are reconciled, got {currency!r}")
        named = next((name for name in (_text(row.get(c)) for c in provider_columns) if name), None)
        if named is None:
            raise ReconcileError(f"{where}: {' and '.join(provider_columns)} empty: the row names no provider")
        provider = canonical_provider(named, ctx.settings.providers)
        start = _time(row.get("ChargePeriodStart"), f"{where}: ChargePeriodStart")
        end_raw = row.get("ChargePeriodEnd")
        end = _time(end_raw, f"{where}: ChargePeriodEnd") if end_raw not in (None, "") else None
        day = ctx.clock.day_of(start, end, where)
        if end is None or end <= start:  # no period end: the row stands for its whole day
            start, end = ctx.clock.window(day)
        source.cover(provider, day, start, end)
        if category and category != "Usage":
            source.skipped[category] = source.skipped.get(category, 0) + 1
            continue
        model = _value(row, model_column, where)
        project = _value(row, project_column, where)
        source.lines.append(BilledLine(
            day=day, provider=provider, model=ctx.model(model) if model else None,
            project=ctx.project(project) if project_column else None,
            cost=_money(row.get(options.cost_column), f"{where}: {options.cost_column}"), source=where,
            raw_model=model))
    return source


def _pick(chosen: str | None, default: str, columns: set[str], path: Path) -> str | None:
    if chosen is None:
        return default if default in columns else None
    base = chosen.split(".", 1)[0] if chosen.startswith("Tags.") else chosen
    if base not in columns:
        raise ReconcileError(f"{path}: the column {base} (from {chosen!r}) is not in the file")
    return chosen


def _value(row: Mapping[str, Any], column: str | None, where: str) -> str | None:
    if column is None:
        return None
    if column.startswith("Tags."):
        raw = row.get("Tags")
        if raw in (None, ""):
            return None
        try:
            tags = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
        except orjson.JSONDecodeError:
            raise ReconcileError(f"{where}: Tags is not a JSON object") from None
        value = tags.get(column[len("Tags."):]) if isinstance(tags, Mapping) else None
        return None if value is None else str(value)
    return _text(row.get(column))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _money(value: Any, where: str) -> Decimal:
    if value is None or value == "":
        return Decimal(0)  # FOCUS allows null costs on some non-usage rows
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ReconcileError(f"{where}: expected a decimal amount, got {value!r}") from None
    if not number.is_finite():
        raise ReconcileError(f"{where}: expected a finite amount, got {value!r}")
    return number


def _time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, date):
        at = datetime(value.year, value.month, value.day)
    else:
        try:
            at = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ReconcileError(f"{where}: expected an ISO 8601 UTC time such as 2026-11-01T00:00:00Z, "
                                 f"got {value!r}") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)  # FOCUS times are UTC


def _rows(path: Path) -> tuple[set[str], Iterator[tuple[str, Mapping[str, Any]]]]:
    if path.suffix.lower() == ".parquet":
        return _parquet(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ReconcileError(f"{path}: cannot read the file: {exc.strerror}") from None
    reader = csv.DictReader(handle)
    columns = set(reader.fieldnames or ())

    def rows() -> Iterator[tuple[str, Mapping[str, Any]]]:
        with handle:
            try:
                for row in reader:
                    yield f"{path}:{reader.line_num}", row
            except (csv.Error, UnicodeDecodeError) as exc:
                raise ReconcileError(f"{path}:{reader.line_num}: not valid CSV: {exc}") from None

    return columns, rows()


def _parquet(path: Path) -> tuple[set[str], Iterator[tuple[str, Mapping[str, Any]]]]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise ReconcileError(f"{path}: reading Parquet needs pyarrow: pip install 'costplane[export]', "
                             "or export the FOCUS file as CSV") from None

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise ReconcileError(f"{path}: not a readable Parquet file: {exc}") from None
    columns = set(table.column_names)

    def rows() -> Iterator[tuple[str, Mapping[str, Any]]]:
        offset = 0
        for batch in table.to_batches(max_chunksize=10_000):
            for index, row in enumerate(batch.to_pylist()):
                yield f"{path}: row {offset + index + 1}", row
            offset += batch.num_rows

    return columns, rows()
