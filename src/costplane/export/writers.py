"""Write FOCUS rows as CSV (standard library) or Parquet (pyarrow, the `export` extra).

CSV: a header row, nulls as empty fields, decimals as exact plain strings, date-times as
ISO 8601 UTC with Z. Parquet: money, prices and quantities as decimal128(38, scale) (scale
per column in focus_columns.DECIMAL_SCALES; a value that does not fit is an error, never
rounded), date-times as UTC timestamps, integer x_ columns as int64, the rest (JSON too) as
strings. Rows are written in batches, so memory stays bounded whatever the number of events.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from costplane.export.focus_columns import DATETIME_COLUMNS, DECIMAL_SCALES, INTEGER_COLUMNS

__all__ = ["ExportError", "parquet_schema", "write_csv", "write_parquet"]

Row = Mapping[str, str | None]


class ExportError(RuntimeError):
    """The export cannot be written (missing optional dependency, unwritable file, a value that does not fit)."""


def write_csv(rows: Iterable[Row], columns: Sequence[str], path: Path) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
            count += 1
    return count


def _value(column: str, value: str | None) -> Any:
    if value is None:
        return None
    if column in DECIMAL_SCALES:
        number = Decimal(value)
        if number != number.quantize(Decimal(1).scaleb(-DECIMAL_SCALES[column])):
            raise ExportError(f"{column}: {value} has more than {DECIMAL_SCALES[column]} decimal places")
        return number
    if column in DATETIME_COLUMNS:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if column in INTEGER_COLUMNS:
        return int(value)
    return value


def parquet_schema(columns: Sequence[str]) -> Any:
    """The pyarrow schema of an export with these columns."""
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    fields = []
    for column in columns:
        if column in DECIMAL_SCALES:
            fields.append(pa.field(column, pa.decimal128(38, DECIMAL_SCALES[column])))
        elif column in DATETIME_COLUMNS:
            fields.append(pa.field(column, pa.timestamp("s", tz="UTC")))
        elif column in INTEGER_COLUMNS:
            fields.append(pa.field(column, pa.int64()))
        else:
            fields.append(pa.field(column, pa.string()))
    return pa.schema(fields)


def write_parquet(rows: Iterable[Row], columns: Sequence[str], path: Path, batch: int = 5000) -> int:
    try:
        import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError as exc:
        raise ExportError("Parquet export needs pyarrow: pip install 'costplane[export]'") from exc
    schema = parquet_schema(columns)
    count = 0
    iterator = iter(rows)
    with pq.ParquetWriter(str(path), schema) as writer:
        while True:
            chunk = list(itertools.islice(iterator, batch))
            if not chunk and count:
                break
            data = {c: [_value(c, r.get(c)) for r in chunk] for c in columns}
            writer.write_table(pa.table(data, schema=schema))
            count += len(chunk)
            if len(chunk) < batch:
                break
    return count
