"""Exports: FOCUS 1.2 and 1.3 cost and usage data (CSV; Parquet with the `export` extra) and
chargeback/showback per team per month."""

from __future__ import annotations

from costplane.export.chargeback import ChargebackRow, chargeback, month_bounds
from costplane.export.focus import FOCUS_COLUMNS, X_COLUMNS, FocusExporter, focus_row, iter_events
from costplane.export.focus_columns import VERSIONS, columns_for
from costplane.export.focus_names import Companies
from costplane.export.writers import ExportError, write_csv, write_parquet

__all__ = [
    "FOCUS_COLUMNS",
    "VERSIONS",
    "X_COLUMNS",
    "ChargebackRow",
    "Companies",
    "ExportError",
    "FocusExporter",
    "chargeback",
    "columns_for",
    "focus_row",
    "iter_events",
    "month_bounds",
    "write_csv",
    "write_parquet",
]
