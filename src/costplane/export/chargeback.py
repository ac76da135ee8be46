"""Chargeback / showback: cost, savings, events and top models per team (or any dimension) per month."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from costplane.ledger.store import Store

__all__ = ["ChargebackRow", "chargeback", "month_bounds"]

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, slots=True)
class ChargebackRow:
    group: str | None  # the team (or other dimension) value; None = unattributed
    cost_nano: int
    saved_nano: int
    events: int
    top_models: tuple[tuple[str, int], ...]  # (model, cost_nano), most expensive first


def month_bounds(month: str, timezone: str = "UTC") -> tuple[datetime, datetime]:
    """'2026-11' -> [start, end) of that calendar month in `timezone` (aware datetimes)."""
    match = _MONTH.match(month)
    if match is None:
        raise ValueError(f"expected a month such as 2026-11, got {month!r}")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {timezone!r}") from exc
    year, number = int(match.group(1)), int(match.group(2))
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return start, end


def chargeback(store: Store, month: str, by: str = "team", timezone: str = "UTC",
               top_models: int = 3) -> list[ChargebackRow]:
    """One row per value of `by` in the month, most expensive first (exact nano-USD sums)."""
    since, until = month_bounds(month, timezone)
    groups: dict[str | None, list[tuple[str, int, int, int]]] = {}
    for row in store.spend(group_by=[by, "model"], since=since, until=until):
        groups.setdefault(row.group.get(by), []).append(
            (str(row.group.get("model")), row.cost_nano, row.saved_nano, row.events))
    out = []
    for group, models in groups.items():
        ranked = sorted(models, key=lambda m: (-m[1], m[0]))
        out.append(ChargebackRow(group, sum(m[1] for m in models), sum(m[2] for m in models),
                                 sum(m[3] for m in models), tuple((m[0], m[1]) for m in ranked[:top_models])))
    return sorted(out, key=lambda r: (-r.cost_nano, r.group or ""))
