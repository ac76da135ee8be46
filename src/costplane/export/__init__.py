"""Exports (issue 5): FOCUS 1.2 cost and usage data (CSV; Parquet with the `export` extra) and
chargeback/showback per team per month."""

from __future__ import annotations

from costplane.export.chargeback import ChargebackRow, chargeback, month_bounds
from costplane.export.focus import FOCUS_COLUMNS, X_COLUMNS, focus_row, iter_events
from costplane.export.writers import ExportError, write_csv, write_parquet

__all__ = [
    "FOCUS_COLUMNS",
    "X_COLUMNS",
    "ChargebackRow",
    "ExportError",
    "chargeback",
    "focus_row",
    "iter_events",
    "month_bounds",
    "write_csv",
    "write_parquet",
]
